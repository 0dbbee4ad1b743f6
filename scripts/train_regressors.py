"""Two trained models whose outputs are not class scores, to calibrate what a relative output error
means for the task (converter/check.ts WARN_OUTPUT_ERROR; bench/outputError.ts):

  ae   the MLPerf Tiny anomaly-detection autoencoder's shape (fully connected, 128 x 4 - 8 - 128 x 4,
       BatchNorm and ReLU after each hidden layer) on 784-pixel Fashion-MNIST images, trained to
       reconstruct the eight "normal" classes 0-7; the task is anomaly detection: the per-image
       reconstruction MSE scores classes 8 (bag) and 9 (ankle boot) as anomalies (ROC AUC).
  rot  a small CNN (conv 8, conv 16 with BatchNorm, dense 64, dense 1) that regresses the angle
       of a Fashion-MNIST image rotated by a uniform angle in [-45, 45] degrees (output in units
       of 45 degrees); the task metric is R^2 of the angle.

Run with Debian's PyTorch:  /usr/bin/python3 scripts/train_regressors.py OUT_DIR [--epochs 2] [--rot-train 20000] [--threads 1]
Seeded: the same arguments give the same models. Writes OUT_DIR/{ae,rot}.onnx (opset 13, dynamic
batch; BatchNorm folded by the exporter), {ae,rot}_calib.npy (512 training inputs, float32),
{ae,rot}_x.npy (1000 test inputs), ae_y.npy (1 = anomaly), rot_y.npy (angle / 45), summary.json.
"""
import argparse
import gzip
import json
import math
import os
import time

import numpy as np
import torch
from torch import nn
import torch.nn.functional as F

DATA = '/usr/share/datasets/fashion-mnist'


def idx(name):
    with gzip.open(os.path.join(DATA, name + '.gz'), 'rb') as f:
        raw = f.read()
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], 'big') for i in range(ndim)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def load(split):
    p = 'train' if split == 'train' else 't10k'
    x = torch.tensor(idx(f'{p}-images-idx3-ubyte').astype(np.float32) / 255.0)
    y = torch.tensor(idx(f'{p}-labels-idx1-ubyte').astype(np.int64))
    return x, y


def autoencoder():
    dims = [784, 128, 128, 128, 128, 8, 128, 128, 128, 128]
    layers = []
    for a, b in zip(dims, dims[1:]):
        layers += [nn.Linear(a, b), nn.BatchNorm1d(b), nn.ReLU()]
    return nn.Sequential(*layers, nn.Linear(128, 784))


def rot_net():
    return nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(16 * 7 * 7, 64), nn.ReLU(), nn.Linear(64, 1))


def rotate(x, g):
    """x [N, 28, 28] -> rotated [N, 1, 28, 28] and the angle / 45 degrees, uniform in [-1, 1]."""
    t = torch.rand(x.shape[0], generator=g) * 2 - 1
    a = t * math.pi / 4
    theta = torch.zeros(x.shape[0], 2, 3)
    theta[:, 0, 0] = torch.cos(a)
    theta[:, 0, 1] = -torch.sin(a)
    theta[:, 1, 0] = torch.sin(a)
    theta[:, 1, 1] = torch.cos(a)
    grid = F.affine_grid(theta, [x.shape[0], 1, 28, 28], align_corners=False)
    return F.grid_sample(x[:, None], grid, align_corners=False), t


def train(model, x, y, epochs, lr, log, name):
    opt = torch.optim.Adam(model.parameters(), lr)
    steps = epochs * ((len(x) + 127) // 128)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, lr * 3, total_steps=steps)
    g = torch.Generator().manual_seed(1)
    for e in range(epochs):
        model.train()
        perm = torch.randperm(len(x), generator=g)
        t0, tot, n = time.time(), 0.0, 0
        for i in range(0, len(x), 128):
            j = perm[i:i + 128]
            loss = F.mse_loss(model(x[j]), y[j])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            tot += loss.item() * len(j)
            n += len(j)
        log(f'{name} epoch {e + 1}/{epochs}: mse {tot / n:.5f}, {time.time() - t0:.0f} s')
    model.eval()


def export(model, example, path):
    torch.onnx.export(model, example, path, opset_version=13, input_names=['x'], output_names=['y'],
                      dynamic_axes={'x': {0: 'n'}, 'y': {0: 'n'}})


def auc(scores, labels):
    order = np.argsort(scores)
    ranks = np.empty(len(scores))
    ranks[order] = np.arange(1, len(scores) + 1)
    pos = labels == 1
    npos, nneg = pos.sum(), (~pos).sum()
    return float((ranks[pos].sum() - npos * (npos + 1) / 2) / (npos * nneg))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('out')
    ap.add_argument('--epochs', type=int, default=2)
    ap.add_argument('--rot-train', type=int, default=20000, help='rotated training images for rot')
    ap.add_argument('--threads', type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    os.makedirs(a.out, exist_ok=True)
    log = lambda s: print(s, flush=True)
    xtr, ytr = load('train')
    xte, yte = load('test')
    xte, yte = xte[:1000], yte[:1000]
    summary = {}

    # Autoencoder: normal = classes 0-7.
    normal = xtr[ytr < 8].reshape(-1, 784)
    ae = autoencoder()
    train(ae, normal, normal, a.epochs, 1e-3, log, 'ae')
    with torch.no_grad():
        xt = xte.reshape(-1, 784)
        err = ((ae(xt) - xt) ** 2).mean(1).numpy()
    lab = (yte >= 8).numpy().astype(np.float32)
    summary['ae'] = {'auc': auc(err, lab), 'test': 1000, 'anomalies': int(lab.sum())}
    export(ae, normal[:2], os.path.join(a.out, 'ae.onnx'))
    np.save(os.path.join(a.out, 'ae_calib.npy'), normal[:512].numpy().astype(np.float32))
    np.save(os.path.join(a.out, 'ae_x.npy'), xt.numpy().astype(np.float32))
    np.save(os.path.join(a.out, 'ae_y.npy'), lab)

    # Rotation regressor.
    g = torch.Generator().manual_seed(2)
    xr, tr = rotate(xtr[:a.rot_train], g)
    rot = rot_net()
    train(rot, xr, tr[:, None], a.epochs, 1e-3, log, 'rot')
    xrt, trt = rotate(xte, g)
    with torch.no_grad():
        pred = rot(xrt)[:, 0].numpy()
    t = trt.numpy()
    summary['rot'] = {'r2': float(1 - ((pred - t) ** 2).sum() / ((t - t.mean()) ** 2).sum()), 'test': 1000}
    export(rot, xrt[:2], os.path.join(a.out, 'rot.onnx'))
    xc, _ = rotate(xtr[a.rot_train:a.rot_train + 512], g)
    np.save(os.path.join(a.out, 'rot_calib.npy'), xc.numpy().astype(np.float32))
    np.save(os.path.join(a.out, 'rot_x.npy'), xrt.numpy().astype(np.float32))
    np.save(os.path.join(a.out, 'rot_y.npy'), t.astype(np.float32))
    with open(os.path.join(a.out, 'summary.json'), 'w') as f:
        json.dump(summary, f, indent=1)
    log(json.dumps(summary))


if __name__ == '__main__':
    main()
