"""Small PyTorch models with the element-wise and normalisation layers of modern nets (GELU exact
and tanh, SiLU, LayerNorm, BatchNorm1d after Linear, an MLP-mixer block, a MatMul of two activations), exported the way users
export them. Usage: torch_models_norm.py OUT_DIR OPSET NAME... Writes OUT_DIR/NAME.opsetN.onnx
(dynamic batch axis), OUT_DIR/NAME.opsetN.static.onnx (fixed batch) and OUT_DIR/NAME.opsetN.json
(input shape). Deterministic weights."""
import json
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F


class GeluMlp(nn.Module):
    """Linear -> GELU (exact, through erf) -> Linear -> GELU (tanh form) -> Linear."""
    def __init__(self):
        super().__init__()
        self.a = nn.Linear(16, 24)
        self.b = nn.Linear(24, 24)
        self.c = nn.Linear(24, 5)
    def forward(self, x):
        x = F.gelu(self.a(x))
        x = F.gelu(self.b(x), approximate='tanh')
        return self.c(x)


class SiluMlp(nn.Module):
    """SiLU as a module and as x * sigmoid(x), and a lone erf."""
    def __init__(self):
        super().__init__()
        self.a = nn.Linear(16, 20)
        self.b = nn.Linear(20, 5)
    def forward(self, x):
        x = F.silu(self.a(x))
        return self.b(x * torch.sigmoid(x) + torch.erf(x))


class LnMlp(nn.Module):
    """LayerNorm after Linear (with and without the affine part: PyTorch 1.13 cannot export the
    latter as LayerNormalization, so at opset 17 both are affine), then GELU."""
    def __init__(self, affine2=False):
        super().__init__()
        self.a = nn.Linear(16, 32)
        self.n1 = nn.LayerNorm(32)
        self.b = nn.Linear(32, 32)
        self.n2 = nn.LayerNorm(32, elementwise_affine=affine2, eps=1e-6)
        self.c = nn.Linear(32, 5)
    def forward(self, x):
        x = F.gelu(self.n1(self.a(x)))
        x = F.relu(self.n2(self.b(x)))
        return self.c(x)


class BnMlp(nn.Module):
    """BatchNorm1d after Linear on [N, C], before and after the activation."""
    def __init__(self):
        super().__init__()
        self.a = nn.Linear(16, 24)
        self.n1 = nn.BatchNorm1d(24)
        self.b = nn.Linear(24, 24)
        self.n2 = nn.BatchNorm1d(24)
        self.c = nn.Linear(24, 5)
    def forward(self, x):
        x = F.relu(self.n1(self.a(x)))
        x = self.n2(F.silu(self.b(x)))
        return self.c(x)


class Mixer(nn.Module):
    """An attention-free MLP-mixer block over [N, tokens, channels]: token mixing through a
    transpose, channel mixing, LayerNorm and GELU, residual adds, a LayerNorm over both axes, then a
    linear head."""
    def __init__(self, tokens=8, ch=12):
        super().__init__()
        self.n1 = nn.LayerNorm(ch)
        self.t1 = nn.Linear(tokens, 16)
        self.t2 = nn.Linear(16, tokens)
        self.n2 = nn.LayerNorm(ch)
        self.c1 = nn.Linear(ch, 24)
        self.c2 = nn.Linear(24, ch)
        self.n3 = nn.LayerNorm([tokens, ch])
        self.head = nn.Linear(tokens * ch, 4)
    def forward(self, x):
        y = self.n1(x).transpose(1, 2)
        x = x + self.t2(F.gelu(self.t1(y))).transpose(1, 2)
        x = x + self.c2(F.gelu(self.c1(self.n2(x))))
        return self.head(self.n3(x).flatten(1))


class Gram(nn.Module):
    """Self-similarity over [N, tokens, channels]: softmax(q q^T / sqrt(C)) x with q = Linear(x),
    a MatMul of two activations (attention without its key and value projections), then a
    linear head."""
    def __init__(self, tokens=6, ch=8):
        super().__init__()
        self.q = nn.Linear(ch, ch)
        self.head = nn.Linear(tokens * ch, 3)
        self.scale = ch ** -0.5
    def forward(self, x):
        q = self.q(x)
        s = torch.softmax(torch.matmul(q, q.transpose(1, 2)) * self.scale, -1)
        return self.head(torch.matmul(s, x).flatten(1))


class WideMlp(nn.Module):
    """An MLP wide enough that --ratio 2 keeps ranks of tens: Linear, LayerNorm, GELU twice."""
    def __init__(self):
        super().__init__()
        self.a = nn.Linear(64, 192)
        self.n1 = nn.LayerNorm(192)
        self.b = nn.Linear(192, 192)
        self.n2 = nn.LayerNorm(192)
        self.c = nn.Linear(192, 10)
    def forward(self, x):
        x = F.gelu(self.n1(self.a(x)), approximate='tanh')
        x = F.gelu(self.n2(self.b(x)))
        return self.c(x)


class Elementwise(nn.Module):
    """The plain element-wise and reduce ops: Sqrt, Abs, Exp, Neg, Log, Reciprocal, Pow, Max/Min
    against a constant, Div of two activations and of a constant by an activation, ReduceMean /
    ReduceMax / ReduceSum over non-spatial axes."""
    def __init__(self):
        super().__init__()
        self.l = nn.Linear(10, 10)
    def forward(self, x):
        y = self.l(x)
        a = torch.sqrt(torch.abs(y) + 0.5)
        s = a + torch.exp(-y.abs()) + torch.log(y * y + 1) + torch.reciprocal(a) + 0.1 * torch.pow(y, 3) + torch.pow(a, -1.5)
        s = s + torch.maximum(y, torch.tensor(-0.5)) + torch.minimum(y, torch.tensor(0.5)) + y / (a + 1) + 2 / a
        return torch.cat([s.mean(1), s.amax(1), s.sum(-1)], 1)


MODELS = {
    'gelu': (GeluMlp, [2, 16]),
    'silu': (SiluMlp, [2, 16]),
    'layernorm': (LnMlp, [2, 16]),
    'bn1d': (BnMlp, [2, 16]),
    'mixer': (Mixer, [2, 8, 12]),
    'widemlp': (WideMlp, [2, 64]),
    'elementwise': (Elementwise, [2, 6, 10]),
    'gram': (Gram, [2, 6, 8]),
}


def randomise_norm(m):
    for mod in m.modules():
        if isinstance(mod, nn.BatchNorm1d):
            mod.running_mean.uniform_(-0.5, 0.5)
            mod.running_var.uniform_(0.5, 1.5)
            mod.weight.data.uniform_(0.5, 1.5)
            mod.bias.data.uniform_(-0.2, 0.2)
        if isinstance(mod, nn.LayerNorm) and mod.elementwise_affine:
            mod.weight.data.uniform_(0.5, 1.5)
            mod.bias.data.uniform_(-0.2, 0.2)


def decay_spectra(m):
    """Linear weights with the decaying singular values of trained layers (sigma_i ~ 0.9^i), so
    that a rank-reduced layer keeps most of the map, as it does on a trained model; random
    Gaussian weights have a flat spectrum that no low-rank form approximates."""
    g = torch.Generator().manual_seed(3)
    for mod in m.modules():
        if isinstance(mod, nn.Linear):
            out_f, in_f = mod.weight.shape
            u, _ = torch.linalg.qr(torch.randn(out_f, out_f, generator=g))
            v, _ = torch.linalg.qr(torch.randn(in_f, in_f, generator=g))
            k = min(out_f, in_f)
            s = 0.9 ** torch.arange(k, dtype=torch.float32) * 1.5
            mod.weight.data = u[:, :k] @ torch.diag(s) @ v[:, :k].T


def main():
    out, opset, names = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
    for name in names:
        cls, shape = MODELS[name]
        torch.manual_seed(11)
        m = cls(affine2=True) if name == 'layernorm' and opset >= 17 else cls()
        randomise_norm(m)
        decay_spectra(m)
        m.eval()
        x = torch.randn(*shape)
        for suffix, dyn in (('', {'input': {0: 'batch'}, 'output': {0: 'batch'}}), ('.static', None)):
            path = f'{out}/{name}.opset{opset}{suffix}.onnx'
            torch.onnx.export(m, (x,), path, opset_version=opset, input_names=['input'], output_names=['output'],
                              dynamic_axes=dyn)
        with open(f'{out}/{name}.opset{opset}.json', 'w') as f:
            json.dump({'shape': shape}, f)


if __name__ == '__main__':
    main()
