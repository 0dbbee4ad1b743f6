# MLPerf Tiny's four reference models (v0.5/v1.0 training code, github.com/mlcommons/tiny),
# rebuilt in PyTorch from their published definitions and exported to ONNX:
#   ic  ResNet-8: conv 16, three residual stacks of 16, 32, 64 filters (stride 1, 2, 2; 1x1
#       convolution shortcut where the shape changes), 8x8 average pool, dense 10; 3x32x32 input
#   kws DS-CNN: conv 64 (10x4, stride 2), four depthwise 3x3 + pointwise 64 blocks, average pool
#       over the remaining 25x5, dense 12; 1x49x10 MFCC input
#   vww MobileNetV1 alpha 0.25: conv 8 stride 2, 13 depthwise-separable blocks (16 ... 256
#       channels), 3x3 average pool, dense 2; 3x96x96 input
#   ad  fully connected autoencoder 640-128x4-8-128x4-640, batch norm and ReLU after each hidden layer
# Batch norm follows every convolution, as in the reference; the exporter folds it into the
# convolution (eval mode). Keras 'same' padding is asymmetric at stride 2 (one more row and column
# at the end); PyTorch pads symmetrically, so these models have the reference's shapes and
# parameter counts, with the padding of stride-2 layers shifted by one pixel. DS-CNN's first layer
# (10x4 kernel, stride 2 on 49x10) pads 5 rows each side where Keras pads 4 above and 5 below.
#
# The reference data sets (CIFAR-10, Speech Commands, Visual Wake Words, ToyADMOS) are not
# available here. IC is trained on Fashion-MNIST padded to 32x32 and repeated over 3 channels;
# the other three keep their seeded initialisation and get fixed random inputs, with PyTorch's
# outputs as the reference.
#
# Usage: python3 scripts/mlperf_tiny.py OUT_DIR [--epochs N] [--train-limit N] [--test-limit N]
#        [--finetune-limit N] [--samples N] [--threads N]
# Seeded (torch.manual_seed(0), numpy default_rng(0)): the same arguments give the same models.
# Writes OUT_DIR/{ic,kws,vww,ad}.onnx, {name}_x.npy (inputs), {name}_ref.npy (PyTorch outputs),
# ic_y.npy (Fashion-MNIST labels of ic_x.npy), ic_data/ (x_train.npy, y_train.npy, x_test.npy,
# y_test.npy: the fine-tuning set as `--data DIR` reads it), and summary.json.
import argparse
import gzip
import json
import os
import time

import numpy as np
import torch
from torch import nn
import torch.nn.functional as F

FASHION = '/usr/share/datasets/fashion-mnist'


def conv_bn(cin, cout, k, stride=1, groups=1, padding=None):
    if padding is None:
        padding = k // 2 if isinstance(k, int) else tuple(x // 2 for x in k)
    return [nn.Conv2d(cin, cout, k, stride, padding, groups=groups), nn.BatchNorm2d(cout)]


def avg_pool(k):
    # No padding, so count_include_pad changes nothing in the result; with its default (True)
    # PyTorch 1.13 writes a zero Pad before every AveragePool, with False it writes the pool alone.
    return nn.AvgPool2d(k, count_include_pad=False)


class ResBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.body = nn.Sequential(*conv_bn(cin, cout, 3, stride), nn.ReLU(), *conv_bn(cout, cout, 3))
        self.short = nn.Conv2d(cin, cout, 1, stride) if (stride != 1 or cin != cout) else nn.Identity()

    def forward(self, x):
        return F.relu(self.body(x) + self.short(x))


def resnet8():
    return nn.Sequential(
        *conv_bn(3, 16, 3), nn.ReLU(),
        ResBlock(16, 16, 1), ResBlock(16, 32, 2), ResBlock(32, 64, 2),
        avg_pool(8), nn.Flatten(), nn.Linear(64, 10))


def ds_cnn():
    layers = [*conv_bn(1, 64, (10, 4), 2, padding=(5, 1)), nn.ReLU()]
    for _ in range(4):
        layers += [*conv_bn(64, 64, 3, groups=64), nn.ReLU(), *conv_bn(64, 64, 1), nn.ReLU()]
    return nn.Sequential(*layers, avg_pool((25, 5)), nn.Flatten(), nn.Linear(64, 12))


def mobilenet_v1_025():
    # (output channels, stride) of the 13 depthwise-separable blocks at alpha = 0.25.
    blocks = [(16, 1), (32, 2), (32, 1), (64, 2), (64, 1), (128, 2)] + [(128, 1)] * 5 + [(256, 2), (256, 1)]
    layers = [*conv_bn(3, 8, 3, 2), nn.ReLU()]
    c = 8
    for cout, s in blocks:
        layers += [*conv_bn(c, c, 3, s, groups=c), nn.ReLU(), *conv_bn(c, cout, 1), nn.ReLU()]
        c = cout
    return nn.Sequential(*layers, avg_pool(3), nn.Flatten(), nn.Linear(256, 2))


def autoencoder():
    dims = [640, 128, 128, 128, 128, 8, 128, 128, 128, 128]
    layers = []
    for a, b in zip(dims, dims[1:]):
        layers += [nn.Linear(a, b), nn.BatchNorm1d(b), nn.ReLU()]
    return nn.Sequential(*layers, nn.Linear(128, 640))


MODELS = {'ic': (resnet8, (3, 32, 32)), 'kws': (ds_cnn, (1, 49, 10)), 'vww': (mobilenet_v1_025, (3, 96, 96)), 'ad': (autoencoder, (640,))}


def fashion(split, limit):
    prefix = 'train' if split == 'train' else 't10k'
    x = np.frombuffer(gzip.open(f'{FASHION}/{prefix}-images-idx3-ubyte.gz').read()[16:], np.uint8).reshape(-1, 28, 28)[:limit]
    y = np.frombuffer(gzip.open(f'{FASHION}/{prefix}-labels-idx1-ubyte.gz').read()[8:], np.uint8)[:limit]
    # Padded to 32x32 and repeated over 3 channels: [N, 3, 32, 32] uint8.
    x = np.repeat(np.pad(x, ((0, 0), (2, 2), (2, 2)))[:, None], 3, axis=1)
    return np.ascontiguousarray(x), y.astype(np.int64)


def train_ic(model, epochs, limit, log):
    x, y = fashion('train', limit)
    xt = torch.from_numpy(x).float() / 255
    yt = torch.from_numpy(y)
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, 3e-3, total_steps=epochs * ((len(x) + 63) // 64))
    g = torch.Generator().manual_seed(0)
    for e in range(epochs):
        model.train()
        perm = torch.randperm(len(x), generator=g)
        t0, tot, n = time.time(), 0.0, 0
        for i in range(0, len(x), 64):
            idx = perm[i:i + 64]
            loss = F.cross_entropy(model(xt[idx]), yt[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            tot += loss.item() * len(idx)
            n += len(idx)
        log(f'ic epoch {e + 1}/{epochs}: loss {tot / n:.4f}, {time.time() - t0:.0f} s')


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('out')
    ap.add_argument('--epochs', type=int, default=2)
    ap.add_argument('--train-limit', type=int, default=60000)
    ap.add_argument('--test-limit', type=int, default=1000)
    ap.add_argument('--finetune-limit', type=int, default=10000, help='training images in ic_data/ for fine-tuning')
    ap.add_argument('--samples', type=int, default=32, help='random inputs for kws, vww, ad')
    ap.add_argument('--threads', type=int, default=1, help='PyTorch threads (OpenMP threads slow down badly on a shared machine)')
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    torch.manual_seed(0)
    torch.set_num_threads(max(1, a.threads))
    log = lambda s: print(s, flush=True)
    rng = np.random.default_rng(0)
    summary = {}
    for name, (build, shape) in MODELS.items():
        model = build()
        train_seconds = 0.0
        if name == 'ic' and a.epochs > 0:
            t0 = time.time()
            train_ic(model, a.epochs, a.train_limit, log)
            train_seconds = time.time() - t0
        elif name != 'ic':
            # Batch-norm statistics as after training, so that the folded weights are not trivial.
            for m in model.modules():
                if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
                    with torch.no_grad():
                        m.running_mean.uniform_(-0.2, 0.2)
                        m.running_var.uniform_(0.5, 2.0)
                        m.weight.uniform_(0.5, 1.5)
                        m.bias.uniform_(-0.2, 0.2)
        model.eval()
        if name == 'ic':
            xu8, y = fashion('test', a.test_limit)
            np.save(f'{a.out}/ic_x.npy', xu8)
            np.save(f'{a.out}/ic_y.npy', y)
            os.makedirs(f'{a.out}/ic_data', exist_ok=True)
            xtr, ytr = fashion('train', a.finetune_limit)
            for k, v in {'x_train': xtr, 'y_train': ytr, 'x_test': xu8, 'y_test': y}.items():
                np.save(f'{a.out}/ic_data/{k}.npy', v)
            x = torch.from_numpy(xu8).float() / 255
        else:
            x = torch.from_numpy(rng.standard_normal((a.samples, *shape)).astype(np.float32))
            np.save(f'{a.out}/{name}_x.npy', x.numpy())
        with torch.no_grad():
            ref = model(x).numpy()
        np.save(f'{a.out}/{name}_ref.npy', ref)
        torch.onnx.export(model, x[:1], f'{a.out}/{name}.onnx', input_names=['input'], output_names=['output'],
                          dynamic_axes={'input': {0: 'batch'}, 'output': {0: 'batch'}}, opset_version=13)
        params = sum(p.numel() for p in model.parameters() if p.requires_grad)
        s = {'params': params, 'input': list(shape), 'onnx_bytes': os.path.getsize(f'{a.out}/{name}.onnx')}
        if name == 'ic':
            s['accuracy'] = float((ref.argmax(1) == y).mean())
            s['epochs'] = a.epochs
            s['train_samples'] = min(a.train_limit, 60000)
            s['train_seconds'] = round(train_seconds, 1)
            s['threads'] = a.threads
        summary[name] = s
        log(f'{name}: {json.dumps(s)}')
    json.dump(summary, open(f'{a.out}/summary.json', 'w'), indent=1)


if __name__ == '__main__':
    main()
