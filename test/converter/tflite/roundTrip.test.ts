// TFLite export -> TFLite import gives back the same function (no browser needed), and the
// reader only ever fails with a typed TfliteError on hostile bytes.
import t, { type Test } from 'tap';
import { exportTflite } from '../../../converter/export/tflite.js';
import { exportTfliteInt8 } from '../../../converter/export/tfliteInt8.js';
import { importTflite, readTflite, TfliteError } from '../../../converter/tflite/index.js';
import { Op, TensorType } from '../../../converter/tflite/schema.js';
import { TfliteBuilder } from '../../../converter/export/tfliteBuilder.js';
import { numel, type Model } from '../../../runtime/ir.js';
import { Session } from '../../../runtime/session.js';
import { chainModel, randArray, stored } from '../export/harness.js';
import { depthwiseChain, factorChain, tensorNetModels, toNhwc } from './models.js';

function roundTrip(t: Test, name: string, model: Model): Uint8Array {
  const { bytes } = exportTflite(model);
  const back = importTflite(bytes);
  const [c, h, w] = model.graph.inputs[0]!.shape.slice(1) as [number, number, number];
  t.same(back.graph.inputs[0]!.shape, [-1, h, w, c], `${name}: the imported input is NHWC`);
  const n = 3;
  const x = randArray(n * c * h * w);
  const want = Session.create(model).runBatch({ shape: [n, c, h, w], data: x });
  const got = Session.create(back).runBatch({ shape: [n, h, w, c], data: toNhwc(x, n, c, h, w) });
  t.same(got.shape, want.shape, `${name}: output shape`);
  let d = 0;
  for (let i = 0; i < want.data.length; i++) d = Math.max(d, Math.abs(want.data[i]! - got.data[i]!));
  t.ok(d <= 1e-5, `${name}: max difference after export and import ${d} <= 1e-5`);
  return bytes;
}

t.test('export then import computes the same outputs', async (t) => {
  roundTrip(t, 'factor chain', factorChain());
  roundTrip(t, 'depthwise chain', depthwiseChain());
});

t.test('tensor-network dense kinds: export then import computes the same outputs', async (t) => {
  for (const [name, model] of tensorNetModels()) {
    const bytes = roundTrip(t, name, model);
    const f = readTflite(bytes);
    const sg = f.subgraphs[0]!;
    const ops = new Set(sg.operators.map((o) => o.code));
    const dense = model.graph.nodes.filter((n) => n.op.endsWith('_dense') && n.op !== 'svd_dense');
    if (dense.some((n) => (n.attrs.in_modes as number[]).length > 1)) t.ok(ops.has(Op.BATCH_MATMUL), `${name}: BATCH_MATMUL for the inner cores`);
    const largest = Math.max(...sg.tensors.filter((x) => (f.buffers[x.buffer]?.length ?? 0) > 0).map((x) => numel(x.shape)));
    const first = dense[0]!;
    const full = numel(first.attrs.out_modes as number[]) * numel(first.attrs.in_modes as number[]);
    if ((first.attrs.in_modes as number[]).length > 1) t.ok(largest < full, `${name}: largest constant ${largest} < the dense weight's ${full}`);
    t.ok(sg.tensors.every((x) => x.shape.every((d) => d > 0)), `${name}: every tensor shape is static`);
  }
});

t.test('int8 calibration: MSE clipping keeps heavy tails from widening inner ranges, never the outputs\'', async (t) => {
  const model = chainModel([16], [
    { op: 'dense', weights: { weight: stored('h.w', [32, 16]), bias: stored('h.b', [32]) } },
    { op: 'relu' },
    { op: 'dense', weights: { weight: stored('o.w', [4, 32]), bias: stored('o.b', [4]) } },
  ]);
  // Many ordinary samples and one far outside them: over 130k hidden values the rounding error of a
  // range stretched to the outlier outweighs clipping that one sample.
  const n = 4096;
  const data = randArray(n * 16);
  for (let i = 0; i < 16; i++) data[i]! *= 8;
  const calibration = { shape: [n, 16], data };
  // The hidden values themselves (relu(W x + b)), to measure each range's quantisation error.
  const w = model.tensors.get('h.w')!.data as Float32Array;
  const bias = model.tensors.get('h.b')!.data as Float32Array;
  const hidden = new Float32Array(n * 32);
  for (let s = 0; s < n; s++) for (let o = 0; o < 32; o++) {
    let v = bias[o]!;
    for (let i = 0; i < 16; i++) v += w[o * 16 + i]! * data[s * 16 + i]!;
    hidden[s * 32 + o] = Math.max(0, v);
  }
  const quant = (clip: boolean): { hidden: { scale: number; zp: number }; out: number } => {
    const f = readTflite(exportTfliteInt8(model, { calibration, clip }).bytes);
    const sg = f.subgraphs[0]!;
    const ops = sg.operators.filter((o) => o.code === Op.FULLY_CONNECTED);
    const h = sg.tensors[ops[0]!.outputs[0]!]!;
    t.equal(h.type, TensorType.INT8);
    return { hidden: { scale: h.quant!.scale[0]!, zp: h.quant!.zeroPoint[0]! }, out: sg.tensors[ops[1]!.outputs[0]!]!.quant!.scale[0]! };
  };
  const sqErr = (q: { scale: number; zp: number }): number => {
    let e = 0;
    for (const v of hidden) e += (q.scale * (Math.max(-128, Math.min(127, Math.round(v / q.scale) + q.zp)) - q.zp) - v) ** 2;
    return e;
  };
  const minmax = quant(false);
  const mse = quant(true);
  t.ok(mse.hidden.scale < minmax.hidden.scale, `hidden step ${mse.hidden.scale.toExponential(3)} < min/max step ${minmax.hidden.scale.toExponential(3)}`);
  t.ok(sqErr(mse.hidden) < sqErr(minmax.hidden), `squared error of the hidden values: ${sqErr(mse.hidden).toExponential(3)} (clipped) < ${sqErr(minmax.hidden).toExponential(3)} (min/max)`);
  t.equal(mse.out, minmax.out, 'the graph output keeps its full range (clipping the top logit could change the top-1)');
});

t.test('the file is well formed TFLite: identifier, ops, static shapes', async (t) => {
  const f = readTflite(exportTflite(factorChain()).bytes);
  t.equal(f.version, 3);
  const ops = new Set(f.subgraphs[0]!.operators.map((o) => o.code));
  for (const op of [Op.CONV_2D, Op.DEPTHWISE_CONV_2D, Op.PAD, Op.MAX_POOL_2D, Op.FULLY_CONNECTED, Op.RESHAPE, Op.TRANSPOSE, Op.SOFTMAX]) {
    t.ok(ops.has(op), `uses builtin ${op}`);
  }
  // Fused: no separate RELU op after conv/fc.
  t.notOk(ops.has(Op.RELU), 'relu is fused into the op before it');
  t.ok(f.subgraphs[0]!.tensors.every((x) => x.shape.every((d) => d > 0)), 'every tensor shape is static');
});

t.test('typed errors', async (t) => {
  t.throws(() => importTflite(new Uint8Array(4)), { code: 'TFLITE_PARSE' });
  t.throws(() => importTflite(new TextEncoder().encode('this is not a flatbuffer')), { code: 'TFLITE_PARSE' });
  const good = exportTflite(depthwiseChain()).bytes;
  t.throws(() => importTflite(good.subarray(0, good.length >> 1)), { code: 'TFLITE_BOUNDS' });
  const b = new TfliteBuilder();
  const x = b.activation('x', [1, 4, 4, 8]);
  const y = b.activation('y', [1, 8, 8, 2]);
  b.op(5 /* DEPTH_TO_SPACE */, [x], [y]);
  t.throws(() => importTflite(b.finish([x], [y], 'depth to space')), { code: 'TFLITE_UNSUPPORTED_OP' });
  const b2 = new TfliteBuilder();
  const x2 = b2.activation('x', [1, 4]);
  const y2 = b2.activation('y', [1, 3]);
  b2.op(Op.FULLY_CONNECTED, [x2, b2.f32('w', [3, 5], new Float32Array(15)), -1], [y2]);
  t.throws(() => importTflite(b2.finish([x2], [y2], 'bad fc')), { code: 'TFLITE_BAD_MODEL' });
  const b3 = new TfliteBuilder();
  const x3 = b3.activation('x', [1, 4]);
  const y3 = b3.activation('y', [1, 3]);
  b3.op(Op.FULLY_CONNECTED, [x3, b3.f32('w', [3, 4], new Float32Array(11)), -1], [y3]);
  t.throws(() => importTflite(b3.finish([x3], [y3], 'short buffer')), { code: 'TFLITE_BAD_MODEL' });
});

t.test('CONCATENATION on the channel axis of NHWC values', async (t) => {
  const b = new TfliteBuilder();
  const x = b.activation('x', [1, 2, 2, 3]);
  const r = b.activation('r', [1, 2, 2, 3]);
  const y = b.activation('y', [1, 2, 2, 6]);
  b.op(Op.RELU, [x], [r]);
  b.op(Op.CONCATENATION, [x, r], [y], 10, [[0, 'i32', 3], [1, 'i8', 0]]);
  const m = importTflite(b.finish([x], [y], 'concat'));
  const data = randArray(12);
  const got = Session.create(m).runBatch({ shape: [1, 2, 2, 3], data });
  const want = new Float32Array(24);
  for (let p = 0; p < 4; p++) for (let c = 0; c < 3; c++) {
    want[p * 6 + c] = data[p * 3 + c]!;
    want[p * 6 + 3 + c] = Math.max(0, data[p * 3 + c]!);
  }
  t.same(got.shape, [1, 2, 2, 6]);
  t.same(Array.from(got.data), Array.from(want), 'channels of x then relu(x), per pixel');
});

t.test('fuzz: random and mutated bytes end in a TfliteError or a valid model', async (t) => {
  const good = exportTflite(depthwiseChain()).bytes;
  let seed = 12345;
  const rnd = (n: number): number => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed % n;
  };
  let typed = 0;
  let ok = 0;
  const other: string[] = [];
  const tryOne = (bytes: Uint8Array): void => {
    try {
      const m = importTflite(bytes);
      if (numel([m.graph.nodes.length]) >= 0) ok++;
    } catch (e) {
      if (e instanceof TfliteError) typed++;
      else other.push(String(e));
    }
  };
  for (let i = 0; i < 300; i++) {
    const m = good.slice();
    const flips = 1 + rnd(8);
    // Mutations land in the flatbuffer tables (the first bytes and the end), not only in weight data.
    for (let k = 0; k < flips; k++) {
      const where = rnd(2) === 0 ? rnd(Math.min(4096, m.length)) : m.length - 1 - rnd(Math.min(4096, m.length));
      m[where] = rnd(256);
    }
    tryOne(m);
  }
  for (let i = 0; i < 100; i++) {
    const m = new Uint8Array(8 + rnd(2000)).map(() => rnd(256));
    m.set([0x54, 0x46, 0x4c, 0x33], 4);
    tryOne(m);
  }
  for (let i = 0; i < 50; i++) tryOne(good.subarray(0, rnd(good.length)));
  // The tensor-network chains: constant BATCH_MATMUL operands, rank-3 reshapes, a rank-4 TRANSPOSE.
  const net = exportTflite(tensorNetModels()[1]![1]).bytes;
  for (let i = 0; i < 150; i++) {
    const m = net.slice();
    for (let k = 0, flips = 1 + rnd(8); k < flips; k++) m[rnd(2) === 0 ? rnd(Math.min(4096, m.length)) : m.length - 1 - rnd(Math.min(4096, m.length))] = rnd(256);
    tryOne(m);
  }
  for (let i = 0; i < 25; i++) tryOne(net.subarray(0, rnd(net.length)));
  t.same(other, [], 'no untyped error');
  t.ok(typed > 100, `${typed} typed errors, ${ok} models still valid`);
});
