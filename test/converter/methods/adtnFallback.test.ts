// convert --method adtn when the fit captures nothing: the layer starts from the random
// initialisation at the target variance instead (and says so); a weight the network can express
// keeps its fit. --hidden-bias none drops the factorised hidden layers' bias (not the classifier's).
import t from 'tap';
import { ADTN_FALLBACK_ERROR, fitAdtn } from '../../../converter/decompose/adtn.js';
import { adtn } from '../../../converter/methods/adtn.js';
import { compressModel } from '../../../converter/compress.js';
import { adtnLayout, adtnQubits, adtnWeight } from '../../../runtime/layers/adtnDense.js';
import { Session } from '../../../runtime/session.js';
import type { Model, StoredTensor } from '../../../runtime/ir.js';
import type { Target } from '../../../converter/rank/target.js';

let seed = 4242;
const rnd = () => {
  seed = (seed * 1103515245 + 12345) % 2147483648;
  return seed / 2147483648 - 0.5;
};
const randArr = (n: number, s = 1) => Float32Array.from({ length: n }, () => rnd() * s);

function target(w: Float32Array, rows: number, cols: number): Target {
  const node = { name: 'fc', op: 'dense' as const, inputs: ['x'], outputs: ['y'], attrs: {}, weights: { weight: 'w' } };
  return { node, shape: { kind: 'dense', out: rows, in: cols }, weight: w, bias: 0, denseParams: rows * cols };
}

function decompose(w: Float32Array, rows: number, cols: number, depth: number) {
  const stored = new Map<string, Float32Array>();
  const attrs = {};
  const d = adtn.decompose(target(w, rows, cols), { method: 'adtn', depth }, { seed: 3, quick: false, add: (role, _s, data) => stored.set(role, data), attrs });
  return { d, start: stored.get('start')!, gates: stored.get('gates')! };
}

function variance(v: Float32Array): number {
  let s = 0;
  for (const x of v) s += x * x;
  return s / v.length;
}

t.test('a weight the network cannot express falls back to the random start at the target variance', async (t) => {
  // 64 x 64 -> Q = 12; depth 1 is a product of six independent 4-vectors: a random weight is far
  // from every such product.
  const rows = 64, cols = 64;
  const w = randArr(rows * cols, 0.2);
  const { d, start, gates } = decompose(w, rows, cols, 1);
  t.equal(d.init, 'random', 'the fit is dropped');
  t.ok(d.fitError! > ADTN_FALLBACK_ERROR, `the fit's error ${d.fitError} is above ${ADTN_FALLBACK_ERROR}`);
  // What is stored is the random start: its rebuilt weight has the He variance 2 / in on average
  // (a product of random factors: its variance scatters; a factor of 4 either way).
  const l = adtnLayout(adtnQubits(rows * cols), 1, 2, 'brickwall');
  const wr = adtnWeight(l, start, gates, rows, cols);
  const v = variance(wr);
  t.ok(v > (2 / cols) / 4 && v < (2 / cols) * 4, `rebuilt variance ${v.toExponential(2)} near 2/in = ${(2 / cols).toExponential(2)}`);
  // The reported error is that of the stored start (uncorrelated with W: about sqrt(1 + |Wr|^2/|W|^2)).
  let d2 = 0, n2 = 0;
  for (let i = 0; i < w.length; i++) {
    d2 += (wr[i]! - w[i]!) ** 2;
    n2 += w[i]! ** 2;
  }
  t.ok(Math.abs(Math.sqrt(d2 / n2) - d.relError) < 1e-4, `reported error ${d.relError} = the stored start's ${Math.sqrt(d2 / n2)}`);
  // The library fit without fallbackAbove keeps the fit whatever its error.
  const keep = fitAdtn(w, rows, cols, { depth: 1, steps: 40, seed: 3 });
  t.equal(keep.init, 'fit');
  t.equal(keep.steps, 40, 'no early stop without fallbackAbove');
});

t.test('a weight the network can express keeps its fit', async (t) => {
  const rows = 64, cols = 64;
  const l = adtnLayout(adtnQubits(rows * cols), 1, 2, 'brickwall');
  const w = adtnWeight(l, randArr(2 * l.q, 2), randArr(l.gates * 16), rows, cols);
  const { d, start, gates } = decompose(w, rows, cols, 1);
  t.equal(d.init, undefined, 'no fallback');
  t.ok(d.relError < ADTN_FALLBACK_ERROR, `fit error ${d.relError}`);
  const back = adtnWeight(l, start, gates, rows, cols);
  let d2 = 0, n2 = 0;
  for (let i = 0; i < w.length; i++) {
    d2 += (back[i]! - w[i]!) ** 2;
    n2 += w[i]! ** 2;
  }
  t.ok(Math.abs(Math.sqrt(d2 / n2) - d.relError) < 1e-3, `stored factors rebuild to the reported error ${d.relError}`);
});

function mlp(): Model {
  const tensors: StoredTensor[] = [
    { name: 'w1', dtype: 'f32', shape: [64, 64], data: randArr(64 * 64, 0.2) },
    { name: 'b1', dtype: 'f32', shape: [64], data: randArr(64) },
    { name: 'w2', dtype: 'f32', shape: [10, 64], data: randArr(640, 0.3) },
    { name: 'b2', dtype: 'f32', shape: [10], data: randArr(10) },
  ];
  return {
    graph: {
      inputs: [{ name: 'x', shape: [-1, 64] }],
      outputs: ['y'],
      nodes: [
        { name: 'fc1', op: 'dense', inputs: ['x'], outputs: ['h'], attrs: {}, weights: { weight: 'w1', bias: 'b1' } },
        { name: 'act', op: 'relu', inputs: ['h'], outputs: ['h2'], attrs: {}, weights: {} },
        { name: 'fc2', op: 'dense', inputs: ['h2'], outputs: ['y'], attrs: {}, weights: { weight: 'w2', bias: 'b2' } },
      ],
    },
    tensors: new Map(tensors.map((x) => [x.name, x])),
    metadata: {},
  };
}

t.test('compressModel: the fallback is reported and warned; --hidden-bias none drops the hidden bias only', async (t) => {
  const warned: string[] = [];
  const { model, report } = compressModel(mlp(), { method: 'adtn', ranks: { fc1: [1] }, hiddenBias: 'none', check: false, warn: (m) => warned.push(m) });
  const l = report.layers.find((x) => x.name === 'fc1')!;
  t.equal(l.op, 'adtn_dense');
  t.equal(l.init, 'random');
  t.ok(l.fitError! > ADTN_FALLBACK_ERROR);
  t.equal(warned.length, 1);
  t.match(warned[0], /fc1: the adtn_dense fit captured nothing of the weight \(rel\. error 0\.9\d+\); the layer starts from its random initialisation/);
  const fc1 = model.graph.nodes.find((n) => n.name === 'fc1')!;
  const fc2 = model.graph.nodes.find((n) => n.name === 'fc2')!;
  t.equal(fc1.weights['bias'], undefined, 'hidden layer: no bias');
  t.notOk(model.tensors.has('b1'), 'its tensor is gone');
  t.equal(fc2.weights['bias'], 'b2', 'the classifier keeps its bias');
  // Parameters: 2Q + 16 G of the network alone (Q = 12, depth 1: 6 gates), the classifier dense.
  t.equal(l.paramsAfter, 24 + 16 * 6);
  t.equal(report.params, 24 + 16 * 6 + 650);
  t.equal(model.metadata['convert.hidden_bias'], 'none');
  // The session runs it: fc1 = x Wr^T (no bias).
  const y = Session.create(model).runBatch({ shape: [2, 64], data: randArr(128) });
  t.equal(y.data.length, 20);
  t.ok(y.data.every(Number.isFinite));
  // With the default (full), the hidden layer keeps its bias.
  const full = compressModel(mlp(), { method: 'adtn', ranks: { fc1: [1] }, check: false, warn: () => {} });
  t.equal(full.model.graph.nodes.find((n) => n.name === 'fc1')!.weights['bias'], 'b1');
  t.equal(full.report.layers.find((x) => x.name === 'fc1')!.paramsAfter, 24 + 16 * 6 + 64);
});
