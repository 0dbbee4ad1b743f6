// convert --round-ranks: every chosen rank becomes a multiple of m, the ratio's parameter budget
// holds where it can, and `convert --json` reports the rounded ranks (and the ones chosen before).
import t from 'tap';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { compressModel, roundSpecRanks, sourceParams, specParams } from '../../converter/compress.js';
import type { RankSpec } from '../../converter/rank/candidates.js';
import type { Target } from '../../converter/rank/target.js';
import { writeFlmFile } from '../../converter/writer.js';
import type { GraphNode, Model, StoredTensor } from '../../runtime/ir.js';
import { numel } from '../../runtime/ir.js';
import { cliJson } from '../support/cli.js';

function target(name: string, shape: Target['shape'], bias: number): Target {
  const rows = shape.kind === 'dense' ? shape.out : shape.O;
  const cols = shape.kind === 'dense' ? shape.in : shape.I * shape.kh * shape.kw;
  const node = { name, op: shape.kind === 'dense' ? 'dense' : 'conv2d', inputs: [], outputs: [], attrs: {}, weights: {} } as GraphNode;
  return { node, shape, weight: new Float32Array(rows * cols), bias, denseParams: rows * cols + bias };
}

const TARGETS: Target[] = [
  target('fc', { kind: 'dense', out: 120, in: 400 }, 120),
  target('conv', { kind: 'conv', O: 50, I: 20, kh: 5, kw: 5 }, 50),
  target('tt', { kind: 'dense', out: 500, in: 800 }, 500),
  target('ttl', { kind: 'dense', out: 500, in: 800 }, 500),
  target('cp', { kind: 'conv', O: 50, I: 20, kh: 5, kw: 5 }, 50),
];
const SPECS: RankSpec[] = [
  { method: 'svd', rank: 13 },
  { method: 'tucker2', ranks: [35, 14] },
  { method: 'tt', outModes: [5, 10, 10], inModes: [8, 10, 10], ranks: [1, 14, 14, 1] },
  { method: 'ttl', outModes: [20, 25], inModes: [25, 32], ranks: [10, 13, 13, 16] },
  { method: 'cp', rank: 50 },
];
const ranksOf = (s: RankSpec): number[] => (s.method === 'svd' || s.method === 'cp' ? [s.rank] : s.method === 'dense' ? [] : [...s.ranks]);

t.test('without a budget every rank rounds up to a multiple (TT boundary ranks stay 1)', async (t) => {
  for (const m of [4, 8]) {
    const r = roundSpecRanks(TARGETS, SPECS, m);
    r.specs.forEach((s, i) => {
      const before = ranksOf(SPECS[i]!);
      const after = ranksOf(s);
      after.forEach((v, k) => {
        if (s.method === 'tt' && (k === 0 || k === after.length - 1)) t.equal(v, 1, 'TT boundary');
        else {
          t.equal(v % m, 0, `${TARGETS[i]!.node.name} rank ${k}: ${before[k]} -> ${v} is a multiple of ${m}`);
          t.ok(v >= before[k]!, 'rounded up');
        }
      });
    });
    t.equal(r.params, TARGETS.reduce((s, x, i) => s + specParams(x, r.specs[i]!), 0));
  }
  t.same(ranksOf(roundSpecRanks(TARGETS, SPECS, 4).specs[0]!), [16]);
  t.same(ranksOf(roundSpecRanks(TARGETS, SPECS, 8).specs[1]!), [40, 16]);
});

t.test('with a budget, ranks round down until the layers fit', async (t) => {
  const unrounded = TARGETS.reduce((s, x, i) => s + specParams(x, SPECS[i]!), 0);
  for (const m of [4, 8]) {
    const r = roundSpecRanks(TARGETS, SPECS, m, unrounded);
    t.ok(r.params <= unrounded, `m=${m}: ${r.params} <= budget ${unrounded}`);
    r.specs.forEach((s, i) => ranksOf(s).forEach((v, k) => {
      if (!(s.method === 'tt' && (k === 0 || k === 3))) t.equal(v % m, 0, `${TARGETS[i]!.node.name}: ${v} multiple of ${m}`);
      t.ok(v >= 1);
    }));
  }
  // An unreachable budget rounds everything down and stops; small ranks never fall below 1.
  const tiny = roundSpecRanks([TARGETS[0]!], [{ method: 'svd', rank: 3 }], 4, 10);
  t.same(ranksOf(tiny.specs[0]!), [3], 'a rank below one multiple is kept, not sent to 0');
  const low = roundSpecRanks([TARGETS[0]!], [{ method: 'svd', rank: 6 }], 4, 10);
  t.same(ranksOf(low.specs[0]!), [4]);
  // A cap below the next multiple: an SVD of a 6-row layer cannot take rank 8.
  const capped = roundSpecRanks([target('small', { kind: 'dense', out: 6, in: 40 }, 0)], [{ method: 'svd', rank: 5 }], 8);
  t.same(ranksOf(capped.specs[0]!), [6]);
  t.throws(() => roundSpecRanks(TARGETS, SPECS, 0), /round-ranks/);
});

let s = 99;
function rnd(n: number): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (s * 1103515245 + 12345) % 2147483648;
    a[i] = s / 2147483648 - 0.5;
  }
  return a;
}
function mlp(): Model {
  const tensors: StoredTensor[] = [
    { name: 'w1', dtype: 'f32', shape: [48, 64], data: rnd(48 * 64) },
    { name: 'b1', dtype: 'f32', shape: [48], data: rnd(48) },
    { name: 'w2', dtype: 'f32', shape: [10, 48], data: rnd(480) },
  ];
  return {
    graph: {
      inputs: [{ name: 'x', shape: [-1, 64] }],
      outputs: ['y'],
      nodes: [
        { name: 'fc1', op: 'dense', inputs: ['x'], outputs: ['h'], attrs: {}, weights: { weight: 'w1', bias: 'b1' } },
        { name: 'act', op: 'relu', inputs: ['h'], outputs: ['h2'], attrs: {}, weights: {} },
        { name: 'fc2', op: 'dense', inputs: ['h2'], outputs: ['y'], attrs: {}, weights: { weight: 'w2' } },
      ],
    },
    tensors: new Map(tensors.map((x) => [x.name, x])),
    metadata: {},
  };
}

t.test('compressModel: rounded ranks in the model, budget kept, metadata', async (t) => {
  const model = mlp();
  const total = sourceParams(model);
  for (const method of ['svd', 'tt', 'tucker'] as const) {
    const { model: out, report } = compressModel(model, { method, ratio: 3, roundRanks: 4 });
    t.equal(report.roundRanks, 4);
    t.equal(out.metadata['convert.round_ranks'], 4);
    for (const l of report.layers) {
      if (l.method === 'dense') continue;
      t.ok(l.ranksBeforeRounding && l.ranksBeforeRounding.length === l.ranks.length, `${method} ${l.name}: chosen ranks kept`);
      l.ranks.forEach((r, k) => {
        const boundary = l.op === 'tt_dense' && (k === 0 || k === l.ranks.length - 1);
        t.ok(boundary ? r === 1 : r % 4 === 0, `${method} ${l.name}: rank ${r} (chosen ${l.ranksBeforeRounding![k]})`);
      });
    }
    t.ok(report.params <= total / 3 + 1e-9, `${method}: ${report.params} params within the budget of ${total / 3}`);
  }
  const plain = compressModel(model, { method: 'svd', ratio: 3 });
  t.equal(plain.report.roundRanks, undefined);
  t.equal(plain.report.layers[0]!.ranksBeforeRounding, undefined);
});

t.test('convert --round-ranks --json carries the rounded ranks; bad values are one-line errors', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'fl-round-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const src = join(dir, 'mlp.flm');
  await writeFlmFile(mlp(), src);
  const j = cliJson(['convert', src, '-o', join(dir, 'out.flm'), '--method', 'svd', '--ratio', '2', '--round-ranks', '8', '--json']);
  t.equal(j.roundRanks, 8);
  const fc1 = j.layers.find((l: { name: string }) => l.name === 'fc1');
  t.ok(fc1.ranks.length === 1 && fc1.ranks[0] % 8 === 0, `fc1 rank ${fc1.ranks[0]} is a multiple of 8`);
  t.equal(fc1.ranksBeforeRounding.length, 1);
  const inspect = cliJson(['inspect', join(dir, 'out.flm'), '--json']);
  const node = inspect.layers.find((l: { name: string }) => l.name === 'fc1');
  t.same(node.ranks, fc1.ranks, 'the file holds the rounded ranks');
  const { cli } = await import('../support/cli.js');
  const bad = cli(['convert', src, '-o', join(dir, 'x.flm'), '--method', 'svd', '--ratio', '3', '--round-ranks', '0']);
  t.not(bad.status, 0);
  t.match(bad.stderr, /--round-ranks 0/);
  t.equal(bad.stderr.trim().split('\n').length, 1, 'one line');
  t.equal(numel([1]), 1);
});
