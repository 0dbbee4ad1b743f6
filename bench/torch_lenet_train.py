#!/usr/bin/env python3
"""PyTorch peer of the training-throughput part of bench/training.ts.

Trains the same factorised LeNet-5 that factorlite's buildNet({arch: 'lenet5', layer, ratio}) builds,
layer by layer as the stages the TS side wrote for it (bench/lib/torchStages.ts: each layer kind's own
ONNX export read back as Conv and Gemm stages, so no layer kind is named here), on Fashion-MNIST
training images, with Adam, softmax cross-entropy, the same batch, and reports images/s over a fixed
number of steps after some warm-up steps. Prints one JSON object on stdout; progress on stderr.

    /usr/bin/python3 bench/torch_lenet_train.py '{"batch":64,"steps":100,"warmup":10,"threads":2,
        "lr":0.003,"data":"/usr/share/datasets/fashion-mnist","layers":[{"name":"conv2","op":"...",
        "params":2450,"stages":[{"op":"Conv","weight":[30,20,1,1],"group":1,"strides":[1,1],
        "pads":[0,0,0,0],"dilations":[1,1],"bias":false}, ...]}, ...]}'
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


def make_stage(s):
    """One ONNX Conv (weight [O, I/group, kh, kw]) or Gemm (transB, weight [O, I]) as a torch module."""
    if s['op'] == 'Conv':
        o, ig, kh, kw = s['weight']
        top, left, bottom, right = s['pads']
        if top != bottom or left != right:
            raise SystemExit(f"torch_lenet_train: asymmetric conv pads {s['pads']} are not written here")
        return nn.Conv2d(ig * s['group'], o, (kh, kw), stride=tuple(s['strides']), padding=(top, left),
                         dilation=tuple(s['dilations']), groups=s['group'], bias=s['bias'])
    if s['op'] == 'Gemm':
        o, i = s['weight']
        return nn.Linear(i, o, bias=s['bias'])
    raise SystemExit(f"torch_lenet_train: stage {s['op']} is not written here")


def make_layer(spec):
    return nn.Sequential(*[make_stage(s) for s in spec['stages']])


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
