#!/usr/bin/env python3
"""PyTorch peer of the training-throughput part of bench/training.ts.

Trains the same factorised LeNet-5 that factorlite's buildNet({arch: 'lenet5', layer, ratio}) builds,
layer by layer with the same factor kinds and ranks (passed as one JSON argument), on Fashion-MNIST
training images, with Adam, softmax cross-entropy, the same batch, and reports images/s over a fixed
number of steps after some warm-up steps. Prints one JSON object on stdout; progress on stderr.

    /usr/bin/python3 bench/torch_lenet_train.py '{"batch":64,"steps":100,"warmup":10,"threads":2,
        "lr":0.003,"data":"/usr/share/datasets/fashion-mnist","layers":[{"name":"conv2","op":"cp_conv2d","ranks":[30],"params":2450}, ...]}'
"""
import gzip
import json
import os
import sys
import time

import numpy as np
import torch
from torch import nn
import torch.nn.functional as F

# LeNet-5 for 28x28x1 inputs as converter/train/arch.ts has it.
SHAPES = {
    'conv1': {'kind': 'conv', 'I': 1, 'O': 20, 'k': 5},
    'conv2': {'kind': 'conv', 'I': 20, 'O': 50, 'k': 5},
    'fc1': {'kind': 'fc', 'I': 800, 'O': 500},
    'fc2': {'kind': 'fc', 'I': 500, 'O': 10},
}


class CpConv(nn.Module):
    """CPAC-Conv: 1x1 (I -> R), depthwise kh x 1, depthwise 1 x kw, 1x1 (R -> O) + bias."""

    def __init__(self, I, O, k, R):
        super().__init__()
        self.a_in = nn.Conv2d(I, R, 1, bias=False)
        self.k_h = nn.Conv2d(R, R, (k, 1), groups=R, bias=False)
        self.k_w = nn.Conv2d(R, R, (1, k), groups=R, bias=False)
        self.a_out = nn.Conv2d(R, O, 1, bias=True)

    def forward(self, x):
        return self.a_out(self.k_w(self.k_h(self.a_in(x))))


class Tucker2Conv(nn.Module):
    """Tucker-2: 1x1 (I -> r1), core conv r1 -> r2 (k x k), 1x1 (r2 -> O) + bias."""

    def __init__(self, I, O, k, r1, r2):
        super().__init__()
        self.u_in = nn.Conv2d(I, r1, 1, bias=False)
        self.core = nn.Conv2d(r1, r2, k, bias=False)
        self.u_out = nn.Conv2d(r2, O, 1, bias=True)

    def forward(self, x):
        return self.u_out(self.core(self.u_in(x)))


class SvdDense(nn.Module):
    """Truncated SVD: x v^T (no bias), then u + bias."""

    def __init__(self, I, O, r):
        super().__init__()
        self.v = nn.Linear(I, r, bias=False)
        self.u = nn.Linear(r, O, bias=True)

    def forward(self, x):
        return self.u(self.v(x))


def make_layer(spec):
    s = SHAPES[spec['name']]
    op, ranks = spec['op'], spec['ranks']
    if op == 'conv2d':
        return nn.Conv2d(s['I'], s['O'], s['k'])
    if op == 'cp_conv2d':
        return CpConv(s['I'], s['O'], s['k'], ranks[0])
    if op == 'tucker2_conv2d':
        return Tucker2Conv(s['I'], s['O'], s['k'], ranks[0], ranks[1])
    if op == 'dense':
        return nn.Linear(s['I'], s['O'])
    if op == 'svd_dense':
        return SvdDense(s['I'], s['O'], ranks[0])
    raise SystemExit(f'torch_lenet_train: layer kind {op} is not written here')


class LeNet5(nn.Module):
    def __init__(self, layers):
        super().__init__()
        by = {l['name']: l for l in layers}
        self.conv1 = make_layer(by['conv1'])
        self.conv2 = make_layer(by['conv2'])
        self.fc1 = make_layer(by['fc1'])
        self.fc2 = make_layer(by['fc2'])

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = torch.flatten(x, 1)
        return self.fc2(F.relu(self.fc1(x)))


def load_idx(path, offset):
    with gzip.open(path, 'rb') as f:
        return np.frombuffer(f.read(), dtype=np.uint8, offset=offset)


def main():
    cfg = json.loads(sys.argv[1])
    torch.set_num_threads(int(cfg.get('threads', 2)))
    torch.manual_seed(int(cfg.get('seed', 0)))
    batch, steps, warmup = int(cfg['batch']), int(cfg['steps']), int(cfg['warmup'])
    n = batch * (steps + warmup)
    d = cfg.get('data', '/usr/share/datasets/fashion-mnist')
    images = load_idx(os.path.join(d, 'train-images-idx3-ubyte.gz'), 16)[: n * 784].reshape(-1, 1, 28, 28)
    labels = load_idx(os.path.join(d, 'train-labels-idx1-ubyte.gz'), 8)[:n]
    x_all = torch.from_numpy(images.astype(np.float32) / 255.0)
    y_all = torch.from_numpy(labels.astype(np.int64))
    perm = torch.randperm(x_all.shape[0])

    net = LeNet5(cfg['layers'])
    # The same architecture: every layer's parameter count must equal factorlite's.
    for spec in cfg['layers']:
        got = sum(p.numel() for p in getattr(net, spec['name']).parameters())
        if got != spec['params']:
            raise SystemExit(f"torch_lenet_train: {spec['name']} ({spec['op']}) has {got} params here, {spec['params']} in factorlite")
    opt = torch.optim.Adam(net.parameters(), lr=float(cfg.get('lr', 0.003)))
    net.train()
    t_start = None
    correct = 0
    for step in range(steps + warmup):
        if step == warmup:
            t_start = time.perf_counter()
        idx = perm[step * batch:(step + 1) * batch]
        x, y = x_all[idx], y_all[idx]
        opt.zero_grad()
        logits = net(x)
        loss = F.cross_entropy(logits, y)
        loss.backward()
        opt.step()
        correct += int((logits.argmax(1) == y).sum())
        if (step + 1) % 20 == 0:
            print(f'torch: step {step + 1}/{steps + warmup}, loss {loss.item():.4f}', file=sys.stderr)
    seconds = time.perf_counter() - t_start
    print(json.dumps({
        'torch': torch.__version__,
        'threads': torch.get_num_threads(),
        'batch': batch,
        'steps': steps,
        'warmup': warmup,
        'seconds': seconds,
        'imagesPerSecond': batch * steps / seconds,
        'params': sum(p.numel() for p in net.parameters()),
        'finalLoss': loss.item(),
    }))


if __name__ == '__main__':
    main()
