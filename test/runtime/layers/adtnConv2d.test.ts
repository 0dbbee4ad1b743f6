// adtn_conv2d (runtime/layers/adtnConv2d.ts): the session, on the reference and the WebAssembly
// kernels and on both load paths (the MPS expansion, the gate-by-gate rebuild), against a direct
// convolution written here with W the head of the f64 state (adtnState); the ONNX export (kernel
// formed, one Conv) against onnxruntime-node; the trainable layer's kernel against the runtime's and
// its gradients against central finite differences; the converter's fit of a conv kernel a circuit
// builds (adtn_conv2d); and the
// exports' and explain's W, now formed by adtnMatrix (expandMps), equal to the old rebuild's.
import t from 'tap';
import { adtn } from '../../../converter/methods/adtn.js';
import { explainAdtn } from '../../../converter/explain/adtn.js';
import { exportOnnx } from '../../../converter/export/onnx.js';
import { adtnConv2d as trainAdtnConv } from '../../../converter/train/layers/adtn.js';
import { param } from '../../../converter/train/tensor.js';
import { gradCheck } from '../../converter/train/gradcheck.js';
import { agree, single, stored } from '../../converter/export/harness.js';
import type { StoredTensor } from '../../../runtime/ir.js';
import { wasmBackendSync, referenceBackend } from '../../../runtime/kernels/backend.js';
import { adtnLayout, adtnMatrix, adtnQubits, adtnRuntimePlan, adtnState, adtnWeight, setAdtnRuntimeMode } from '../../../runtime/layers/adtnDense.js';
import { Session } from '../../../runtime/session.js';
import type { Target } from '../../../converter/rank/target.js';

let seed = 777;
const rnd = () => {
  seed = (seed * 1103515245 + 12345) % 2147483648;
  return seed / 2147483648 - 0.5;
};
const randArr = (n: number, s = 1) => Float32Array.from({ length: n }, () => rnd() * s);

interface Geo { strides: [number, number]; pads: [number, number, number, number]; dilations: [number, number] }

/** y = conv(x, W) + b, W [T, S, kh, kw], in f64 by the definition (ONNX Conv, group 1). */
function directConv(x: Float32Array, xs: number[], w: ArrayLike<number>, ws: number[], b: Float32Array, g: Geo): { y: Float64Array; shape: number[] } {
  const [N, S, H, W] = xs as [number, number, number, number];
  const [T, , kh, kw] = ws as [number, number, number, number];
  const OH = Math.floor((H + g.pads[0] + g.pads[2] - g.dilations[0] * (kh - 1) - 1) / g.strides[0]) + 1;
  const OW = Math.floor((W + g.pads[1] + g.pads[3] - g.dilations[1] * (kw - 1) - 1) / g.strides[1]) + 1;
  const y = new Float64Array(N * T * OH * OW);
  for (let n = 0; n < N; n++) for (let o = 0; o < T; o++) for (let oy = 0; oy < OH; oy++) for (let ox = 0; ox < OW; ox++) {
    let a = b[o]!;
    for (let c = 0; c < S; c++) for (let i = 0; i < kh; i++) for (let j = 0; j < kw; j++) {
      const iy = oy * g.strides[0] - g.pads[0] + i * g.dilations[0];
      const ix = ox * g.strides[1] - g.pads[1] + j * g.dilations[1];
      if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
      a += x[((n * S + c) * H + iy) * W + ix]! * w[((o * S + c) * kh + i) * kw + j]!;
    }
    y[((n * T + o) * OH + oy) * OW + ox] = a;
  }
  return { y, shape: [N, T, OH, OW] };
}

const CASES: { name: string; ws: [number, number, number, number]; depth: number; arity: number; pairing: 'brickwall' | 'fixed'; geo: Geo; hw: [number, number] }[] = [
  { name: '6x3x3x3 brickwall depth 3, pad 1', ws: [6, 3, 3, 3], depth: 3, arity: 2, pairing: 'brickwall', geo: { strides: [1, 1], pads: [1, 1, 1, 1], dilations: [1, 1] }, hw: [7, 6] },
  { name: '5x2x5x5 fixed depth 2, stride 2, dilation (1, 2), uneven pads', ws: [5, 2, 5, 5], depth: 2, arity: 2, pairing: 'fixed', geo: { strides: [2, 1], pads: [2, 0, 1, 3], dilations: [1, 2] }, hw: [9, 10] },
  { name: '4x4x3x3 arity 3 depth 2', ws: [4, 4, 3, 3], depth: 2, arity: 3, pairing: 'brickwall', geo: { strides: [1, 1], pads: [0, 0, 0, 0], dilations: [1, 1] }, hw: [6, 6] },
];

function caseModel(c: (typeof CASES)[number]) {
  const [T, S, kh, kw] = c.ws;
  const l = adtnLayout(adtnQubits(T * S * kh * kw, c.arity), c.depth, c.arity, c.pairing);
  const D = 2 ** c.arity;
  const start: StoredTensor = { name: 'a.start', dtype: 'f32', shape: [l.q, 2], data: Float32Array.from({ length: 2 * l.q }, () => 0.8 + 0.4 * rnd()) };
  const gates: StoredTensor = { name: 'a.gates', dtype: 'f32', shape: [l.gates, D, D], data: Float32Array.from({ length: l.gates * D * D }, (_, i) => ((i % (D * D)) % (D + 1) === 0 ? 0.8 : 0) + 0.5 * rnd()) };
  const bias = stored('a.bias', [T]);
  const attrs = { ...c.geo, group: 1, weight_shape: [...c.ws], depth: c.depth, arity: c.arity, pairing: c.pairing };
  const model = single('adtn_conv2d', [S, ...c.hw], { start, gates, bias }, attrs);
  return { model, l, start: start.data as Float32Array, gates: gates.data as Float32Array, bias: bias.data as Float32Array };
}

t.test('session = a direct conv with W the head of the f64 state; both load paths, reference and wasm kernels', async (t) => {
  for (const c of CASES) {
    const { model, l, start, gates, bias } = caseModel(c);
    const [T, S, kh, kw] = c.ws;
    const state = adtnState(l, start, gates);
    const xs = [2, S, ...c.hw];
    const x = randArr(xs.reduce((a, b) => a * b, 1));
    const want = directConv(x, xs, state.subarray(0, T * S * kh * kw), c.ws, bias, c.geo);
    let scale = 0;
    for (const v of want.y) scale = Math.max(scale, Math.abs(v));
    for (const mode of ['auto', 'expand', 'rebuild'] as const) {
      for (const [bn, backend] of [['reference', referenceBackend], ['wasm', wasmBackendSync()]] as const) {
        const prev = setAdtnRuntimeMode(mode);
        let y;
        try {
          const s = Session.create(model, { backend });
          y = s.runBatch({ shape: xs, data: x });
          s.close();
        } finally {
          setAdtnRuntimeMode(prev);
        }
        t.same(y.shape, want.shape, `${c.name} ${mode} ${bn}: shape`);
        let worst = 0;
        for (let i = 0; i < want.y.length; i++) worst = Math.max(worst, Math.abs(y.data[i]! - want.y[i]!));
        t.ok(scale > 1e-3 && worst <= 1e-5 * scale, `${c.name} ${mode} ${bn}: max diff ${worst.toExponential(2)} of ${scale.toExponential(2)}`);
      }
    }
  }
  // LeNet-5's second conv (16x6x5x5, Q 12) at depth 2: the plan expands the MPS (cheaper than the rebuild).
  const l = adtnLayout(adtnQubits(16 * 6 * 25), 2, 2, 'brickwall');
  const p = adtnRuntimePlan(l, 16, 150);
  t.ok(p.mode !== 'rebuild' && p.mpsWork + p.expandWork < p.rebuildWork, `LeNet conv2: ${p.mode}, ${p.why}`);
});

t.test('ONNX export (the kernel formed, one Conv) agrees in onnxruntime; a wrong gates shape is a layer error', async (t) => {
  for (const c of CASES.slice(0, 2)) await agree(t, caseModel(c).model, { opset: 13, batches: [1, 3] });
  const { model } = caseModel(CASES[0]!);
  const node = model.graph.nodes[0]!;
  model.tensors.set('a.gates', stored('a.gates', [3, 4, 4]));
  node.weights['gates'] = 'a.gates';
  t.throws(() => Session.create(model), /gates has shape \[3,4,4\], expected \[\d+, 4, 4\]/);
});

t.test('trainable adtn_conv2d: kernel = the runtime\'s, output = the session\'s; gradients = finite differences', async (t) => {
  const c = CASES[1]!;
  const [T, S, kh, kw] = c.ws;
  const layer = trainAdtnConv(S, T, [kh, kw], { depth: c.depth, arity: c.arity, pairing: c.pairing }, c.geo, { seed: 3 });
  t.same(layer.attrs['weight_shape'], c.ws);
  const P = layer.params;
  const { model } = caseModel(c);
  model.tensors.set('a.start', { name: 'a.start', dtype: 'f32', shape: P['start']!.shape, data: P['start']!.data });
  model.tensors.set('a.gates', { name: 'a.gates', dtype: 'f32', shape: P['gates']!.shape, data: P['gates']!.data });
  model.tensors.set('a.bias', { name: 'a.bias', dtype: 'f32', shape: [T], data: P['bias']!.data.map(() => rnd()) });
  P['bias']!.data.set(model.tensors.get('a.bias')!.data as Float32Array);
  const xs = [2, S, ...c.hw];
  const x = param(randArr(xs.reduce((a, b) => a * b, 1)), xs, 'x');
  const y = layer.forward(x);
  const ref = Session.create(model).runBatch({ shape: xs, data: x.data });
  let worst = 0, scale = 0;
  for (let i = 0; i < ref.data.length; i++) {
    worst = Math.max(worst, Math.abs(y.data[i]! - ref.data[i]!));
    scale = Math.max(scale, Math.abs(ref.data[i]!));
  }
  t.ok(scale > 0 && worst <= 1e-4 * scale, `train forward vs session: ${worst.toExponential(2)} of ${scale.toExponential(2)}`);
  gradCheck(t, 'adtn_conv2d', () => layer.forward(x), [x, P['start']!, P['gates']!, P['bias']!], { eps: 1e-2, tol: 2e-2, maxPerInput: 24 });
});

/** A conv target as compress.ts builds it. */
function convTarget(w: Float32Array, ws: [number, number, number, number]): Target {
  const [O, I, kh, kw] = ws;
  return { node: { name: 'c', op: 'conv2d', inputs: ['x'], outputs: ['y'], attrs: {}, weights: {} }, shape: { kind: 'conv', O, I, kh, kw }, weight: w, bias: 0, denseParams: O * I * kh * kw };
}

function decompose(target: Target, depth: number) {
  const added: string[] = [];
  const attrs: Record<string, unknown> = {};
  const d = adtn.decompose(target, { method: 'adtn', depth }, { seed: 1, quick: false, add: (r) => added.push(r), attrs: attrs as never });
  return { d, added, attrs };
}

t.test('--method adtn on a conv: a kernel a circuit builds is fitted into adtn_conv2d', async (t) => {
  // a kernel 8x4x4x4 (Q 9) that a depth-1 circuit builds exactly: the fit reaches it, Tucker-2 within 2Q + 16 G cannot
  const ws: [number, number, number, number] = [8, 4, 4, 4];
  const l = adtnLayout(adtnQubits(8 * 64), 1, 2, 'brickwall');
  const built = adtnWeight(l, randArr(2 * l.q, 2), Float32Array.from({ length: 16 * l.gates }, (_, i) => (i % 5 === 0 ? 1 : 0) + 0.6 * rnd()), 8, 64);
  const a = decompose(convTarget(built, ws), 1);
  t.equal(a.d.op, 'adtn_conv2d', `circuit-built kernel: ${a.d.op}, error ${a.d.relError.toFixed(4)}`);
  t.ok(a.d.relError < 0.5, `fit error ${a.d.relError} (the fit's 100 steps)`);
  t.same(a.added, ['start', 'gates']);
  t.same(a.attrs['weight_shape'], ws);
});

t.test('exports and explain form W by the MPS expansion: the same W and output as the old rebuild', async (t) => {
  // 40 x 100 (Q 12) at depth 3: the plan expands (26 k multiply-adds against the rebuild's 287 k)
  const out = 40, inF = 100;
  const l = adtnLayout(adtnQubits(out * inF), 3, 2, 'brickwall');
  const start = Float32Array.from({ length: 2 * l.q }, () => 0.8 + 0.4 * rnd());
  const gates = Float32Array.from({ length: 16 * l.gates }, (_, i) => (i % 5 === 0 ? 0.8 : 0) + 0.5 * rnd());
  t.equal(adtnRuntimePlan(l, out, inF).mode, 'expand');
  const old = adtnWeight(l, start, gates, out, inF);
  const now = adtnMatrix(l, start, gates, out, inF);
  let worst = 0;
  for (let i = 0; i < old.length; i++) worst = Math.max(worst, Math.abs(old[i]! - now[i]!) / Math.max(1e-30, Math.abs(old[i]!)));
  t.ok(worst <= 1.2e-7, `W: expandMps vs the rebuild, max relative diff ${worst.toExponential(2)} (f32 rounding of the same f64 sums)`);
  const weights = { start: { name: 'a.start', dtype: 'f32' as const, shape: [l.q, 2], data: start }, gates: { name: 'a.gates', dtype: 'f32' as const, shape: [l.gates, 4, 4], data: gates } };
  const model = single('adtn_dense', [inF], weights, { features: [out, inF], depth: 3, arity: 2, pairing: 'brickwall' });
  // the exported Gemm's weight is W
  const bytes = exportOnnx(model, { opset: 13 });
  const buf = Buffer.from(bytes);
  const raw = Buffer.from(new Uint8Array(now.buffer, now.byteOffset, now.byteLength));
  t.ok(buf.indexOf(raw) >= 0, 'the ONNX file carries W as formed by the expansion');
  const oldRaw = Buffer.from(new Uint8Array(old.buffer, old.byteOffset, old.byteLength));
  if (worst === 0) t.ok(buf.indexOf(oldRaw) >= 0, 'and it is the old rebuild\'s W byte for byte');
  // explain's significances: the same with every W rebuilt gate by gate (the old path)
  const auto = explainAdtn(model)[0]!;
  const prev = setAdtnRuntimeMode('rebuild');
  let ref;
  try {
    ref = explainAdtn(model)[0]!;
  } finally {
    setAdtnRuntimeMode(prev);
  }
  const d = Math.max(...auto.gates.map((g, i) => Math.abs(g.significance - ref.gates[i]!.significance)));
  t.ok(d <= 1e-5, `explain: significances expand vs rebuild, max diff ${d.toExponential(2)}`);
  // explain reads an adtn_conv2d too
  const conv = explainAdtn(caseModel(CASES[0]!).model)[0]!;
  t.equal(conv.op, 'adtn_conv2d');
  t.equal(conv.gates.length, caseModel(CASES[0]!).l.gates);
  t.ok(conv.gates.every((g) => Number.isFinite(g.significance) && g.significance > 0), 'every gate read');
});
