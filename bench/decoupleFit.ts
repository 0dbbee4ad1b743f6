// One decoupling fit of FC-2's hidden pair (784 → 1024 → ReLU → 10, the fixture's weights) on N
// Fashion-MNIST training images, as `convert --method decouple` runs it (64 principal directions,
// the start from the Jacobian's leading directions, one restart), timed in CPU seconds as well as
// wall seconds (CPU time stays meaningful on a shared machine), and split into the projection
// alone and the whole fit. Uses only the solver's public entry points, so the same file runs
// against an older checkout for a before/after comparison.
//
//   node --import tsx bench/decoupleFit.ts [--n 1000] [--r 32] [--sweeps 50] [--projection auto|exact|randomized]
//        [--restarts 1] [--warm 0.3] [--out bench/results]
//
// Writes <out>/decoupleFit.json (and prints it). With --restarts, --warm nudges the later starts from
// the best so far (als.ts DecoupleOptions.warm) instead of starting them at random.
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { limitDataset, loadDataset } from '../converter/data/datasets.js';
import { decoupleDenseAct } from '../converter/decompose/decouple/pair.js';
import { principalDirections } from '../converter/decompose/decouple/samples.js';
import { findDecouplePairs } from '../converter/decoupleModel.js';
import { importOnnxFile } from '../converter/onnx/index.js';
import { tensorToFloat32 } from '../runtime/format/dtype.js';
import { FIXTURES } from './lib/fixtures.js';
import { arg, numberArg } from './lib/args.js';

const ROOT = dirname(dirname(fileURLToPath(import.meta.url)));
const N = numberArg('n', '1000');
const R = numberArg('r', '32');
const SWEEPS = numberArg('sweeps', '50');
const PROJECTION = arg('projection', 'auto') as 'auto' | 'exact' | 'randomized';
if (!['auto', 'exact', 'randomized'].includes(PROJECTION)) throw new Error(`--projection ${PROJECTION}: expected auto, exact or randomized`);
const RESTARTS = numberArg('restarts', '1');
const WARM = arg('warm', '') === '' ? undefined : Number(arg('warm', ''));
const OUT = resolve(arg('out', join(ROOT, 'bench', 'results')));

function timed<T>(f: () => T): { value: T; wall: number; cpu: number } {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  const value = f();
  const c = process.cpuUsage(c0);
  return { value, wall: (performance.now() - t0) / 1000, cpu: (c.user + c.system) / 1e6 };
}

const dense = importOnnxFile(join(FIXTURES, 'mlp_fashion.onnx'));
const pair = findDecouplePairs(dense)[0]!;
const get = (name: string) => tensorToFloat32(dense.tensors.get(name)!);
const pw = {
  inputs: pair.inputs, hidden: pair.hidden, outputs: pair.outputs, activation: 'relu' as const,
  w1: get(pair.first.weights['weight']!), b1: get(pair.first.weights['bias']!), w2: get(pair.second.weights['weight']!), b2: get(pair.second.weights['bias']!),
};
const u = limitDataset(loadDataset('fashion-mnist', 'train'), N).images;
const components = Math.max(64, R);
// (older checkouts ignore the extra options)
const proj = timed(() => principalDirections(u, N, pair.inputs, components, PROJECTION === 'auto' ? {} : { method: PROJECTION }));
const fit = timed(() => decoupleDenseAct(pw, u, N, R, { degree: 3, start: 'directions', restarts: RESTARTS, iters: SWEEPS, seed: 1, components, ...(WARM === undefined ? {} : { warm: WARM }), ...(PROJECTION === 'auto' ? {} : { projectionMethod: PROJECTION }) }));
const result = {
  command: `node --import tsx bench/decoupleFit.ts --n ${N} --r ${R} --sweeps ${SWEEPS} --projection ${PROJECTION}${RESTARTS !== 1 ? ` --restarts ${RESTARTS}` : ''}${WARM !== undefined ? ` --warm ${WARM}` : ''}`,
  date: new Date().toISOString(), N, r: R, sweeps: SWEEPS, projection: PROJECTION,
  projectionCpu: proj.cpu, projectionWall: proj.wall, energy: proj.value.energy,
  fitCpu: fit.cpu, fitWall: fit.wall, jacobianError: fit.value.jacobianError, valueError: fit.value.valueError, bestSweep: fit.value.sweeps, restartCosts: fit.value.restartCosts,
};
mkdirSync(OUT, { recursive: true });
writeFileSync(join(OUT, 'decoupleFit.json'), `${JSON.stringify(result, null, 1)}\n`);
process.stdout.write(`${JSON.stringify(result)}\n`);
