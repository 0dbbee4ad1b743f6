"""The second round of models users bring (scripts/user_models.py is the first): torchvision's
small classifiers at small input sizes with seeded random weights (resnet18, mobilenet_v2,
mobilenet_v3_small, squeezenet1_1, shufflenet_v2_x0_5, efficientnet_b0, googlenet), a tiny vision
transformer and nn.MultiheadAttention, a dilated causal TCN on Conv1d, a small U-Net, and the
export options users pass (do_constant_folding=False, keep_initializers_as_inputs=True), two-input
and two-output models, and BatchNorm exported in training mode (to be refused). Same files and
variants as user_models.py; meta also lists 'inputs' (one shape per input) and 'outputs' (count),
and x.npy / x1.npy hold the 64 inputs of each input.

Usage: user_models2.py OUT_DIR [--variants all|test] [NAME...]
nn.TransformerEncoderLayer and nn.MultiheadAttention take a fused fast path under torch.no_grad()
in torch 1.13 that cannot be exported (aten::_transformer_encoder_layer_fwd); users export those
with gradients enabled, and so does this script (the weights are the same, the graph is the slow
path's MatMul / Softmax / LayerNorm chain).
"""
import json
import os
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision.models as tvm

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from user_models import VARIANTS, DEFAULT_OPSET, variant_name  # noqa: E402


class TinyViT(nn.Module):
    """Patch embedding (Conv2d stride = patch), class token, position embedding, two
    nn.TransformerEncoderLayer (batch_first, GELU, norm_first), LayerNorm, head on the class token."""
    def __init__(self):
        super().__init__()
        self.patch = nn.Conv2d(3, 32, 4, 4)
        self.cls = nn.Parameter(torch.randn(1, 1, 32) * 0.1)
        self.pos = nn.Parameter(torch.randn(1, 17, 32) * 0.1)
        layer = nn.TransformerEncoderLayer(32, 4, 64, dropout=0.1, activation='gelu', batch_first=True, norm_first=True)
        self.enc = nn.TransformerEncoder(layer, 2)
        self.norm = nn.LayerNorm(32)
        self.head = nn.Linear(32, 10)
    def forward(self, x):
        x = self.patch(x).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls.expand(x.shape[0], -1, -1), x], dim=1) + self.pos
        x = self.norm(self.enc(x))
        return self.head(x[:, 0])


class MHABlock(nn.Module):
    """A transformer encoder block written out: nn.MultiheadAttention (sequence-first, the
    default), residuals, post-norm LayerNorm, a GELU MLP; mean over the tokens."""
    def __init__(self):
        super().__init__()
        self.inp = nn.Linear(12, 24)
        self.attn = nn.MultiheadAttention(24, 3)
        self.n1 = nn.LayerNorm(24)
        self.mlp = nn.Sequential(nn.Linear(24, 48), nn.GELU(), nn.Linear(48, 24))
        self.n2 = nn.LayerNorm(24)
        self.head = nn.Linear(24, 5)
    def forward(self, x):  # [N, T, F]
        h = self.inp(x).transpose(0, 1)  # [T, N, E]
        a, _ = self.attn(h, h, h, need_weights=False)
        h = self.n1(h + a)
        h = self.n2(h + self.mlp(h))
        return self.head(h.mean(0))


class TCN(nn.Module):
    """Dilated causal Conv1d blocks (pad both sides, chop the right: x[:, :, :-pad]), weight
    norm-free residual with a 1x1 downsample, ReLU, Dropout; the last time step to a Linear head."""
    def __init__(self):
        super().__init__()
        self.blocks = nn.ModuleList()
        cin = 4
        for i, c in enumerate([16, 16, 24]):
            d = 2 ** i
            self.blocks.append(nn.ModuleDict({
                'c1': nn.Conv1d(cin, c, 3, padding=2 * d, dilation=d), 'c2': nn.Conv1d(c, c, 3, padding=2 * d, dilation=d),
                'down': nn.Conv1d(cin, c, 1) if cin != c else nn.Identity()}))
            cin = c
        self.drop = nn.Dropout(0.2)
        self.head = nn.Linear(24, 6)
    def forward(self, x):  # [N, C, T]
        for i, b in enumerate(self.blocks):
            p = 2 * 2 ** i
            h = self.drop(F.relu(b['c1'](x)[:, :, :-p]))
            h = self.drop(F.relu(b['c2'](h)[:, :, :-p]))
            x = F.relu(h + b['down'](x))
        return self.head(x[:, :, -1])


class UNet(nn.Module):
    """Two-level U-Net: double conv + BN + ReLU, MaxPool down, ConvTranspose2d(2, stride 2) up,
    torch.cat skips, 1x1 head to 2 classes per pixel."""
    def __init__(self):
        super().__init__()
        def dc(a, b):
            return nn.Sequential(nn.Conv2d(a, b, 3, padding=1, bias=False), nn.BatchNorm2d(b), nn.ReLU(inplace=True),
                                 nn.Conv2d(b, b, 3, padding=1, bias=False), nn.BatchNorm2d(b), nn.ReLU(inplace=True))
        self.d1, self.d2, self.mid = dc(3, 8), dc(8, 16), dc(16, 32)
        self.u2, self.c2 = nn.ConvTranspose2d(32, 16, 2, 2), dc(32, 16)
        self.u1, self.c1 = nn.ConvTranspose2d(16, 8, 2, 2), dc(16, 8)
        self.out = nn.Conv2d(8, 2, 1)
    def forward(self, x):
        a = self.d1(x)
        b = self.d2(F.max_pool2d(a, 2))
        m = self.mid(F.max_pool2d(b, 2))
        b = self.c2(torch.cat([self.u2(m), b], dim=1))
        a = self.c1(torch.cat([self.u1(b), a], dim=1))
        return self.out(a)


class SmallCNN(nn.Module):
    """conv-bn-relu x2, pool, flatten, Linear: exported with non-default options."""
    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(3, 8, 3, padding=1)
        self.b1 = nn.BatchNorm2d(8)
        self.c2 = nn.Conv2d(8, 16, 3, padding=1)
        self.b2 = nn.BatchNorm2d(16)
        self.fc = nn.Linear(16 * 4 * 4, 10)
    def forward(self, x):
        x = F.max_pool2d(F.relu(self.b1(self.c1(x))), 2)
        x = F.max_pool2d(F.relu(self.b2(self.c2(x))), 2)
        return self.fc(x.reshape(x.shape[0], -1))


class TwoInputs(nn.Module):
    """An image and a feature vector: a conv branch and an MLP branch, concatenated, one head."""
    def __init__(self):
        super().__init__()
        self.conv = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten())
        self.mlp = nn.Sequential(nn.Linear(6, 16), nn.ReLU())
        self.head = nn.Linear(32 + 16, 4)
    def forward(self, img, feats):
        return self.head(torch.cat([self.conv(img), self.mlp(feats)], dim=1))


class TwoOutputs(nn.Module):
    """A shared trunk with a class head and a box-regression head (two outputs)."""
    def __init__(self):
        super().__init__()
        self.trunk = nn.Sequential(nn.Conv2d(3, 8, 3, 2, 1), nn.BatchNorm2d(8), nn.ReLU(), nn.Conv2d(8, 16, 3, 2, 1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.cls = nn.Linear(16, 5)
        self.box = nn.Sequential(nn.Linear(16, 4), nn.Sigmoid())
    def forward(self, x):
        h = self.trunk(x)
        return self.cls(h), self.box(h)


def tv(fn, **kw):
    return lambda: fn(weights=None, **kw)


# name: (constructor, input shapes, kind, expect, export options)
MODELS = {
    'tv_resnet18': (tv(tvm.resnet18, num_classes=10), [[3, 32, 32]], 'classes', 'ok', {}),
    'tv_mobilenet_v2': (tv(tvm.mobilenet_v2, num_classes=10, width_mult=0.5), [[3, 32, 32]], 'classes', 'ok', {}),
    'tv_mobilenet_v3_small': (tv(tvm.mobilenet_v3_small, num_classes=10), [[3, 32, 32]], 'classes', 'ok', {}),
    'tv_squeezenet1_1': (tv(tvm.squeezenet1_1, num_classes=10), [[3, 48, 48]], 'classes', 'ok', {}),
    'tv_shufflenet_v2_x0_5': (tv(tvm.shufflenet_v2_x0_5, num_classes=10), [[3, 32, 32]], 'classes', 'ok', {}),
    'tv_efficientnet_b0': (tv(tvm.efficientnet_b0, num_classes=10), [[3, 32, 32]], 'classes', 'ok', {}),
    'tv_googlenet': (tv(tvm.googlenet, num_classes=10, aux_logits=False, init_weights=True), [[3, 32, 32]], 'classes', 'ok', {}),
    'vit_tiny': (TinyViT, [[3, 16, 16]], 'classes', 'ok', {'grad': True}),
    'mha_block': (MHABlock, [[8, 12]], 'classes', 'ok', {'grad': True}),
    'tcn': (TCN, [[4, 32]], 'classes', 'ok', {}),
    'unet': (UNet, [[3, 16, 16]], 'values', 'ok', {}),
    'nofold': (SmallCNN, [[3, 16, 16]], 'classes', 'ok', {'do_constant_folding': False}),
    'initinputs': (SmallCNN, [[3, 16, 16]], 'classes', 'ok', {'keep_initializers_as_inputs': True}),
    'twoinputs': (TwoInputs, [[1, 8, 8], [6]], 'classes', 'ok', {}),
    'twooutputs': (TwoOutputs, [[3, 16, 16]], 'classes', 'ok', {}),
    'bntrain': (SmallCNN, [[3, 16, 16]], 'classes', 'refused', {'training': 'train'}),
}


def build(name, seed):
    ctor, shapes, kind, expect, opts = MODELS[name]
    torch.manual_seed(seed)
    m = ctor()
    for mod in m.modules():
        if isinstance(mod, (nn.BatchNorm1d, nn.BatchNorm2d)):
            mod.running_mean.uniform_(-0.3, 0.3)
            mod.running_var.uniform_(0.5, 1.5)
            mod.weight.data.uniform_(0.7, 1.3)
            mod.bias.data.uniform_(-0.2, 0.2)
        elif isinstance(mod, nn.LayerNorm):
            mod.weight.data.uniform_(0.7, 1.3)
            mod.bias.data.uniform_(-0.2, 0.2)
    m.eval()
    return m, shapes, kind, expect, opts


def export(m, args, path, opts, **kw):
    names = ['input'] if len(args) == 1 else [f'input{i}' for i in range(len(args))]
    kw = dict(kw, input_names=names)
    for k in ('do_constant_folding', 'keep_initializers_as_inputs'):
        if k in opts:
            kw[k] = opts[k]
    if opts.get('training') == 'train':
        # The mistake: the model left in train() and exported preserving that mode.
        m.train()
        kw['training'] = torch.onnx.TrainingMode.TRAINING
    if 'dynamic_axes' in kw:
        kw['dynamic_axes'] = {**{n: {0: 'batch'} for n in names}, **{n: {0: 'batch'} for n in kw['output_names']}}
    if opts.get('grad'):
        torch.onnx.export(m, tuple(args), path, **kw)
    else:
        with torch.no_grad():
            torch.onnx.export(m, tuple(args), path, **kw)
    m.eval()


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
    with open(os.path.join(out, 'index2.txt'), 'w') as f:
        f.write('\n'.join(names) + '\n')
    for name in names:
        m, shapes, kind, expect, opts = build(name, 2000 + list(MODELS).index(name))
        g = torch.Generator().manual_seed(7)
        xs = [torch.randn([64] + s, generator=g) for s in shapes]
        for i, x in enumerate(xs):
            np.save(os.path.join(out, f'{name}.x{"" if i == 0 else i}.npy'), x.numpy().astype(np.float32))
        with torch.no_grad():
            y = m(*[x[:2] for x in xs])
        n_out = len(y) if isinstance(y, tuple) else 1
        onames = ['output'] if n_out == 1 else [f'output{i}' for i in range(n_out)]
        rotated = VARIANTS[list(MODELS).index(name) % len(VARIANTS)]
        variants = VARIANTS if which == 'all' else [VARIANTS[0]] + ([rotated] if rotated != VARIANTS[0] else [VARIANTS[4]])
        vnames = [variant_name(o, d) for o, d in variants]
        export(m, [x[:1] for x in xs], os.path.join(out, f'{name}.opsetD_b1.onnx'), opts, output_names=onames)
        vnames.append('opsetD_b1')
        for opset, dyn in variants:
            kw = dict(output_names=onames)
            if opset is not None:
                kw['opset_version'] = opset
            if dyn:
                kw['dynamic_axes'] = {}
            export(m, [x[:2] for x in xs], os.path.join(out, f'{name}.{variant_name(opset, dyn)}.onnx'), opts, **kw)
        with open(os.path.join(out, f'{name}.json'), 'w') as f:
            json.dump({'shape': shapes[0], 'inputs': shapes, 'outputs': n_out, 'kind': kind, 'expect': expect,
                       'defaultOpset': DEFAULT_OPSET, 'variants': vnames}, f)
        print(name, file=sys.stderr)


if __name__ == '__main__':
    main()
