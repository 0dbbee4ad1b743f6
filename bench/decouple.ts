// Flexible-activation decoupling of FC-2's hidden pair (Gemm 784→1024 → Relu → Gemm 1024→10)
// against truncated SVD of the same pair at the same number of parameters (both weights at one
// rank, converter/decoupleModel.ts svdAtBudget), on the full Fashion-MNIST test set: accuracy after
// the fit, and after the same fine-tuning budget (distillation from the dense model, the same
// images, epochs and seed for both). Then the fit's run time against N and r, and whether the
// flexact layer's branch step is a hot spot next to its two products.
//
//   node --import tsx bench/decouple.ts [--neurons 16,32,64] [--basis poly:3] [--spline bspline:8 | --no-spline] [--samples 1000]
//        [--sweeps 50] [--epochs 1] [--train 2000] [--limit 10000] [--timing-n 500,1000,2000]
//        [--timing-r 16,32,64] [--timing-sweeps 5] [--readme README.md | --no-readme]
//
// Writes bench/results/decouple.{json,md} and the README section <!-- bench:decouple:start -->.
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { compressModel } from '../converter/compress.js';
import { limitDataset, loadDataset } from '../converter/data/datasets.js';
import { decoupleDenseAct } from '../converter/decompose/decouple/pair.js';
import { decoupleModel, findDecouplePairs, svdAtBudget } from '../converter/decoupleModel.js';
import { evaluate } from '../converter/evaluate.js';
import { importOnnxFile } from '../converter/onnx/index.js';
import { runFinetune } from '../converter/train/finetuneOnData.js';
import type { Model, Tensor } from '../runtime/ir.js';
import { tensorToFloat32 } from '../runtime/format/dtype.js';
import { initKernels } from '../runtime/kernels/backend.js';
import { flexactBranches } from '../runtime/layers/flexact.js';
import { Session } from '../runtime/session.js';
import { FIXTURES } from './lib/fixtures.js';
import { arg, numberArg } from './lib/args.js';
import { writeBenchResults } from './readme.js';

const ROOT = dirname(dirname(fileURLToPath(import.meta.url)));
const RESULTS = join(ROOT, 'bench', 'results');
const list = (name: string, fallback: string) => arg(name, fallback).split(',').map(Number);

const NEURONS = list('neurons', '16,32,64');
const BASIS = arg('basis', 'poly:3');
/** One more row at the middle r with this basis (B-spline branches), fine-tuned like the others. */
const SPLINE = process.argv.includes('--no-spline') ? null : arg('spline', 'bspline:8');
const SAMPLES = numberArg('samples', '1000');
const SWEEPS = numberArg('sweeps', '50');
const EPOCHS = numberArg('epochs', '1');
const TRAIN = numberArg('train', '2000');
const LIMIT = numberArg('limit', '10000');
const TIMING_N = list('timing-n', '500,1000,2000');
const TIMING_R = list('timing-r', '16,32,64');
const TIMING_SWEEPS = numberArg('timing-sweeps', '5');
const README = process.argv.includes('--no-readme') ? null : resolve(arg('readme', join(ROOT, 'README.md')));
const HOLDOUT = 256;
const log = (s: string) => process.stderr.write(`${s}\n`);
const pct = (x: number) => `${(100 * x).toFixed(2)}%`;

interface Side {
  params: number;
  /** Ranks of the SVD side: [rank of W1, rank of W2 or 'dense']. */
  form: string;
  accuracy: number;
  tuned: number;
  /** The checkpoint fine-tuning kept (0 = the model before it), chosen on held-out training images. */
  tunedEpoch: number | null;
  seconds: number;
  tuneSeconds: number;
}
interface Row {
  neurons: number;
  degree: string;
  jacobianError: number;
  valueError: number;
  heldOutValueError: number;
  svdHeldOutValueError: number | null;
  decoupled: Side;
  svd: Side | null;
}

function modelParams(m: Model): number {
  let p = 0;
  for (const t of m.tensors.values()) p += t.shape.reduce((a, b) => a * b, 1);
  return p;
}

async function main(): Promise<void> {
  await initKernels(log);
  const dense = importOnnxFile(join(FIXTURES, 'mlp_fashion.onnx'));
  const pair = findDecouplePairs(dense)[0]!;
  const test = limitDataset(loadDataset('fashion-mnist', 'test'), LIMIT);
  const train = limitDataset(loadDataset('fashion-mnist', 'train'), SAMPLES + HOLDOUT);
  const per = train.shape.reduce((a, b) => a * b, 1);
  const samples: Tensor = { shape: [SAMPLES, ...train.shape], data: train.images.subarray(0, SAMPLES * per) };
  const holdout: Tensor = { shape: [HOLDOUT, ...train.shape], data: train.images.subarray(SAMPLES * per) };
  const acc = (m: Model) => evaluate(Session.create(m), test, { batch: 250 }).accuracy;
  const denseAccuracy = acc(dense);
  log(`FC-2 dense: ${pct(denseAccuracy)} on ${test.count} test images, ${modelParams(dense)} params`);
  const tune = (student: Model) => {
    const t0 = performance.now();
    const { model, summary } = runFinetune(student, dense, { data: 'fashion-mnist', epochs: EPOCHS, limit: TRAIN, evalLimit: 1000, seed: 1, verbose: false });
    return { model, epoch: summary.bestEpoch, seconds: (performance.now() - t0) / 1000 };
  };

  const rows: Row[] = [];
  const mid = NEURONS[Math.floor(NEURONS.length / 2)]!;
  let hot: Model | undefined;
  const runs: Array<{ r: number; basis: string }> = NEURONS.map((r) => ({ r, basis: BASIS }));
  if (SPLINE && SPLINE !== BASIS) runs.push({ r: mid, basis: SPLINE });
  for (const { r, basis } of runs) {
    log(`r = ${r}, ${basis}: fitting ${SAMPLES} samples, ${SWEEPS} sweeps`);
    const t0 = performance.now();
    const { model: dec, report } = decoupleModel(dense, { neurons: r, basis, samples, holdout, data: 'calibration', sweeps: SWEEPS });
    const fitSeconds = (performance.now() - t0) / 1000;
    const p = report.pairs[0]!;
    if (r === mid && basis === BASIS) hot = dec;
    const dTuned = tune(dec);
    const decoupled: Side = { params: modelParams(dec), form: `${r} branches, ${basis}`, accuracy: acc(dec), tuned: acc(dTuned.model), tunedEpoch: dTuned.epoch, seconds: fitSeconds, tuneSeconds: dTuned.seconds };
    log(`  decoupled: ${decoupled.params} params, ${pct(decoupled.accuracy)} -> ${pct(decoupled.tuned)} (epoch ${decoupled.tunedEpoch} kept; fit ${fitSeconds.toFixed(1)} s, J ${p.jacobianError.toFixed(3)}, F ${p.valueError.toFixed(3)})`);
    const biases = p.paramsBefore - pair.hidden * pair.inputs - pair.outputs * pair.hidden;
    const at = svdAtBudget(pair, biases, p.paramsAfter);
    let svd: Side | null = null;
    if (at) {
      const t1 = performance.now();
      const ranks: Record<string, unknown> = { [pair.first.name]: at.rank, ...(at.secondDense ? {} : { [pair.second.name]: at.rank }) };
      const { model: sm } = compressModel(dense, { method: 'svd', ranks, check: false });
      const seconds = (performance.now() - t1) / 1000;
      const sTuned = tune(sm);
      svd = { params: modelParams(sm), form: `rank ${at.rank}${at.secondDense ? ', W2 dense' : ' both'}`, accuracy: acc(sm), tuned: acc(sTuned.model), tunedEpoch: sTuned.epoch, seconds, tuneSeconds: sTuned.seconds };
      log(`  SVD ${svd.form}: ${svd.params} params, ${pct(svd.accuracy)} -> ${pct(svd.tuned)} (epoch ${svd.tunedEpoch} kept)`);
    }
    rows.push({
      neurons: r, degree: basis, jacobianError: p.jacobianError, valueError: p.valueError, heldOutValueError: p.heldOutValueError,
      svdHeldOutValueError: p.svd?.heldOutValueError ?? null, decoupled, svd,
    });
  }

  // The fit's run time: one restart from the Jacobian's leading directions, a fixed number of sweeps.
  const fc1 = { w: tensorToFloat32(dense.tensors.get(pair.first.weights['weight']!)!), b: tensorToFloat32(dense.tensors.get(pair.first.weights['bias']!)!) };
  const fc2 = { w: tensorToFloat32(dense.tensors.get(pair.second.weights['weight']!)!), b: tensorToFloat32(dense.tensors.get(pair.second.weights['bias']!)!) };
  const pairW = { inputs: pair.inputs, hidden: pair.hidden, outputs: pair.outputs, w1: fc1.w, b1: fc1.b, w2: fc2.w, b2: fc2.b, activation: 'relu' as const };
  const bigTrain = limitDataset(loadDataset('fashion-mnist', 'train'), Math.max(...TIMING_N));
  const timing: Array<{ N: number; r: number; seconds: number; perSweep: number; sweeps: number }> = [];
  const grid = [...TIMING_N.map((N) => [N, 32] as const), ...TIMING_R.filter((r) => r !== 32).map((r) => [1000, r] as const)];
  for (const [N, r] of grid) {
    const u = bigTrain.images.subarray(0, N * per);
    const t0 = performance.now();
    decoupleDenseAct(pairW, u, N, r, { degree: 3, start: 'directions', restarts: 1, iters: 0, tol: 0, components: Math.max(64, r) });
    const setup = (performance.now() - t0) / 1000;
    const t1 = performance.now();
    decoupleDenseAct(pairW, u, N, r, { degree: 3, start: 'directions', restarts: 1, iters: TIMING_SWEEPS, tol: 0, components: Math.max(64, r) });
    const seconds = (performance.now() - t1) / 1000;
    const perSweep = (seconds - setup) / TIMING_SWEEPS;
    timing.push({ N, r, seconds, perSweep, sweeps: TIMING_SWEEPS });
    log(`  timing N=${N} r=${r}: ${seconds.toFixed(1)} s for ${TIMING_SWEEPS} sweeps (setup ${setup.toFixed(1)} s, ${perSweep.toFixed(3)} s per sweep)`);
  }

  // Is the branch step hot? The flexact layer of the middle r at batch 1 and 32, against its branch step alone.
  const node = hot!.graph.nodes.find((n) => n.op === 'flexact')!;
  const coeffs = tensorToFloat32(hot!.tensors.get(node.weights['coeffs']!)!);
  const range = tensorToFloat32(hot!.tensors.get(node.weights['range']!)!);
  const D = Number(node.attrs['degree']);
  const branchStep: Array<{ batch: number; layerUs: number; branchUs: number; share: number }> = [];
  const session = Session.create(hot!);
  for (const batch of [1, 32]) {
    const x = { shape: [batch, ...train.shape], data: train.images.subarray(0, batch * per) };
    const reps = batch === 1 ? 2000 : 200;
    for (let i = 0; i < 50; i++) session.runBatch(x);
    let t0 = performance.now();
    for (let i = 0; i < reps; i++) session.runBatch(x);
    const layerUs = ((performance.now() - t0) * 1000) / reps;
    const z = new Float32Array(batch * mid);
    for (let i = 0; i < z.length; i++) z[i] = Math.sin(i);
    t0 = performance.now();
    for (let i = 0; i < reps; i++) flexactBranches(z, coeffs, batch, mid, D, range);
    const branchUs = ((performance.now() - t0) * 1000) / reps;
    branchStep.push({ batch, layerUs, branchUs, share: branchUs / layerUs });
    log(`  r=${mid} batch ${batch}: whole model ${layerUs.toFixed(1)} µs, branch step ${branchUs.toFixed(2)} µs (${(100 * branchUs / layerUs).toFixed(1)}%)`);
  }

  const flags = [
    NEURONS.join(',') !== '16,32,64' ? ` --neurons ${NEURONS.join(',')}` : '', BASIS !== 'poly:3' ? ` --basis ${BASIS}` : '',
    SPLINE === null ? ' --no-spline' : SPLINE !== 'bspline:8' ? ` --spline ${SPLINE}` : '',
    SAMPLES !== 1000 ? ` --samples ${SAMPLES}` : '', SWEEPS !== 50 ? ` --sweeps ${SWEEPS}` : '', EPOCHS !== 1 ? ` --epochs ${EPOCHS}` : '',
    TRAIN !== 2000 ? ` --train ${TRAIN}` : '', LIMIT !== 10000 ? ` --limit ${LIMIT}` : '',
    TIMING_N.join(',') !== '500,1000,2000' ? ` --timing-n ${TIMING_N.join(',')}` : '', TIMING_R.join(',') !== '16,32,64' ? ` --timing-r ${TIMING_R.join(',')}` : '',
    TIMING_SWEEPS !== 5 ? ` --timing-sweeps ${TIMING_SWEEPS}` : '',
  ].join('');
  const command = `node --import tsx bench/decouple.ts${flags}`;
  const md: string[] = [];
  md.push(`FC-2 (dense ${pct(denseAccuracy)}, ${modelParams(dense)} parameters) with its hidden pair decoupled into r flexible neurons (${BASIS}${SPLINE && SPLINE !== BASIS ? `, and ${SPLINE} at r = ${mid}` : ''}; fitted on ${SAMPLES} training images, ${SWEEPS} sweeps), against truncated SVD of the same pair at the largest rank within the same parameter count; accuracy on ${test.count} Fashion-MNIST test images after the fit and after fine-tuning both the same way (distillation from the dense model, ${EPOCHS} epoch(s) on ${TRAIN} training images, seed 1; the checkpoint kept, 0 being the model before fine-tuning, is chosen on 1000 held-out training images and given in brackets). Made by \`${command}\`.`);
  md.push('');
  md.push('| r | basis | params | J error | F error (held out) | accuracy after fit | after fine-tuning | SVD form | SVD params | SVD F error (held out) | SVD after fit | SVD after fine-tuning | fit s |');
  md.push('|---|---|---|---|---|---|---|---|---|---|---|---|---|');
  for (const r of rows) {
    md.push(`| ${r.neurons} | ${r.degree} | ${r.decoupled.params} | ${r.jacobianError.toFixed(3)} | ${r.valueError.toFixed(3)} (${r.heldOutValueError.toFixed(3)}) | ${pct(r.decoupled.accuracy)} | ${pct(r.decoupled.tuned)} (${r.decoupled.tunedEpoch ?? '–'}) | ` +
      `${r.svd?.form ?? '–'} | ${r.svd?.params ?? '–'} | ${r.svdHeldOutValueError?.toFixed(3) ?? '–'} | ${r.svd ? pct(r.svd.accuracy) : '–'} | ${r.svd ? `${pct(r.svd.tuned)} (${r.svd.tunedEpoch ?? '–'})` : '–'} | ${r.decoupled.seconds.toFixed(1)} |`);
  }
  md.push('');
  md.push(`Fit run time (FC-2's pair, projected to max(64, r) principal directions, one start, ${TIMING_SWEEPS} sweeps; setup = projection, samples and start):`);
  md.push('');
  md.push('| N | r | seconds | per sweep |');
  md.push('|---|---|---|---|');
  for (const x of timing) md.push(`| ${x.N} | ${x.r} | ${x.seconds.toFixed(1)} | ${x.perSweep.toFixed(3)} |`);
  md.push('');
  md.push(`The branch step (Horner, scalar TypeScript) against the whole decoupled FC-2 (r = ${mid}) per inference: ` +
    branchStep.map((b) => `batch ${b.batch}: ${b.branchUs.toFixed(2)} µs of ${b.layerUs.toFixed(1)} µs (${(100 * b.share).toFixed(1)}%)`).join('; ') + '.');
  writeBenchResults(RESULTS, 'decouple', { command, date: new Date().toISOString(), denseAccuracy, samples: SAMPLES, sweeps: SWEEPS, epochs: EPOCHS, train: TRAIN, test: test.count, rows, timing, branchStep }, md.join('\n'), README);
}

main().catch((e) => {
  process.stderr.write(`${e instanceof Error ? e.stack ?? e.message : String(e)}\n`);
  process.exit(1);
});
