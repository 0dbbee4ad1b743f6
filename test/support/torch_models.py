"""Small PyTorch models for the ONNX import tests, one per op family, exported the way users
export them (torch.onnx.export, opsets 11-17). Usage: torch_models.py OUT_DIR OPSET NAME...
Writes OUT_DIR/NAME.opsetN.onnx and OUT_DIR/NAME.opsetN.json (input shape). Deterministic weights."""
import json
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F


class Conv1dNet(nn.Module):
    """Keyword-spotting / sensor style: Conv1d, BN, ReLU, pools over [N, C, L], global pool."""
    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv1d(3, 8, 5, padding=2)
        self.b1 = nn.BatchNorm1d(8)
        self.c2 = nn.Conv1d(8, 12, 3, stride=2, dilation=1)
        self.dw = nn.Conv1d(12, 12, 3, padding=1, groups=12)
        self.fc = nn.Linear(12, 4)
    def forward(self, x):
        x = F.relu(self.b1(self.c1(x)))
        x = F.max_pool1d(x, 2)
        x = F.relu(self.c2(x))
        x = F.avg_pool1d(x, 3, stride=1, padding=1)
        x = self.dw(x)
        x = F.adaptive_avg_pool1d(x, 1).flatten(1)
        return self.fc(x)


class UNet(nn.Module):
    """Encoder-decoder with skip Concat, nearest and bilinear Resize, ConvTranspose."""
    def __init__(self):
        super().__init__()
        self.e1 = nn.Conv2d(1, 6, 3, padding=1)
        self.e2 = nn.Conv2d(6, 8, 3, padding=1)
        self.mid = nn.Conv2d(8, 8, 3, padding=1)
        self.up = nn.ConvTranspose2d(8, 8, 2, stride=2)
        self.d1 = nn.Conv2d(16, 6, 3, padding=1)
        self.d2 = nn.Conv2d(12, 1, 1)
    def forward(self, x):
        a = F.relu(self.e1(x))                      # 16x16
        b = F.relu(self.e2(F.max_pool2d(a, 2)))      # 8x8
        m = F.relu(self.mid(F.max_pool2d(b, 2)))     # 4x4
        u = torch.cat([self.up(m), b], 1)             # 8x8
        u = F.relu(self.d1(F.interpolate(u, scale_factor=2, mode='nearest')))  # 16x16
        v = F.interpolate(F.avg_pool2d(u, 2), size=(16, 16), mode='bilinear', align_corners=False)
        return torch.sigmoid(self.d2(torch.cat([v, a], 1)))


class AvgPadNet(nn.Module):
    """avg_pool2d with padding (count_include_pad=True -> Pad + AveragePool), ZeroPad2d before a
    conv (foldable) and reflection padding (an op of its own)."""
    def __init__(self):
        super().__init__()
        self.pad = nn.ZeroPad2d((1, 2, 0, 1))
        self.c1 = nn.Conv2d(2, 4, 3)
        self.c2 = nn.Conv2d(4, 4, 3)
        self.fc = nn.Linear(4 * 4 * 4, 5)
    def forward(self, x):
        x = F.relu(self.c1(self.pad(x)))
        x = F.avg_pool2d(x, 3, stride=2, padding=1)
        x = self.c2(F.pad(x, (1, 1, 1, 1), mode='reflect'))
        x = F.avg_pool2d(x, 2, padding=1, count_include_pad=False)
        return self.fc(x.flatten(1))


class Block(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.c1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.b1 = nn.BatchNorm2d(cout)
        self.c2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.b2 = nn.BatchNorm2d(cout)
        self.short = None if stride == 1 and cin == cout else nn.Conv2d(cin, cout, 1, stride)
    def forward(self, x):
        y = F.relu(self.b1(self.c1(x)))
        y = self.b2(self.c2(y))
        s = x if self.short is None else self.short(x)
        return F.relu(y + s)


class ResNet(nn.Module):
    """ResNet-8 shape (16-32-64) at a small input: residual Adds with identity and 1x1 shortcuts."""
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 16, 3, padding=1)
        self.bn = nn.BatchNorm2d(16)
        self.s1 = Block(16, 16, 1)
        self.s2 = Block(16, 32, 2)
        self.s3 = Block(32, 64, 2)
        self.fc = nn.Linear(64, 10)
    def forward(self, x):
        x = F.relu(self.bn(self.stem(x)))
        x = self.s3(self.s2(self.s1(x)))
        x = F.avg_pool2d(x, 4)
        return self.fc(torch.flatten(x, 1))


class DSNet(nn.Module):
    """Depthwise-separable (MobileNet / DS-CNN style) with ReLU6, Hardswish, a squeeze-excite gate
    (HardSigmoid), PReLU, and a Softmax output."""
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(1, 16, (5, 3), stride=(2, 1), padding=(2, 1))
        self.bn = nn.BatchNorm2d(16)
        self.dw1 = nn.Conv2d(16, 16, 3, padding=1, groups=16)
        self.pw1 = nn.Conv2d(16, 24, 1)
        self.dw2 = nn.Conv2d(24, 24, 3, stride=2, padding=1, groups=24)
        self.pw2 = nn.Conv2d(24, 24, 1)
        self.se1 = nn.Linear(24, 8)
        self.se2 = nn.Linear(8, 24)
        self.act = nn.PReLU(24)
        self.fc = nn.Linear(24, 6)
    def forward(self, x):
        x = F.relu6(self.bn(self.stem(x)))
        x = F.relu6(self.pw1(F.relu6(self.dw1(x))))
        x = F.hardswish(self.pw2(self.dw2(x)))
        g = F.hardsigmoid(self.se2(F.relu(self.se1(x.mean([2, 3])))))
        x = self.act(x * g.unsqueeze(-1).unsqueeze(-1))
        x = x.mean([2, 3])
        return F.softmax(self.fc(x), dim=1)


class NormNet(nn.Module):
    """Input normalisation by per-channel constants, Slice/Split/Squeeze, Gemm via addmm with
    alpha/beta, LogSoftmax output."""
    def __init__(self):
        super().__init__()
        self.register_buffer('mean', torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
        self.register_buffer('std', torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1))
        self.c1 = nn.Conv2d(3, 8, 3, padding=1)
        self.w = nn.Parameter(torch.randn(8 * 4 * 3, 7) * 0.1)
        self.b = nn.Parameter(torch.randn(7) * 0.1)
    def forward(self, x):
        x = (x - self.mean) / self.std
        x = x * 0.5 + 0.25
        x = F.relu(self.c1(x))
        a, b = torch.split(x, [4, 4], dim=1)
        x = torch.cat([a * 2.0, b - 1.0], dim=1)
        x = x[:, :, 1:-1, 2:8]
        x = F.max_pool2d(x, 2)
        x = torch.flatten(x, 1)
        x = torch.addmm(self.b, x, self.w, beta=0.5, alpha=2.0)
        return F.log_softmax(x, dim=-1)


MODELS = {
    'conv1d': (Conv1dNet, [2, 3, 40]),
    'unet': (UNet, [2, 1, 16, 16]),
    'avgpad': (AvgPadNet, [2, 2, 14, 13]),
    'resnet': (ResNet, [2, 3, 16, 16]),
    'dsnet': (DSNet, [2, 1, 20, 10]),
    'norm': (NormNet, [2, 3, 10, 12]),
}


def randomise_bn(m):
    for mod in m.modules():
        if isinstance(mod, (nn.BatchNorm1d, nn.BatchNorm2d)):
            mod.running_mean.uniform_(-0.5, 0.5)
            mod.running_var.uniform_(0.5, 1.5)
            mod.weight.data.uniform_(0.5, 1.5)
            mod.bias.data.uniform_(-0.2, 0.2)


def main():
    out, opset, names = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
    for name in names:
        cls, shape = MODELS[name]
        torch.manual_seed(7)
        m = cls()
        randomise_bn(m)
        m.eval()
        x = torch.randn(*shape)
        path = f'{out}/{name}.opset{opset}.onnx'
        torch.onnx.export(m, (x,), path, opset_version=opset, input_names=['input'], output_names=['output'],
                          dynamic_axes={'input': {0: 'batch'}, 'output': {0: 'batch'}})
        with open(f'{out}/{name}.opset{opset}.json', 'w') as f:
            json.dump({'shape': shape}, f)


if __name__ == '__main__':
    main()
