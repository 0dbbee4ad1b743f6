"""Small PyTorch models written the way users write them, exported the way tutorials export them
(torch.onnx.export, input 'input', output 'output', default opset and opsets 11/13/17, with and
without dynamic_axes={'input': {0: 'batch'}}). The sweep (scripts/userModelsSweep.ts) and the
acceptance test (test/acceptance/userModels.test.ts) run them through factorlite.

Usage: user_models.py OUT_DIR [--variants all|test] [NAME...]
Writes OUT_DIR/NAME.VARIANT.onnx for each variant (opsetD = torch's default, opset11, opset13,
opset17; a _dyn suffix for a dynamic batch axis; traced at batch 2; and opsetD_b1, traced at batch 1), OUT_DIR/NAME.x.npy (64 inputs, float32) and
OUT_DIR/NAME.json ({shape, kind, expect}). expect is 'ok' or 'refused' (recurrent nets).
Deterministic weights (seeded per model); BatchNorm statistics are randomised so that they matter.
"""
import json
import os
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


class ViewNet(nn.Module):
    """The classic tutorial CNN: conv-bn-relu-pool, x.view(x.size(0), -1), Dropout, Linear."""
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.drop = nn.Dropout(0.3)
        self.fc = nn.Linear(8 * 14 * 14, 10)
    def forward(self, x):
        x = F.max_pool2d(F.relu(self.bn(self.conv(x))), 2)
        x = x.view(x.size(0), -1)
        return self.fc(self.drop(x))


class SameConv(nn.Module):
    """'Same' padding written out (torch 1.13 cannot export padding='same': aten::_convolution_mode),
    dilation, groups, bias=False, LeakyReLU, nn.Flatten."""
    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(3, 8, 3, padding=1, bias=False)
        self.c2 = nn.Conv2d(8, 8, 3, padding=2, dilation=2, groups=2)
        self.c3 = nn.Conv2d(8, 16, 5, stride=2, padding=2, bias=False)
        self.act = nn.LeakyReLU(0.1)
        self.flat = nn.Flatten()
        self.fc = nn.Linear(16 * 8 * 8, 6)
    def forward(self, x):
        x = self.act(self.c1(x))
        x = self.act(self.c2(x))
        x = self.act(self.c3(x))
        return self.fc(self.flat(x))


class InvertedResidual(nn.Module):
    def __init__(self, cin, cout, stride, expand):
        super().__init__()
        mid = cin * expand
        self.use_res = stride == 1 and cin == cout
        self.body = nn.Sequential(
            nn.Conv2d(cin, mid, 1, bias=False), nn.BatchNorm2d(mid), nn.ReLU6(inplace=True),
            nn.Conv2d(mid, mid, 3, stride, 1, groups=mid, bias=False), nn.BatchNorm2d(mid), nn.ReLU6(inplace=True),
            nn.Conv2d(mid, cout, 1, bias=False), nn.BatchNorm2d(cout))
    def forward(self, x):
        return x + self.body(x) if self.use_res else self.body(x)


class MobileNetV2ish(nn.Module):
    """Inverted residual blocks (expand 1x1, depthwise 3x3, project 1x1, residual Add), ReLU6,
    adaptive_avg_pool2d + torch.flatten."""
    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, 2, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU6(inplace=True))
        self.blocks = nn.Sequential(InvertedResidual(16, 16, 1, 4), InvertedResidual(16, 24, 2, 4), InvertedResidual(24, 24, 1, 4))
        self.head = nn.Linear(24, 10)
    def forward(self, x):
        x = self.blocks(self.stem(x))
        x = F.adaptive_avg_pool2d(x, 1)
        return self.head(torch.flatten(x, 1))


class MLPBatchNorm(nn.Module):
    """Linear, BatchNorm1d, GELU, x.flatten(1)."""
    def __init__(self):
        super().__init__()
        self.l1 = nn.Linear(784, 128)
        self.bn = nn.BatchNorm1d(128)
        self.l2 = nn.Linear(128, 10)
    def forward(self, x):
        return self.l2(F.gelu(self.bn(self.l1(x.flatten(1)))))


class MLPLayerNorm(nn.Module):
    """reshape(-1, n), Linear, LayerNorm, SiLU, Dropout, LogSoftmax."""
    def __init__(self):
        super().__init__()
        self.l1 = nn.Linear(784, 64)
        self.ln = nn.LayerNorm(64)
        self.drop = nn.Dropout(0.2)
        self.l2 = nn.Linear(64, 10)
    def forward(self, x):
        x = self.drop(F.silu(self.ln(self.l1(x.reshape(-1, 784)))))
        return F.log_softmax(self.l2(x), dim=1)


class Activations(nn.Module):
    """An MLP through ELU, Mish, Hardswish, Tanh, ReLU6, Sigmoid, ending in Softmax."""
    def __init__(self):
        super().__init__()
        self.ls = nn.ModuleList([nn.Linear(32, 48), nn.Linear(48, 48), nn.Linear(48, 48), nn.Linear(48, 48), nn.Linear(48, 48), nn.Linear(48, 32)])
        self.acts = [nn.ELU(), nn.Mish(), nn.Hardswish(), nn.Tanh(), nn.ReLU6(), nn.Sigmoid()]
        self.out = nn.Linear(32, 5)
    def forward(self, x):
        for l, a in zip(self.ls, self.acts):
            x = a(l(x))
        return torch.softmax(self.out(x), dim=-1)


class PoolModes(nn.Module):
    """MaxPool ceil_mode, AvgPool count_include_pad True and False, ceil_mode avg pool, Tanh."""
    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(1, 6, 5)                                   # 28 -> 24
        self.p1 = nn.MaxPool2d(3, 2, ceil_mode=True)                    # 24 -> 12
        self.p2 = nn.AvgPool2d(3, 1, padding=1)                         # count_include_pad=True
        self.c2 = nn.Conv2d(6, 8, 3)                                    # 12 -> 10
        self.p3 = nn.AvgPool2d(3, 2, padding=1, count_include_pad=False, ceil_mode=True)  # 10 -> 6
        self.fc = nn.Linear(8 * 6 * 6, 10)
    def forward(self, x):
        x = self.p1(torch.tanh(self.c1(x)))
        x = self.p2(x)
        x = self.p3(torch.tanh(self.c2(x)))
        return self.fc(x.view(x.size(0), -1))


class AdaptivePools(nn.Module):
    """adaptive_avg_pool2d to (2, 2) and adaptive_max_pool2d to 1, concatenated."""
    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(3, 8, 3, padding=1)
        self.c2 = nn.Conv2d(8, 8, 3, stride=2, padding=1)
        self.fc = nn.Linear(8 * 4 + 8, 4)
    def forward(self, x):
        x = F.relu(self.c2(F.relu(self.c1(x))))                       # 16 -> 8
        a = F.adaptive_avg_pool2d(x, (2, 2)).flatten(1)
        b = F.adaptive_max_pool2d(x, 1).flatten(1)
        return self.fc(torch.cat([a, b], dim=1))


class SensorConv1d(nn.Module):
    """Accelerometer windows [N, 3, 128]: Conv1d, BatchNorm1d, ReLU, MaxPool1d, global average."""
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv1d(3, 16, 7, padding=3), nn.BatchNorm1d(16), nn.ReLU(), nn.MaxPool1d(2),
            nn.Conv1d(16, 32, 5, padding=2), nn.BatchNorm1d(32), nn.ReLU(), nn.MaxPool1d(2),
            nn.Conv1d(32, 32, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool1d(1), nn.Flatten(),
            nn.Linear(32, 6))
    def forward(self, x):
        return self.net(x)


class AudioConv1d(nn.Module):
    """MFCC frames [N, 40, 49] (channels = coefficients): dilated Conv1d, bias=False, AvgPool1d,
    then mean over time."""
    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv1d(40, 32, 3, dilation=2, bias=False)
        self.bn = nn.BatchNorm1d(32)
        self.c2 = nn.Conv1d(32, 32, 3, stride=2)
        self.pool = nn.AvgPool1d(2)
        self.fc = nn.Linear(32, 12)
    def forward(self, x):
        x = F.relu(self.bn(self.c1(x)))
        x = self.pool(F.relu(self.c2(x)))
        return self.fc(x.mean(dim=2))


class KwsCnn(nn.Module):
    """Keyword spotting on MFCCs [N, 1, 49, 10]: DS-CNN style with a non-square stem."""
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(1, 32, (10, 4), stride=(2, 2), padding=(5, 1))
        self.bn = nn.BatchNorm2d(32)
        self.dw = nn.Conv2d(32, 32, 3, padding=1, groups=32, bias=False)
        self.bn2 = nn.BatchNorm2d(32)
        self.pw = nn.Conv2d(32, 32, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(32)
        self.fc = nn.Linear(32, 12)
    def forward(self, x):
        x = F.relu(self.bn(self.stem(x)))
        x = F.relu(self.bn3(self.pw(F.relu(self.bn2(self.dw(x))))))
        x = F.avg_pool2d(x, (25, 5))
        return self.fc(x.view(x.size(0), -1))


class Decoder(nn.Module):
    """Encoder-decoder: ConvTranspose2d and nn.Upsample with Concat skips, Sigmoid output."""
    def __init__(self):
        super().__init__()
        self.e1 = nn.Conv2d(1, 8, 3, padding=1)
        self.e2 = nn.Conv2d(8, 16, 3, stride=2, padding=1)
        self.e3 = nn.Conv2d(16, 16, 3, stride=2, padding=1)
        self.up1 = nn.ConvTranspose2d(16, 16, 2, stride=2)
        self.d1 = nn.Conv2d(32, 8, 3, padding=1)
        self.up2 = nn.Upsample(scale_factor=2, mode='nearest')
        self.d2 = nn.Conv2d(16, 1, 3, padding=1)
    def forward(self, x):
        a = F.relu(self.e1(x))            # 16
        b = F.relu(self.e2(a))            # 8
        c = F.relu(self.e3(b))            # 4
        u = F.relu(self.d1(torch.cat([self.up1(c), b], dim=1)))   # 8
        return torch.sigmoid(self.d2(torch.cat([self.up2(u), a], dim=1)))


class BilinearSeg(nn.Module):
    """Segmenter: bilinear upsampling (align_corners False) back to the input size, ConvTranspose
    with output_padding."""
    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(3, 8, 3, stride=2, padding=1)     # 24 -> 12
        self.c2 = nn.Conv2d(8, 8, 3, stride=2, padding=1)     # 12 -> 6
        self.t = nn.ConvTranspose2d(8, 8, 3, stride=2, padding=1, output_padding=1)  # 6 -> 12
        self.head = nn.Conv2d(8, 3, 1)
    def forward(self, x):
        x = F.relu(self.c2(F.relu(self.c1(x))))
        x = F.relu(self.t(x))
        x = F.interpolate(self.head(x), scale_factor=2, mode='bilinear', align_corners=False)
        return x


class ResNetTiny(nn.Module):
    """Residual blocks with identity and 1x1 strided shortcuts, avg pool, view."""
    class Block(nn.Module):
        def __init__(self, cin, cout, stride):
            super().__init__()
            self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(cout)
            self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(cout)
            self.shortcut = nn.Sequential()
            if stride != 1 or cin != cout:
                self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
        def forward(self, x):
            out = F.relu(self.bn1(self.conv1(x)))
            out = self.bn2(self.conv2(out))
            out += self.shortcut(x)
            return F.relu(out)
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.layer1 = self.Block(16, 16, 1)
        self.layer2 = self.Block(16, 32, 2)
        self.linear = nn.Linear(32, 10)
    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layer2(self.layer1(out))
        out = F.avg_pool2d(out, 8)
        out = out.view(out.size(0), -1)
        return self.linear(out)


class SqueezeExcite(nn.Module):
    """Squeeze-and-excitation: global pool -> FC -> ReLU -> FC -> sigmoid -> Mul with a broadcast
    over H and W; Hardswish body (MobileNetV3 style); nn.Flatten head."""
    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(3, 24, 3, stride=2, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(24)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Linear(24, 6)
        self.fc2 = nn.Linear(6, 24)
        self.c2 = nn.Conv2d(24, 32, 1)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 10))
    def forward(self, x):
        x = F.hardswish(self.bn(self.c1(x)))
        b, c, _, _ = x.size()
        s = self.pool(x).view(b, c)
        s = torch.sigmoid(self.fc2(F.relu(self.fc1(s)))).view(b, c, 1, 1)
        x = x * s
        return self.head(F.hardswish(self.c2(x)))


class InputNorm(nn.Module):
    """(x - mean) / std inside forward with plain tensor constants, Dropout2d, LogSoftmax."""
    def __init__(self):
        super().__init__()
        self.mean = torch.tensor([0.4914, 0.4822, 0.4465]).view(1, 3, 1, 1)
        self.std = torch.tensor([0.2470, 0.2435, 0.2616]).view(1, 3, 1, 1)
        self.c1 = nn.Conv2d(3, 12, 3)
        self.drop = nn.Dropout2d(0.1)
        self.c2 = nn.Conv2d(12, 12, 3)
        self.fc = nn.Linear(12 * 6 * 6, 10)
    def forward(self, x):
        x = (x - self.mean) / self.std
        x = F.max_pool2d(F.relu(self.c1(x)), 2)          # 32 -> 30 -> 15
        x = F.max_pool2d(F.relu(self.drop(self.c2(x))), 2)  # 15 -> 13 -> 6
        x = torch.flatten(x, 1)
        return F.log_softmax(self.fc(x), dim=1)


class Linear3d(nn.Module):
    """Linear stacks over the last axis of [N, T, F] (MatMul + Add), GELU, mean over T."""
    def __init__(self):
        super().__init__()
        self.l1 = nn.Linear(16, 32)
        self.l2 = nn.Linear(32, 32)
        self.out = nn.Linear(32, 4)
    def forward(self, x):
        x = F.gelu(self.l1(x))
        x = F.relu(self.l2(x))
        return self.out(x.mean(dim=1))


class TokenMixer(nn.Module):
    """A transformer-style feed-forward block on [N, T, F]: LayerNorm, Linear-GELU-Linear with a
    residual Add, per-token output (no pooling)."""
    def __init__(self):
        super().__init__()
        self.ln = nn.LayerNorm(16)
        self.ff = nn.Sequential(nn.Linear(16, 64), nn.GELU(), nn.Linear(64, 16))
        self.head = nn.Linear(16, 3)
    def forward(self, x):
        x = x + self.ff(self.ln(x))
        return self.head(x)


class AutoEncoder(nn.Module):
    """Anomaly-detection autoencoder on [N, 128] feature vectors (value output, no classes)."""
    def __init__(self):
        super().__init__()
        self.enc = nn.Sequential(nn.Linear(128, 64), nn.BatchNorm1d(64), nn.ReLU(), nn.Linear(64, 8), nn.ReLU())
        self.dec = nn.Sequential(nn.Linear(8, 64), nn.BatchNorm1d(64), nn.ReLU(), nn.Linear(64, 128))
    def forward(self, x):
        return self.dec(self.enc(x))


class Regressor(nn.Module):
    """A sensor regressor with ELU and LeakyReLU, output [N, 2]."""
    def __init__(self):
        super().__init__()
        self.c = nn.Conv1d(6, 16, 5, stride=2)
        self.fc1 = nn.Linear(16 * 30, 32)
        self.fc2 = nn.Linear(32, 2)
    def forward(self, x):
        x = F.elu(self.c(x))
        x = x.reshape(x.shape[0], -1)
        return self.fc2(F.leaky_relu(self.fc1(x), 0.05))


class TinyGRU(nn.Module):
    """A recurrent net: factorlite refuses it (GRU), naming the node and the opset."""
    def __init__(self):
        super().__init__()
        self.rnn = nn.GRU(8, 16, batch_first=True)
        self.fc = nn.Linear(16, 3)
    def forward(self, x):
        out, _ = self.rnn(x)
        return self.fc(out[:, -1, :])


class TinyLSTM(nn.Module):
    """A recurrent net: factorlite refuses it (LSTM), naming the node and the opset."""
    def __init__(self):
        super().__init__()
        self.rnn = nn.LSTM(8, 16, batch_first=True)
        self.fc = nn.Linear(16, 3)
    def forward(self, x):
        out, _ = self.rnn(x)
        return self.fc(out[:, -1, :])


class SuperRes(nn.Module):
    """PyTorch's super-resolution tutorial shape: convs then nn.PixelShuffle(2)."""
    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(1, 16, 5, padding=2)
        self.c2 = nn.Conv2d(16, 8, 3, padding=1)
        self.c3 = nn.Conv2d(8, 4, 3, padding=1)
        self.ps = nn.PixelShuffle(2)
    def forward(self, x):
        x = torch.tanh(self.c1(x))
        x = torch.tanh(self.c2(x))
        return self.ps(self.c3(x))


class AlignCorners(nn.Module):
    """nn.Upsample(mode='bilinear', align_corners=True) (older segmentation code), torch.clamp."""
    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(3, 6, 3, stride=2, padding=1)
        self.up = nn.Upsample(scale_factor=2, mode='bilinear', align_corners=True)
        self.c2 = nn.Conv2d(6, 2, 1)
    def forward(self, x):
        x = torch.clamp(self.c1(x), -1.0, 1.0)
        return self.c2(self.up(x))


class PermuteConv1d(nn.Module):
    """Sensor windows stored [N, T, C], permuted to [N, C, T] for Conv1d; max over time with
    torch.max(x, dim=2)[0]; nn.Hardtanh."""
    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv1d(6, 16, 5, padding=2)
        self.c2 = nn.Conv1d(16, 16, 3, padding=1, groups=4)
        self.act = nn.Hardtanh()
        self.fc = nn.Linear(16, 5)
    def forward(self, x):
        x = x.permute(0, 2, 1)
        x = self.act(self.c2(F.relu(self.c1(x))))
        x = torch.max(x, dim=2)[0]
        return self.fc(x)


class GroupNormNet(nn.Module):
    """nn.GroupNorm and nn.InstanceNorm2d (affine) in a small conv net."""
    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(3, 8, 3, padding=1)
        self.gn = nn.GroupNorm(2, 8)
        self.c2 = nn.Conv2d(8, 8, 3, padding=1)
        self.inorm = nn.InstanceNorm2d(8, affine=True)
        self.fc = nn.Linear(8, 4)
    def forward(self, x):
        x = F.relu(self.gn(self.c1(x)))
        x = F.relu(self.inorm(self.c2(x)))
        return self.fc(x.mean([2, 3]))


class ChunkGate(nn.Module):
    """GLU-style gating: torch.chunk into two halves, a * sigmoid(b); ConvTranspose1d; x.pow(2)."""
    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv1d(4, 16, 3, padding=1)
        self.t = nn.ConvTranspose1d(8, 4, 4, stride=2, padding=1)
        self.fc = nn.Linear(4 * 32, 3)
    def forward(self, x):
        a, b = torch.chunk(self.c1(x), 2, dim=1)
        x = self.t(a * torch.sigmoid(b))
        x = x.pow(2)
        return self.fc(x.flatten(1))


class Softmax2dNet(nn.Module):
    """Per-pixel class scores with nn.Softmax2d (a segmenter head); GELU with approximate='tanh'."""
    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(3, 8, 3, padding=1)
        self.c2 = nn.Conv2d(8, 4, 1)
        self.sm = nn.Softmax2d()
    def forward(self, x):
        return self.sm(self.c2(F.gelu(self.c1(x), approximate='tanh')))


class EmbedNet(nn.Module):
    """nn.Embedding over token ids: out of scope (float inputs only), refused with a clear message."""
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(50, 8)
        self.fc = nn.Linear(8, 2)
    def forward(self, x):
        return self.fc(self.emb(x).mean(1))


# name -> (class, input shape without batch, kind, expect)
MODELS = {
    'viewnet': (ViewNet, [1, 28, 28], 'classes', 'ok'),
    'sameconv': (SameConv, [3, 16, 16], 'classes', 'ok'),
    'mbv2': (MobileNetV2ish, [3, 32, 32], 'classes', 'ok'),
    'mlpbn': (MLPBatchNorm, [1, 28, 28], 'classes', 'ok'),
    'mlpln': (MLPLayerNorm, [1, 28, 28], 'classes', 'ok'),
    'acts': (Activations, [32], 'classes', 'ok'),
    'pools': (PoolModes, [1, 28, 28], 'classes', 'ok'),
    'adaptive': (AdaptivePools, [3, 16, 16], 'classes', 'ok'),
    'sensor1d': (SensorConv1d, [3, 128], 'classes', 'ok'),
    'audio1d': (AudioConv1d, [40, 49], 'classes', 'ok'),
    'kwscnn': (KwsCnn, [1, 49, 10], 'classes', 'ok'),
    'decoder': (Decoder, [1, 16, 16], 'values', 'ok'),
    'bilinear': (BilinearSeg, [3, 24, 24], 'values', 'ok'),
    'resnet': (ResNetTiny, [3, 16, 16], 'classes', 'ok'),
    'se': (SqueezeExcite, [3, 16, 16], 'classes', 'ok'),
    'inputnorm': (InputNorm, [3, 32, 32], 'classes', 'ok'),
    'linear3d': (Linear3d, [10, 16], 'classes', 'ok'),
    'tokenmix': (TokenMixer, [10, 16], 'values', 'ok'),
    'autoenc': (AutoEncoder, [128], 'values', 'ok'),
    'regress': (Regressor, [6, 64], 'values', 'ok'),
    'superres': (SuperRes, [1, 12, 12], 'values', 'ok'),
    'aligncorners': (AlignCorners, [3, 16, 16], 'values', 'ok'),
    'permute1d': (PermuteConv1d, [50, 6], 'classes', 'ok'),
    'groupnorm': (GroupNormNet, [3, 12, 12], 'classes', 'ok'),
    'chunkgate': (ChunkGate, [4, 16], 'classes', 'ok'),
    'softmax2d': (Softmax2dNet, [3, 12, 12], 'values', 'ok'),
    'gru': (TinyGRU, [12, 8], 'classes', 'refused'),
    'lstm': (TinyLSTM, [12, 8], 'classes', 'refused'),
}

DEFAULT_OPSET = torch.onnx._constants.ONNX_DEFAULT_OPSET
VARIANTS = [(None, False), (11, False), (13, False), (17, False), (None, True), (11, True), (13, True), (17, True)]


def variant_name(opset, dyn):
    return f'opset{opset if opset is not None else "D"}{"_dyn" if dyn else ""}'


def build(name, seed):
    cls, shape, kind, expect = MODELS[name]
    torch.manual_seed(seed)
    m = cls()
    # Trained-looking BatchNorm statistics, so that folding them is exercised.
    for mod in m.modules():
        if isinstance(mod, (nn.BatchNorm1d, nn.BatchNorm2d)):
            mod.running_mean.uniform_(-0.3, 0.3)
            mod.running_var.uniform_(0.5, 1.5)
            mod.weight.data.uniform_(0.7, 1.3)
            mod.bias.data.uniform_(-0.2, 0.2)
        elif isinstance(mod, (nn.GroupNorm, nn.InstanceNorm2d, nn.LayerNorm)) and mod.weight is not None:
            mod.weight.data.uniform_(0.7, 1.3)
            mod.bias.data.uniform_(-0.2, 0.2)
    m.eval()
    return m, shape, kind, expect


def main():
    if sys.argv[1:] == ['--list']:
        print('\n'.join(MODELS))
        return
    out = sys.argv[1]
    args = sys.argv[2:]
    which = 'all'
    if args[:1] == ['--variants']:
        which, args = args[1], args[2:]
    names = args or list(MODELS)
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, 'index.txt'), 'w') as f:
        f.write('\n'.join(names) + '\n')
    for i, name in enumerate(names):
        m, shape, kind, expect = build(name, 1000 + list(MODELS).index(name))
        g = torch.Generator().manual_seed(7)
        x = torch.randn([64] + shape, generator=g)
        if name in ('decoder',):
            x = torch.rand([64] + shape, generator=g)
        np.save(os.path.join(out, f'{name}.x.npy'), x.numpy().astype(np.float32))
        rotated = VARIANTS[list(MODELS).index(name) % len(VARIANTS)]
        # all: the eight variants; test: the tutorials' default export and one rotated variant
        # (over the models, every opset with and without a dynamic batch axis).
        variants = VARIANTS if which == 'all' else [VARIANTS[0]] + ([rotated] if rotated != VARIANTS[0] else [VARIANTS[4]])
        vnames = [variant_name(o, d) for o, d in variants]
        # and, tutorial style, a fixed batch of 1 (torch.randn(1, ...)) at the default opset
        with torch.no_grad():
            torch.onnx.export(m, x[:1], os.path.join(out, f'{name}.opsetD_b1.onnx'), input_names=['input'], output_names=['output'])
        vnames.append('opsetD_b1')
        for opset, dyn in variants:
            kw = dict(input_names=['input'], output_names=['output'])
            if opset is not None:
                kw['opset_version'] = opset
            if dyn:
                kw['dynamic_axes'] = {'input': {0: 'batch'}, 'output': {0: 'batch'}}
            with torch.no_grad():
                torch.onnx.export(m, x[:2], os.path.join(out, f'{name}.{variant_name(opset, dyn)}.onnx'), **kw)
        with open(os.path.join(out, f'{name}.json'), 'w') as f:
            json.dump({'shape': shape, 'kind': kind, 'expect': expect, 'defaultOpset': DEFAULT_OPSET,
                       'variants': vnames}, f)


if __name__ == '__main__':
    main()
