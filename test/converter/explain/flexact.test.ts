// explain on flexact layers: each branch's g_b against its closed form (inside the range the
// polynomial, outside the tangent at the nearer end), the panels ordered by ‖w[:, b]‖ times the
// spread of g_b over its range, and the small-multiples picture: one panel per branch where the
// layout says, the curve's pixel at the row its value maps to, the range on the lighter ground.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PNG } from 'pngjs';
import t from 'tap';
import { explainCommand } from '../../../cli/commands/explain.js';
import { drawCurveGrid } from '../../../converter/explain/draw.js';
import { explainFlexact } from '../../../converter/explain/flexact.js';
import { writeFlm } from '../../../converter/writer.js';
import type { Model, StoredTensor } from '../../../runtime/ir.js';

const dir = mkdtempSync(join(tmpdir(), 'factorlite-explain-flexact-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

const f32 = (name: string, shape: number[], data: number[]): StoredTensor => ({ name, dtype: 'f32', shape, data: Float32Array.from(data) });

/** Three branches of degree 3: g0 = z² on [-1, 1], g1 = z − z³/3 on [0, 2], g2 = 0.1 z on [-2, 2]. */
function model(): Model {
  const tensors = new Map<string, StoredTensor>([
    ['f.v', f32('f.v', [3, 2], [1, 0, 0, 1, 1, 1])],
    // ‖w[:, b]‖: 1, 3, 2
    ['f.w', f32('f.w', [2, 3], [1, 0, 2, 0, 3, 0])],
    ['f.coeffs', f32('f.coeffs', [3, 3], [0, 1, 0, 1, 0, -1 / 3, 0.1, 0, 0])],
    ['f.bias', f32('f.bias', [2], [0, 0])],
    ['f.range', f32('f.range', [3, 2], [-1, 1, 0, 2, -2, 2])],
  ]);
  return {
    graph: {
      inputs: [{ name: 'x', shape: [-1, 2] }], outputs: ['y'],
      nodes: [{ name: 'f', op: 'flexact', inputs: ['x'], outputs: ['y'], attrs: { basis: 'poly', degree: 3 }, weights: { v: 'f.v', w: 'f.w', coeffs: 'f.coeffs', bias: 'f.bias', range: 'f.range' } }],
    },
    tensors, metadata: {},
  };
}

const closed = [
  (z: number) => (z < -1 ? 1 - 2 * (z + 1) : z > 1 ? 1 + 2 * (z - 1) : z * z),
  // g1′ = 1 − z²: slope 1 at 0, −3 at 2; g1(2) = 2 − 8/3
  (z: number) => (z < 0 ? z : z > 2 ? 2 - 8 / 3 - 3 * (z - 2) : z - z ** 3 / 3),
  (z: number) => 0.1 * z,
];

t.test('curves: the branch polynomial inside its range, the tangent beyond, ordered by weight', async (t) => {
  const [layer] = explainFlexact(model());
  t.equal(layer!.branches, 3);
  t.equal(layer!.degree, 3);
  // importance: ‖w‖ · spread over the range: g0 1·1 = 1, g1 3·(2/3 + 2/3) = 4, g2 2·0.4 = 0.8
  t.same(layer!.curves.map((c) => c.branch), [1, 0, 2]);
  const g1 = layer!.curves[0]!;
  t.ok(Math.abs(g1.importance - 4) < 1e-3, `importance of g1 ${g1.importance}`);
  for (const c of layer!.curves) {
    t.equal(c.z[0], c.lo - (c.hi - c.lo) / 4);
    t.ok(Math.abs(c.z[c.z.length - 1]! - (c.hi + (c.hi - c.lo) / 4)) < 1e-9);
    let worst = 0;
    c.z.forEach((z, k) => { worst = Math.max(worst, Math.abs(c.g[k]! - closed[c.branch]!(z))); });
    t.ok(worst < 1e-5, `branch ${c.branch}: max |g − closed form| ${worst}`);
  }
});

t.test('small multiples: one panel per branch, the curve where the layout maps it', async (t) => {
  const [layer] = explainFlexact(model());
  const { png, layout } = drawCurveGrid(layer!.curves.map((c) => ({ x: c.z, y: c.g, band: [c.lo, c.hi] as [number, number] })));
  const img = PNG.sync.read(png);
  t.same([img.width, img.height], [layout.width, layout.height]);
  t.same([layout.cols, layout.rows, layout.panels.length], [2, 2, 3]);
  const px = (x: number, y: number) => Array.from(img.data.subarray(4 * (y * img.width + x), 4 * (y * img.width + x) + 3));
  layout.panels.forEach((p, k) => {
    const c = layer!.curves[k]!;
    for (const col of [5, Math.floor(p.width / 2), p.width - 6]) {
      const x = p.x0 + (col / (p.width - 1)) * (p.x1 - p.x0);
      const row = Math.round(((p.y1 - closed[c.branch]!(x)) / (p.y1 - p.y0)) * (p.height - 1));
      t.same(px(p.x + col, p.y + row), [33, 102, 172], `branch ${c.branch}: the curve at column ${col}, row ${row}`);
    }
    // The fitted range on the light ground, beyond it the darker one (away from the curve and the axis).
    const clear = (col: number) => {
      for (let y = 0; y < p.height; y++) {
        const v = px(p.x + col, p.y + y);
        if (v[0] !== 33 && v[0] !== 170) return v;
      }
      return undefined;
    };
    t.same(clear(p.band![0] + 3), [250, 250, 250], `branch ${c.branch}: inside the range`);
    t.same(clear(2), [222, 222, 222], `branch ${c.branch}: beyond the range`);
  });
});

t.test('explain on a flexact model: the picture at -o, JSON kind flexact', async (t) => {
  const file = join(dir, 'fx.flm');
  writeFileSync(file, writeFlm(model()));
  const output = join(dir, 'fx.png');
  const chunks: string[] = [];
  const write = process.stdout.write.bind(process.stdout);
  process.stdout.write = ((s: string) => { chunks.push(String(s)); return true; }) as typeof process.stdout.write;
  let res;
  try {
    res = await explainCommand(file, { data: 'mnist', limit: '2', output, progress: false, json: true });
  } finally {
    process.stdout.write = write;
  }
  t.equal(res.kind, 'flexact');
  t.same(res.files, [output]);
  t.equal(res.layers[0]!.picture.type, 'curves');
  t.equal(chunks.join('').trim().split('\n').length, 1, 'one JSON line');
  const img = PNG.sync.read(readFileSync(output));
  t.same([img.width, img.height], [res.layers[0]!.picture.width, res.layers[0]!.picture.height]);
});
