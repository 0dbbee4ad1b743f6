"""Trains a small VGG-style CNN with BatchNorm on Fashion-MNIST, the model the `auto` bench checks
besides the two fixtures: a network whose conv weights carry per-channel BatchNorm scales.

Run with Debian's PyTorch:  /usr/bin/python3 scripts/train_vgg_bn.py [--epochs 2] [--out models/vgg_bn_fashion.onnx]
Reads /usr/share/datasets/fashion-mnist (Debian package dataset-fashion-mnist). Writes the ONNX file
(opset 13, dynamic batch; PyTorch folds each BatchNorm into its conv on export in eval mode) and a
.acc file with the test accuracy on all 10000 test images.
"""
import argparse
import gzip
import os

import numpy as np
import torch
from torch import nn

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = "/usr/share/datasets/fashion-mnist"


def idx(name):
    with gzip.open(os.path.join(DATA, name + ".gz"), "rb") as f:
        raw = f.read()
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def load(split):
    p = "train" if split == "train" else "t10k"
    x = torch.tensor(idx(f"{p}-images-idx3-ubyte").astype(np.float32) / 255.0).view(-1, 1, 28, 28)
    y = torch.tensor(idx(f"{p}-labels-idx1-ubyte").astype(np.int64))
    return x, y


def block(cin, cout):
    return [nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU()]


class VggBn(nn.Module):
    """(conv-BN-ReLU)x2, pool, (conv-BN-ReLU)x2, pool, pool, then 576-128-10: about 140k parameters."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            *block(1, 32), *block(32, 32), nn.MaxPool2d(2),
            *block(32, 64), *block(64, 64), nn.MaxPool2d(2), nn.MaxPool2d(2),
        )
        self.f1 = nn.Linear(64 * 3 * 3, 128)
        self.f2 = nn.Linear(128, 10)

    def forward(self, x):
        x = torch.flatten(self.features(x), 1)
        return self.f2(torch.relu(self.f1(x)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--out", default=os.path.join(ROOT, "models", "vgg_bn_fashion.onnx"))
    args = ap.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(2)
    xtr, ytr = load("train")
    xte, yte = load("test")
    net = VggBn()
    opt = torch.optim.Adam(net.parameters(), 1e-3)
    for epoch in range(args.epochs):
        net.train()
        perm = torch.randperm(len(xtr))
        for i in range(0, len(xtr), 128):
            b = perm[i:i + 128]
            opt.zero_grad()
            nn.functional.cross_entropy(net(xtr[b]), ytr[b]).backward()
            opt.step()
        net.eval()
        with torch.no_grad():
            acc = sum((net(xte[i:i + 1000]).argmax(1) == yte[i:i + 1000]).sum().item() for i in range(0, 10000, 1000)) / 10000
        print(f"epoch {epoch + 1}: test accuracy {acc:.4f}", flush=True)
    torch.onnx.export(net, torch.zeros(1, 1, 28, 28), args.out, opset_version=13, input_names=["input"],
                      output_names=["logits"], dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})
    with open(os.path.splitext(args.out)[0] + ".acc", "w") as f:
        f.write(f"{acc:.4f}\n")
    print("wrote", args.out)


if __name__ == "__main__":
    main()
