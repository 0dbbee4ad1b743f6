// Models exported by PyTorch 1.13 the way users export them (test/support/torch_models.py), one
// per op family: a 1-D CNN, an encoder-decoder with skip Concat, Resize and ConvTranspose,
// avg_pool2d with padding (Pad + AveragePool) and reflection padding, a residual net, a
// depthwise-separable net with ReLU6/HardSwish/HardSigmoid/PReLU and Softmax, input
// normalisation with Split/Slice and LogSoftmax. Each at opsets 11, 13 and 17: imported, run on
// the reference and WebAssembly kernels, written to .flm and read back, exported to ONNX again,
// and compared with onnxruntime-node on the original file to 1e-4 relative error.
import t, { type Test } from 'tap';
import { compressModel } from '../../../converter/compress.js';
import { exportOnnx } from '../../../converter/export/index.js';
import { importOnnx } from '../../../converter/onnx/import.js';
import { writeFlm } from '../../../converter/writer.js';
import type { Model, Tensor } from '../../../runtime/ir.js';
import { readFlm } from '../../../runtime/format/reader.js';
import { hasWasmSimd, referenceBackend, wasmBackend, type KernelBackend } from '../../../runtime/kernels/backend.js';
import { Session } from '../../../runtime/session.js';
import { TORCH_MODELS, TORCH_OPSETS, torchModel, type TorchModel } from '../../support/torchModels.js';
import { Rng, TOL, relDiff, runOrt } from './fixtures/build.js';

async function backends(): Promise<Array<[string, KernelBackend]>> {
  const out: Array<[string, KernelBackend]> = [['reference', referenceBackend]];
  if (hasWasmSimd()) out.push(['wasm', await wasmBackend()]);
  return out;
}

function run(model: Model, x: Tensor, backend: KernelBackend): Tensor {
  const y = Session.create(model, { backend, retainWeights: false }).run({ input: x }).output;
  if (!y) throw new Error('no output');
  return y;
}

/** What each model must import to (beyond agreeing with onnxruntime). */
const STRUCTURE: Record<TorchModel, (t: Test, m: Model) => void> = {
  conv1d: (t, m) => {
    t.equal(m.graph.nodes.filter((n) => n.op === 'conv2d').length, 3, 'three 1-D convs run as 2-D convs');
    t.notOk(m.graph.nodes.some((n) => n.op === 'pad'), 'avg_pool1d padding folded into the pool');
    t.ok(m.graph.nodes.some((n) => n.op === 'conv2d' && n.attrs.group === 12), 'depthwise 1-D conv kept grouped');
    t.same(m.graph.nodes.map((n) => n.op).slice(0, 9),
      ['reshape', 'conv2d', 'relu', 'max_pool', 'conv2d', 'relu', 'avg_pool', 'conv2d', 'global_avg_pool'],
      'one lift to [N, C, 1, L] for the run of 1-D layers, BatchNorm folded');
  },
  unet: (t, m) => {
    const ops = m.graph.nodes.map((n) => n.op);
    t.equal(ops.filter((o) => o === 'concat').length, 2, 'two skip concats');
    t.equal(ops.filter((o) => o === 'resize').length, 2, 'nearest and bilinear resize');
    t.ok(ops.includes('conv_transpose2d'), 'transposed conv');
    t.same(m.graph.nodes.filter((n) => n.op === 'resize').map((n) => n.attrs.mode), ['nearest', 'linear']);
  },
  avgpad: (t, m) => {
    const pads = m.graph.nodes.filter((n) => n.op === 'pad');
    t.equal(pads.length, 1, 'zero pads folded into the conv and the pool; the reflection pad stays');
    t.equal(pads[0]?.attrs.mode, 'reflect');
    t.same(m.graph.nodes[0]?.attrs.pads, [0, 1, 1, 2], 'ZeroPad2d((1, 2, 0, 1)) became the conv pads');
    t.equal(m.graph.nodes.find((n) => n.op === 'avg_pool')?.attrs.count_include_pad, 1, 'avg_pool2d counts the pads');
  },
  resnet: (t, m) => {
    t.notOk(m.graph.nodes.some((n) => n.op === 'pad'), 'no Pad left');
    t.equal(m.graph.nodes.filter((n) => n.op === 'add').length, 3, 'three residual adds');
    t.notOk(m.graph.nodes.some((n) => n.op === 'mul'), 'every BatchNorm folded');
  },
  dsnet: (t, m) => {
    const ops = m.graph.nodes.map((n) => n.op);
    for (const op of ['prelu', 'hard_sigmoid', 'softmax', 'clip'] as const) t.ok(ops.includes(op), op);
    t.equal(m.graph.nodes.filter((n) => n.op === 'conv2d' && (n.attrs.group ?? 1) !== 1).length, 2, 'two depthwise convs');
  },
  norm: (t, m) => {
    const ops = m.graph.nodes.map((n) => n.op);
    t.equal(ops.filter((o) => o === 'slice').length, 4, 'split in two, then the crop on two axes');
    t.ok(ops.includes('concat') && ops.includes('log_softmax'));
    const dense = m.graph.nodes.find((n) => n.op === 'dense');
    t.ok(dense, 'addmm with alpha and beta is one dense layer');
  },
};

for (const name of TORCH_MODELS) {
  t.test(`${name}: PyTorch export agrees with onnxruntime-node`, async (t) => {
    for (const opset of TORCH_OPSETS) {
      const ex = torchModel(t, name, opset);
      if (!ex) return;
      const x = new Rng(opset).tensor(ex.inputShape);
      const theirs = (await runOrt(ex.bytes, { input: x })).output!;
      const model = importOnnx(ex.bytes, { sourceName: `${name}.onnx` });
      if (opset === 13) STRUCTURE[name](t, model);
      const stored = readFlm(writeFlm(model));
      for (const [bk, backend] of await backends()) {
        const d = relDiff(run(model, x, backend), theirs);
        t.ok(d <= TOL, `opset ${opset}, ${bk}: rel diff ${d.toExponential(2)} <= ${TOL}`);
        const ds = relDiff(run(stored, x, backend), theirs);
        t.ok(ds <= TOL, `opset ${opset}, ${bk}, through .flm: rel diff ${ds.toExponential(2)}`);
      }
      for (const eo of [11, 17]) {
        const back = (await runOrt(exportOnnx(stored, { opset: eo }), { input: x })).output!;
        const de = relDiff(back, theirs);
        t.ok(de <= TOL, `opset ${opset} exported at ${eo}, run by onnxruntime: rel diff ${de.toExponential(2)}`);
      }
    }
  });
}

// Residual and depthwise-separable nets under --ratio: full and 1x1 convs become factors, the
// depthwise convs stay dense or become dwlr_conv2d, and the factorised model runs the same on our kernels as its ONNX
// export does in onnxruntime (an independent executor of the factor chain).
for (const name of ['resnet', 'dsnet', 'conv1d'] as const) {
  t.test(`${name}: compressed at ratio 2 runs and stays correct`, async (t) => {
    // svd for the residual net keeps the test quick (auto also weighs Tucker-2 forms of every 3x3 conv).
    const method = name === 'resnet' ? 'svd' : 'auto';
    const ex = torchModel(t, name, 13);
    if (!ex) return;
    const dense = importOnnx(ex.bytes);
    // four calibration samples rather than the default 32 keep the rank search quick
    const calibration = new Rng(9).tensor([4, ...ex.inputShape.slice(1)]);
    const { model, report } = compressModel(dense, { method, ratio: 2, calibration });
    const factored = report.layers.filter((l) => l.op !== l.sourceOp);
    t.ok(factored.length >= 2, `${factored.length} layers factorised: ${factored.map((l) => `${l.name} -> ${l.op}`).join(', ')}`);
    const depthwise = dense.graph.nodes.filter((n) => n.op === 'conv2d' && (n.attrs.group ?? 1) !== 1).map((n) => n.name);
    for (const dw of depthwise) {
      const op = model.graph.nodes.find((n) => n.name === dw)?.op;
      t.ok(op === 'conv2d' || op === 'dwlr_conv2d', `${dw} (depthwise): ${op}`);
    }
    const stored = readFlm(writeFlm(model));
    const x = new Rng(5).tensor(ex.inputShape);
    const ort = (await runOrt(exportOnnx(stored, { opset: 13 }), { input: x })).output!;
    for (const [bk, backend] of await backends()) {
      const d = relDiff(run(stored, x, backend), ort);
      t.ok(d <= TOL, `${bk}: factorised model vs onnxruntime on its export: ${d.toExponential(2)}`);
    }
    const drift = relDiff(run(stored, x, referenceBackend), (await runOrt(ex.bytes, { input: x })).output!);
    t.ok(drift < 0.25, `output within 25% of the dense model's scale at ratio 2 (${drift.toFixed(3)})`);
  });
}
