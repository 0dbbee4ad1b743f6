// The measured check after compression, --min-agreement, the guard rails and the measured search of
// `auto`, on a small classifier built here: fc1 [32, 64] of exact rank 4 (so low ratios are
// lossless and high ratios are not), tanh, fc2 [10, 32] dense-random. Agreement is recomputed in the
// test from the runtime's outputs of both models (arg-max by hand), independently of converter/check.ts.
import t from 'tap';
import { compressModel, CompressError, type Method } from '../../converter/compress.js';
import { predictAgreement } from '../../converter/check.js';
import type { GraphNode, Model, StoredTensor, Tensor } from '../../runtime/ir.js';
import { Session } from '../../runtime/session.js';
import { Rng } from './onnx/fixtures/build.js';

const rng = new Rng(11);

function lowRank(rows: number, cols: number, r: number): Float32Array {
  const a = rng.array(rows * r, 1);
  const b = rng.array(r * cols, 1);
  const w = new Float32Array(rows * cols);
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) {
    let s = 0;
    for (let k = 0; k < r; k++) s += a[i * r + k]! * b[k * cols + j]!;
    w[i * cols + j] = s / Math.sqrt(cols * r);
  }
  return w;
}

function classifier(): Model {
  const tensors = new Map<string, StoredTensor>();
  const put = (name: string, shape: number[], data: Float32Array) => tensors.set(name, { name, dtype: 'f32', shape, data });
  put('fc1.weight', [32, 64], lowRank(32, 64, 4));
  put('fc1.bias', [32], rng.array(32, 0.05));
  put('fc2.weight', [10, 32], rng.array(320, 0.5));
  put('fc2.bias', [10], rng.array(10, 0.05));
  const nodes: GraphNode[] = [
    { name: 'fc1', op: 'dense', inputs: ['x'], outputs: ['h'], attrs: {}, weights: { weight: 'fc1.weight', bias: 'fc1.bias' } },
    { name: 'act', op: 'tanh', inputs: ['h'], outputs: ['a'], attrs: {}, weights: {} },
    { name: 'fc2', op: 'dense', inputs: ['a'], outputs: ['y'], attrs: {}, weights: { weight: 'fc2.weight', bias: 'fc2.bias' } },
  ];
  return { graph: { inputs: [{ name: 'x', shape: [-1, 64] }], outputs: ['y'], nodes }, tensors, metadata: {} };
}

const model = classifier();
const calibration: Tensor = rng.tensor([128, 64]);
const holdout: Tensor = rng.tensor([256, 64]);

function agreementByHand(a: Model, b: Model, x: Tensor): number {
  const ya = Session.create(a).runBatch(x).data;
  const yb = Session.create(b).runBatch(x).data;
  const n = x.shape[0]!;
  let same = 0;
  for (let i = 0; i < n; i++) {
    let ia = 0;
    let ib = 0;
    for (let c = 1; c < 10; c++) {
      if (ya[i * 10 + c]! > ya[i * 10 + ia]!) ia = c;
      if (yb[i * 10 + c]! > yb[i * 10 + ib]!) ib = c;
    }
    if (ia === ib) same++;
  }
  return same / n;
}

const code = (f: () => unknown): string => {
  try {
    f();
    return 'no error';
  } catch (e) {
    return e instanceof CompressError ? e.code : `other: ${(e as Error).message}`;
  }
};

t.test('every compressModel result carries a measured check that matches an independent count', async (t) => {
  for (const [method, ratio] of [['svd', 2], ['auto', 2], ['auto', 8], ['tt', 2]] as Array<[Method, number]>) {
    const { model: out, report } = compressModel(model, { method, ratio, calibration, holdout });
    const c = report.check!;
    t.ok(c, `${method} x${ratio}: a check`);
    t.equal(c.data, 'calibration');
    t.equal(c.samples, 256);
    t.equal(c.agreement, agreementByHand(model, out, holdout), `${method} x${ratio}: agreement ${c.agreement}`);
    t.ok(c.outputError >= 0 && Number.isFinite(c.outputError));
    t.ok(c.predictedAgreement !== null && c.predictedAgreement >= 0 && c.predictedAgreement <= 1, 'a predicted agreement next to the measured one');
    t.ok(report.guards && report.guards.length === 2, 'guard rails reported per layer');
  }
  // At 2x the rank-4 layer is kept exactly: the check says so.
  const exact = compressModel(model, { method: 'svd', ratio: 2, calibration, holdout }).report.check!;
  t.ok(exact.agreement! >= 0.97, `lossless fc1: agreement ${exact.agreement}`);
  // Without held-out samples the check runs on synthetic inputs and says so.
  t.equal(compressModel(model, { method: 'svd', ratio: 2 }).report.check!.data, 'synthetic');
  t.notOk(compressModel(model, { method: 'none' }).report.check, '--method none is not checked');
});

t.test('--min-agreement: passes when met, fails with the numbers when not', async (t) => {
  const ok = compressModel(model, { method: 'auto', ratio: 2, calibration, holdout, minAgreement: 0.9 });
  t.ok(ok.report.check!.agreement! >= 0.9, `met: ${ok.report.check!.agreement}`);
  const high = compressModel(model, { method: 'svd', ratio: 12, calibration, holdout }).report.check!;
  t.ok(high.agreement! < 0.99, `12x loses agreement (${high.agreement}), so 0.99 cannot be met`);
  let err: unknown;
  try {
    compressModel(model, { method: 'svd', ratio: 12, calibration, holdout, minAgreement: 0.99 });
  } catch (e) {
    err = e;
  }
  t.ok(err instanceof CompressError, 'a CompressError');
  t.equal((err as CompressError).code, 'AGREEMENT_UNMET');
  const msg = (err as Error).message;
  t.match(msg, `${(100 * high.agreement!).toFixed(1)}%`, 'names the measured agreement');
  t.match(msg, '99.0%', 'names the target');
  t.match(msg, '256 held-out', 'names the samples');
  t.match(msg, /--ratio [0-9.]+ meets it|no ratio down to/, 'says which lower ratio meets it, or that none tried does');
  t.equal(code(() => compressModel(model, { method: 'svd', ratio: 12, calibration, holdout, minAgreement: 0.01 })), 'no error');
});

t.test('auto is not worse than the best single method (held-out agreement), and its search is bounded', async (t) => {
  for (const ratio of [3, 8]) {
    const agree: Record<string, number> = {};
    for (const method of ['svd', 'tt', 'tr', 'tucker'] as Method[]) {
      agree[method] = compressModel(model, { method, ratio, calibration, holdout }).report.check!.agreement!;
    }
    const { report } = compressModel(model, { method: 'auto', ratio, calibration, holdout });
    const best = Math.max(...Object.values(agree));
    t.ok(report.check!.agreement! >= best - 0.02, `x${ratio}: auto ${report.check!.agreement} vs single methods ${JSON.stringify(agree)}`);
    const s = report.search!;
    t.ok(s, 'the search is reported');
    t.ok(s.trials.some((x) => x.family === 'all') && s.trials.length === 6, 'mixed plan and five single-method families tried');
    t.ok(s.trials.every((x) => x.rounds <= 3), 'at most three allocate-fit-measure rounds per family');
    // Each distinct form is fitted once (cache): never more than rounds x layers per family.
    t.ok(s.fits <= 6 * 3 * 2, `fits ${s.fits}`);
    t.ok(s.seconds >= 0 && s.seconds <= report.seconds, 'search time is part of the convert time');
  }
});

t.test('searchSeconds bounds the measured search: past it, only the mixed plan is tried', async (t) => {
  const { report } = compressModel(model, { method: 'auto', ratio: 3, calibration, holdout, searchSeconds: 0 });
  const s = report.search!;
  t.equal(s.chosen, 'all');
  t.equal(s.trials.length, 6, 'every family is listed');
  t.ok(s.trials.slice(1).every((x) => x.failed?.startsWith('skipped')), 'the single-method families say they were skipped');
  t.ok(report.check!.agreement! >= 0.9, `and the mixed plan still holds (${report.check!.agreement})`);
});

t.test('guard rails: a tight budget relaxes a guard and says which layer and why', async (t) => {
  const { report } = compressModel(model, { method: 'svd', ratio: 8, calibration, holdout, guardLimit: 0.01 });
  const relaxed = report.guards!.filter((g) => g.relaxed);
  t.ok(relaxed.length >= 1, 'at least one guard gives way at 8x with a strict limit');
  for (const g of relaxed) t.match(g.reason!, /budget/, `${g.name}: ${g.reason}`);
  const loose = compressModel(model, { method: 'svd', ratio: 2, calibration, holdout }).report.guards!;
  t.ok(loose.every((g) => !g.relaxed), 'at 2x no guard needs relaxing');
});

t.test('predictAgreement: no change keeps every arg-max, large noise approaches chance', async (t) => {
  const y = rng.tensor([400, 10]).data;
  t.equal(predictAgreement(y, 400, 0), 1);
  const far = predictAgreement(y, 400, 50);
  t.ok(far < 0.3, `relative error 50: ${far}`);
  const mid = predictAgreement(y, 400, 0.3);
  t.ok(mid > far && mid < 1, `relative error 0.3: ${mid}`);
});
