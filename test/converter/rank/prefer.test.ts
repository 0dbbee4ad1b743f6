// convert --prefer speed (CompressOptions.prefer, converter/rank/compute.ts and the compute weight
// of rank/select.ts and rank/measured.ts): on a model built here whose conv does most of the
// multiply-adds with few parameters and whose dense layer holds most of the parameters with few
// multiply-adds (as LeNet-5's c2 and f1), the same ratio is reached with fewer multiply-adds than
// --prefer accuracy's plan, at comparable error; the counts are checked against the layer shapes.
// Bad values are refused in one line.
import t from 'tap';
import type { AttrValue, GraphNode, Model, OpName, StoredTensor } from '../../../runtime/ir.js';
import { compressModel, CompressError, SPEED_TOLERANCE } from '../../../converter/compress.js';
import { cli } from '../../support/cli.js';

let seed = 11;
function rnd(): number {
  seed = (seed * 1103515245 + 12345) >>> 0;
  return (seed / 2 ** 32) * 2 - 1;
}
/** A weight of decaying spectrum: a sum of rank-one terms of geometric weight, plus noise. */
function tensor(name: string, shape: number[], scale = 0.3, decay = 0.8): StoredTensor {
  const rows = shape[0]!;
  const cols = shape.slice(1).reduce((a, b) => a * b, 1);
  const data = new Float32Array(rows * cols);
  for (let k = 0; k < Math.min(rows, cols); k++) {
    const u = Array.from({ length: rows }, rnd);
    const v = Array.from({ length: cols }, rnd);
    const s = scale * decay ** k;
    for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) data[i * cols + j]! += s * u[i]! * v[j]!;
  }
  return { name, dtype: 'f32', shape, data };
}
function node(name: string, op: OpName, inputs: string[], attrs: Record<string, AttrValue> = {}, weights: Record<string, string> = {}): GraphNode {
  return { name, op, inputs, outputs: [`${name}.out`], attrs, weights };
}
const conv = { strides: [1, 1], pads: [2, 2, 2, 2], dilations: [1, 1], group: 1 };

/** c1 1->8 5x5 and c2 8->16 5x5 at 16x16 (c2: 3,200 weights, 819 K multiply-adds), pool to 4x4, f1 256->96 (24,576 of each), f2 96->10. */
function model(): Model {
  seed = 11;
  const m = new Map<string, StoredTensor>();
  for (const w of [tensor('c1.w', [8, 1, 5, 5]), tensor('c1.b', [8]), tensor('c2.w', [16, 8, 5, 5], 0.1, 0.9), tensor('c2.b', [16]),
    tensor('f1.w', [96, 256], 0.1, 0.7), tensor('f1.b', [96]), tensor('f2.w', [10, 96]), tensor('f2.b', [10])]) m.set(w.name, w);
  return {
    graph: {
      inputs: [{ name: 'x', shape: [-1, 1, 16, 16] }],
      outputs: ['f2.out'],
      nodes: [
        node('c1', 'conv2d', ['x'], conv, { weight: 'c1.w', bias: 'c1.b' }),
        node('r1', 'relu', ['c1.out']),
        node('c2', 'conv2d', ['r1.out'], conv, { weight: 'c2.w', bias: 'c2.b' }),
        node('r2', 'relu', ['c2.out']),
        node('p', 'max_pool', ['r2.out'], { kernel: [4, 4], strides: [4, 4], pads: [0, 0, 0, 0] }),
        node('fl', 'flatten', ['p.out'], { axis: 1 }),
        node('f1', 'dense', ['fl.out'], {}, { weight: 'f1.w', bias: 'f1.b' }),
        node('r3', 'relu', ['f1.out']),
        node('f2', 'dense', ['r3.out'], {}, { weight: 'f2.w', bias: 'f2.b' }),
      ],
    },
    tensors: m,
    metadata: {},
  };
}

const RATIO = 4;

t.test('--prefer speed reaches the ratio with fewer multiply-adds, at comparable error', async (t) => {
  for (const method of ['svd', 'auto'] as const) {
    const acc = compressModel(model(), { method, ratio: RATIO, check: false, searchSeconds: 0 }).report;
    const fast = compressModel(model(), { method, ratio: RATIO, prefer: 'speed', check: false, searchSeconds: 0 }).report;
    t.ok(acc.ratio >= RATIO * 0.999 && fast.ratio >= RATIO * 0.999, `${method}: both reach ${RATIO}x (${acc.ratio.toFixed(2)}, ${fast.ratio.toFixed(2)})`);
    // The dense source's multiply-adds from the shapes: conv O*I*kh*kw*OH*OW, dense out*in.
    t.equal(acc.compute!.sourceMacs, 8 * 25 * 256 + 16 * 8 * 25 * 256 + 96 * 256 + 10 * 96, `${method}: source multiply-adds from the shapes`);
    t.equal(fast.compute!.prefer, 'speed');
    // svd (predicted error): strictly fewer. auto keeps the fastest of its measured plans within
    // tolerance of the most accurate, which may be the accuracy plan itself: never more.
    t.ok(method === 'svd' ? fast.compute!.macs < acc.compute!.macs : fast.compute!.macs <= acc.compute!.macs,
      `${method}: speed ${fast.compute!.macs} multiply-adds vs accuracy ${acc.compute!.macs} (${fast.layers.map((l) => `${l.name} ${l.op} [${l.ranks}]`).join(', ')} vs ${acc.layers.map((l) => `${l.name} ${l.op} [${l.ranks}]`).join(', ')})`);
    t.equal(fast.compute!.macs, fast.layers.reduce((s, l) => s + l.macs!, 0), `${method}: the total is the layers' sum`);
    if (method === 'auto') {
      // The measured search kept a plan within tolerance of the most accurate one it measured.
      const trials = fast.search!.trials.filter((x) => !x.failed);
      const kept = trials.find((x) => x.family === fast.search!.chosen)!;
      // The most accurate: highest agreement, then lowest output error (as measured.ts ranks them).
      const best = trials.reduce((b, x) => (x.agreement! > b.agreement! + 1e-9 || (Math.abs(x.agreement! - b.agreement!) <= 1e-9 && x.outputError < b.outputError) ? x : b));
      t.ok(kept.outputError <= best.outputError * (1 + SPEED_TOLERANCE.error) + 1e-9 && kept.agreement! >= best.agreement! - SPEED_TOLERANCE.agreement - 1e-9,
        `auto: kept output error ${kept.outputError.toFixed(4)}, agreement ${kept.agreement} within tolerance of the most accurate (${best.outputError.toFixed(4)}, ${best.agreement})`);
    }
  }
});

t.test('bad values are refused in one line', async (t) => {
  t.throws(() => compressModel(model(), { method: 'svd', ratio: RATIO, prefer: 'fast' as never }), new CompressError('BAD_OPTIONS', '--prefer fast: expected accuracy or speed'));
  t.throws(() => compressModel(model(), { method: 'svd', energy: 0.9, prefer: 'speed' }), new CompressError('BAD_OPTIONS', '--prefer speed goes with --ratio (with --energy or --ranks the forms are given)'));
  const r = await cli(['convert', 'nonexistent.onnx', '-o', 'x.flm', '--ratio', '4', '--prefer', 'fast']);
  t.not(r.status, 0);
  t.match(r.stderr.trim(), /^factorlite: --prefer fast: expected accuracy or speed \[BAD_ARGUMENT\]$/);
  t.equal(r.stderr.trim().split('\n').length, 1);
});
