// Rank selection: the budget allocator, the energy rule, and compressModel end to end on a small
// model whose weights have a known, exact low rank (built here from orthonormal vectors, so every
// expected rank and error is known without running an SVD).
import t from 'tap';
import { compressModel, CompressError, type Method } from '../../../converter/compress.js';
import type { Candidate } from '../../../converter/rank/candidates.js';
import { svdCandidates } from '../../../converter/methods/svd.js';
import { allocateBudget, pickByEnergy, RankError, type LayerOptions } from '../../../converter/rank/select.js';
import { numel, type GraphNode, type Model, type StoredTensor } from '../../../runtime/ir.js';
import { Session } from '../../../runtime/session.js';
import { Rng } from '../onnx/fixtures/build.js';

const rng = new Rng(2024);

/** `count` orthonormal vectors of length n (Gram-Schmidt on Gaussian draws, in float64). */
function orthonormal(n: number, count: number): Float64Array[] {
  const out: Float64Array[] = [];
  while (out.length < count) {
    const v = Float64Array.from({ length: n }, () => rng.normal());
    for (const u of out) {
      const d = u.reduce((s, x, i) => s + x * v[i]!, 0);
      for (let i = 0; i < n; i++) v[i] -= d * u[i]!;
    }
    const norm = Math.sqrt(v.reduce((s, x) => s + x * x, 0));
    if (norm < 1e-6) continue;
    out.push(v.map((x) => x / norm));
  }
  return out;
}

/** W [rows, cols] = sum_k s[k] u_k v_k^T: singular values exactly s (rank = s.length). */
function withSpectrum(rows: number, cols: number, s: number[]): Float32Array {
  const u = orthonormal(rows, s.length);
  const v = orthonormal(cols, s.length);
  const w = new Float32Array(rows * cols);
  for (let i = 0; i < rows; i++) {
    for (let j = 0; j < cols; j++) {
      let acc = 0;
      s.forEach((sk, k) => { acc += sk * u[k]![i]! * v[k]![j]!; });
      w[i * cols + j] = acc;
    }
  }
  return w;
}

/** Smallest r whose leading singular values keep at least `energy` of the total. */
function rankForEnergy(s: number[], energy: number): number {
  const total = s.reduce((a, x) => a + x * x, 0);
  let kept = 0;
  for (let r = 1; r <= s.length; r++) {
    kept += s[r - 1]! ** 2;
    if (kept / total >= energy) return r;
  }
  return s.length;
}

/** A synthetic ladder: params strictly up, error strictly down (a Pareto front). */
function randomLadder(len: number): Candidate[] {
  let params = 1 + Math.floor(rng.uniform() * 50);
  let err = 0.5 + 0.5 * rng.uniform();
  const out: Candidate[] = [];
  for (let i = 0; i < len; i++) {
    out.push({ spec: { method: 'svd', rank: i + 1 }, params, err });
    params += 1 + Math.floor(rng.uniform() * 200);
    err *= 0.3 + 0.6 * rng.uniform();
  }
  return out;
}

const spent = (layers: LayerOptions[], pick: number[]) => layers.reduce((s, l, i) => s + l.candidates[pick[i]!]!.params, 0);

t.test('allocateBudget never exceeds the budget and stops only when no upgrade fits', async (t) => {
  let checked = 0;
  for (let trial = 0; trial < 300; trial++) {
    const layers: LayerOptions[] = Array.from({ length: 1 + Math.floor(rng.uniform() * 5) }, (_, i) => ({
      name: `l${i}`, candidates: randomLadder(2 + Math.floor(rng.uniform() * 12)), sensitivity: rng.uniform() * 10,
    }));
    const min = layers.reduce((s, l) => s + l.candidates[0]!.params, 0);
    const max = layers.reduce((s, l) => s + l.candidates.at(-1)!.params, 0);
    const budget = min + rng.uniform() * (max - min) * 1.1;
    const pick = allocateBudget(layers, budget);
    t.equal(pick.length, layers.length);
    const used = spent(layers, pick);
    if (used > budget) t.fail(`trial ${trial}: spent ${used} > budget ${budget}`);
    // "As close as the ladder allows": no single layer could move to any larger candidate.
    layers.forEach((l, i) => {
      const cur = l.candidates[pick[i]!]!;
      for (const c of l.candidates.slice(pick[i]! + 1)) {
        if (used - cur.params + c.params <= budget) t.fail(`trial ${trial}: layer ${i} could still afford ${c.params} params`);
      }
    });
    checked++;
  }
  t.equal(checked, 300);
});

t.test('allocateBudget spends a unit-step ladder to the last parameter', async (t) => {
  const unit = (n: number, sens: number): LayerOptions => ({
    name: `u${sens}`, sensitivity: sens,
    candidates: Array.from({ length: n }, (_, k) => ({ spec: { method: 'svd', rank: k + 1 }, params: k + 1, err: 1 / (k + 2) })),
  });
  for (const budget of [2, 17, 63.5, 150, 199]) {
    const layers = [unit(100, 1), unit(100, 3)];
    const pick = allocateBudget(layers, budget);
    t.equal(spent(layers, pick), Math.floor(budget), `budget ${budget}`);
  }
  const layers = [unit(10, 1), unit(10, 3)];
  t.same(allocateBudget(layers, 1000), [9, 9], 'a budget above everything buys the largest candidates');
});

t.test('allocateBudget throws RankError when even the smallest candidates exceed the budget', async (t) => {
  const layers: LayerOptions[] = [
    { name: 'a', candidates: randomLadder(5), sensitivity: 1 },
    { name: 'b', candidates: randomLadder(5), sensitivity: 1 },
  ];
  const min = layers[0]!.candidates[0]!.params + layers[1]!.candidates[0]!.params;
  let caught: unknown;
  try {
    allocateBudget(layers, min - 1);
  } catch (e) {
    caught = e;
  }
  t.ok(caught instanceof RankError, 'a RankError');
  t.equal((caught as RankError).code, 'RANK_UNREACHABLE');
  t.match((caught as Error).message, String(min), 'the message names the minimum');
  t.same(allocateBudget(layers, min), [0, 0], 'exactly the minimum is allowed');
});

t.test('with identical candidates, the more sensitive layer gets the larger rank', async (t) => {
  const w = withSpectrum(24, 32, Array.from({ length: 24 }, (_, i) => 0.85 ** i));
  const cands = svdCandidates(w, { kind: 'dense', out: 24, in: 32 }, 0);
  // Halfway between both layers at their smallest and both at their largest.
  const half = cands[0]!.params + cands.at(-1)!.params;
  for (const [sa, sb] of [[10, 1], [1, 10], [2, 1]] as const) {
    const pick = allocateBudget([
      { name: 'a', candidates: cands, sensitivity: sa },
      { name: 'b', candidates: cands, sensitivity: sb },
    ], half);
    const [ra, rb] = pick.map((k) => (cands[k]!.spec as { rank: number }).rank);
    if (sa > sb) t.ok(ra! > rb!, `sensitivity ${sa} vs ${sb}: ranks ${ra} vs ${rb}`);
    else t.ok(rb! > ra!, `sensitivity ${sa} vs ${sb}: ranks ${ra} vs ${rb}`);
  }
  // Equal sensitivity: the ranks differ by at most one ladder step.
  const pick = allocateBudget([
    { name: 'a', candidates: cands, sensitivity: 1 },
    { name: 'b', candidates: cands, sensitivity: 1 },
  ], half);
  t.ok(Math.abs(pick[0]! - pick[1]!) <= 1, `equal sensitivity picks ${pick}`);
});

t.test('pickByEnergy on an exact SVD spectrum picks the smallest rank keeping >= E', async (t) => {
  const s = Array.from({ length: 12 }, (_, i) => 3 * 0.75 ** i);
  const w = withSpectrum(12, 20, s);
  const cands = svdCandidates(w, { kind: 'dense', out: 12, in: 20 }, 0);
  t.same(cands.map((c) => (c.spec as { rank: number }).rank), Array.from({ length: 12 }, (_, i) => i + 1), 'every rank is a candidate');
  for (const e of [0.01, 0.3, 0.5, 0.8, 0.9, 0.95, 0.99, 0.999, 0.9999]) {
    const k = pickByEnergy(cands, e);
    t.equal((cands[k]!.spec as { rank: number }).rank, rankForEnergy(s, e), `energy ${e}`);
  }
  // Candidate errors match the spectrum (Eckart-Young), computed here from s alone.
  const total = s.reduce((a, x) => a + x * x, 0);
  cands.forEach((c, i) => {
    const tail = s.slice(i + 1).reduce((a, x) => a + x * x, 0);
    t.ok(Math.abs(c.err - Math.sqrt(tail / total)) < 1e-4, `rank ${i + 1}: err ${c.err}`);
    t.equal(c.params, (i + 1) * (12 + 20));
  });
  t.equal(pickByEnergy(cands, 1), 11, 'energy 1 keeps everything');
});

// ---- compressModel on a two-layer MLP with exactly low-rank weights ----

const S1 = [3, 2, 1];
const S2 = [2, 1.5, 0.5];

function mlp(): Model {
  const tensors = new Map<string, StoredTensor>();
  const put = (name: string, shape: number[], data: Float32Array) => tensors.set(name, { name, dtype: 'f32', shape, data });
  put('fc1.weight', [30, 20], withSpectrum(30, 20, S1));
  put('fc1.bias', [30], rng.array(30, 0.1));
  put('fc2.weight', [10, 30], withSpectrum(10, 30, S2));
  put('fc2.bias', [10], rng.array(10, 0.1));
  const nodes: GraphNode[] = [
    { name: 'fc1', op: 'dense', inputs: ['x'], outputs: ['h'], attrs: {}, weights: { weight: 'fc1.weight', bias: 'fc1.bias' } },
    { name: 'act', op: 'tanh', inputs: ['h'], outputs: ['a'], attrs: {}, weights: {} },
    { name: 'fc2', op: 'dense', inputs: ['a'], outputs: ['y'], attrs: {}, weights: { weight: 'fc2.weight', bias: 'fc2.bias' } },
  ];
  return { graph: { inputs: [{ name: 'x', shape: [-1, 20] }], outputs: ['y'], nodes }, tensors, metadata: {} };
}
const DENSE_PARAMS = 30 * 20 + 30 + 10 * 30 + 10;

/** Parameters the graph actually uses, counted from the tensors its nodes name. */
function usedParams(m: Model): number {
  const names = new Set(m.graph.nodes.flatMap((n) => Object.values(n.weights)));
  let p = 0;
  for (const n of names) p += numel(m.tensors.get(n)!.shape);
  return p;
}

function maxRelDiff(a: Float32Array, b: Float32Array): number {
  let d = 0;
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    d = Math.max(d, Math.abs(a[i]! - b[i]!));
    m = Math.max(m, Math.abs(a[i]!));
  }
  return d / Math.max(m, 1e-12);
}

const x = rng.tensor([16, 20]);

t.test('compressModel --ratio R reaches at least R, by an independent parameter count', async (t) => {
  const model = mlp();
  t.equal(usedParams(model), DENSE_PARAMS);
  for (const method of ['svd', 'auto', 'tt', 'tucker'] as Method[]) {
    for (const ratio of [1.5, 2, 4]) {
      const { model: out, report } = compressModel(model, { method, ratio });
      const p = usedParams(out);
      t.equal(report.sourceParams, DENSE_PARAMS, `${method} x${ratio}: source params`);
      t.equal(report.params, p, `${method} x${ratio}: reported params = counted params`);
      t.ok(DENSE_PARAMS / p >= ratio, `${method} x${ratio}: ratio ${DENSE_PARAMS / p}`);
      t.ok(report.ratio >= ratio, `${method} x${ratio}: report.ratio ${report.ratio}`);
      t.ok(!out.tensors.has('fc1.weight') || out.graph.nodes[0]!.op === 'dense', 'a factorised layer drops its dense weight');
      Session.create(out).runBatch(x); // the compressed model runs
    }
  }
  t.notOk(model.graph.nodes.some((n) => n.op !== 'dense' && n.op !== 'tanh'), 'the input model is left untouched');
});

t.test('compressModel --energy 0.999 on exactly rank-3 weights keeps rank 3, and the outputs match', async (t) => {
  t.ok(rankForEnergy(S1, 0.999) === 3 && rankForEnergy(S1, 0.9) === 2, 'rank 2 would lose more than 0.1% (13/14)');
  const model = mlp();
  const { model: out, report } = compressModel(model, { method: 'svd', energy: 0.999 });
  t.same(report.layers.map((l) => [l.name, l.op, l.ranks]), [['fc1', 'svd_dense', [3]], ['fc2', 'svd_dense', [3]]]);
  for (const l of report.layers) t.ok(l.relError < 1e-4, `${l.name}: measured error ${l.relError}`);
  t.same(out.tensors.get(out.graph.nodes[0]!.weights['u']!)!.shape, [30, 3], 'u is [out, r]');
  t.equal(usedParams(out), 3 * 50 + 30 + 3 * 40 + 10);
  const dense = Session.create(model).runBatch(x).data;
  const comp = Session.create(out).runBatch(x).data;
  t.ok(maxRelDiff(dense, comp) < 1e-4, `max rel. output diff ${maxRelDiff(dense, comp)}`);
  // At 0.9 the energy rule drops to rank 2 on fc1 (keeps 13/14) and fc2 (keeps 6.25/6.5).
  const r90 = compressModel(model, { method: 'svd', energy: 0.9 }).report;
  t.same(r90.layers.map((l) => l.ranks), [[rankForEnergy(S1, 0.9)], [rankForEnergy(S2, 0.9)]]);
  const expectErr = Math.sqrt(1 / 14);
  t.ok(Math.abs(r90.layers[0]!.relError - expectErr) < 1e-4, `fc1 rank-2 error ${r90.layers[0]!.relError} vs ${expectErr}`);
});

t.test('compressModel with a ratio the exact rank allows reproduces the dense outputs', async (t) => {
  // Rank 3 on both layers costs 180 + 130 = 310 parameters: any ratio up to 940/310 can be exact.
  const model = mlp();
  const { model: out, report } = compressModel(model, { method: 'svd', ratio: 2 });
  for (const l of report.layers) t.ok(l.ranks[0]! >= 3, `${l.name}: rank ${l.ranks} reaches the true rank`);
  const d = maxRelDiff(Session.create(model).runBatch(x).data, Session.create(out).runBatch(x).data);
  t.ok(d < 1e-4, `max rel. output diff ${d}`);
});

t.test('compressModel --ranks and --method none', async (t) => {
  const model = mlp();
  const { model: out, report } = compressModel(model, { method: 'auto', ranks: { fc1: 2 } });
  t.same(report.layers.map((l) => [l.name, l.op, l.ranks]), [['fc1', 'svd_dense', [2]], ['fc2', 'dense', []]]);
  t.ok(out.tensors.has('fc2.weight') && !out.tensors.has('fc1.weight'));
  const none = compressModel(model, { method: 'none' });
  t.equal(none.report.ratio, 1);
  t.same(none.model.graph.nodes.map((n) => n.op), ['dense', 'tanh', 'dense']);
});

t.test('compressModel option errors are CompressErrors with codes', async (t) => {
  const model = mlp();
  const code = (f: () => unknown) => {
    try {
      f();
      return 'no error';
    } catch (e) {
      return e instanceof CompressError ? e.code : `other: ${(e as Error).message}`;
    }
  };
  t.equal(code(() => compressModel(model, { method: 'none', ratio: 2 })), 'BAD_OPTIONS');
  t.equal(code(() => compressModel(model, { method: 'svd' })), 'BAD_OPTIONS');
  t.equal(code(() => compressModel(model, { method: 'svd', ratio: 2, energy: 0.9 })), 'BAD_OPTIONS');
  t.equal(code(() => compressModel(model, { method: 'svd', ratio: 0.5 })), 'BAD_OPTIONS');
  t.equal(code(() => compressModel(model, { method: 'svd', energy: 0 })), 'BAD_OPTIONS');
  t.equal(code(() => compressModel(model, { method: 'svd', ratio: 1e6 })), 'RANK_UNREACHABLE');
  t.equal(code(() => compressModel(model, { method: 'svd', ranks: { nope: 2 } })), 'BAD_RANKS');
  t.equal(code(() => compressModel(model, { method: 'svd', ranks: { fc1: 0 } })), 'BAD_RANKS');
  t.equal(code(() => compressModel(model, { method: 'svd', ranks: { fc1: [1.5] } })), 'BAD_RANKS');
});
