// Grid expansion, point keys, grid files, and the Pareto front (against brute force).
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { expandGrid, pointKey, readGridFile, type SweepCommon } from '../../sweep/grid.js';
import { paretoFront } from '../../report/pareto.js';

const common: SweepCommon = { model: { name: 'm.onnx', sha256: 'a'.repeat(64) }, data: 'mnist', limit: 100, benchIters: 5, seed: 0 };

t.test('expandGrid: methods x ratios x quant, none once per quant', async (t) => {
  const pts = expandGrid({ methods: ['svd', 'tt', 'none'], ratios: [2, 4], quants: ['f32', 'int8'], finetune: null, epochs: null });
  t.equal(pts.length, 2 * 2 * 2 + 2);
  t.same(pts.filter((p) => p.method === 'none').map((p) => p.ratio), [null, null]);
  const keys = new Set(pts.map((p) => pointKey(common, p)));
  t.equal(keys.size, pts.length, 'every point has its own key');
  t.equal(pointKey(common, pts[0]!), pointKey({ ...common }, { ...pts[0]! }), 'the key depends on the content only');
  t.not(pointKey(common, pts[0]!), pointKey({ ...common, limit: 200 }, pts[0]!), 'the test set is part of the key');
  t.not(pointKey(common, pts[0]!), pointKey({ ...common, model: { name: 'm.onnx', sha256: 'b'.repeat(64) } }, pts[0]!), 'the model bytes are part of the key');
  t.equal(pointKey(common, pts[0]!), pointKey({ ...common, model: { name: 'other.onnx', sha256: 'a'.repeat(64) }, benchIters: 9 }, pts[0]!), 'name and timing runs are not');
  t.throws(() => expandGrid({ methods: ['svd'], ratios: [], quants: ['f32'], finetune: null, epochs: null }), { code: 'BAD_GRID', message: /ratios/ });
});

t.test('grid files: keys, types, unknown keys', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'factorlite-grid-'));
  const f = (name: string, body: string) => { const p = join(dir, name); writeFileSync(p, body); return p; };
  t.same(readGridFile(f('ok.json', '{"methods":["svd","cp"],"ratios":[4,8],"quant":["int8"],"finetune":"mnist","epochs":2}')),
    { methods: ['svd', 'cp'], ratios: [4, 8], quants: ['int8'], finetune: 'mnist', epochs: 2 });
  for (const [name, body] of [['a', '{"methods":["nope"]}'], ['b', '{"ratios":[0.5]}'], ['c', '{"colour":1}'], ['d', '[1]'], ['e', '{'], ['f', '{"epochs":0}']] as const) {
    t.throws(() => readGridFile(f(`${name}.json`, body)), { code: 'BAD_GRID' }, `bad grid ${body}`);
  }
});

t.test('paretoFront matches brute force on random clouds', async (t) => {
  let seed = 7;
  const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648);
  for (let trial = 0; trial < 50; trial++) {
    const pts = Array.from({ length: 3 + Math.floor(rnd() * 30) }, (_, i) => ({ key: `k${i}`, accuracy: Math.round(rnd() * 20) / 20, cost: Math.round(rnd() * 20) }));
    const dominated = (a: (typeof pts)[number]) => pts.some((b) => b !== a && b.accuracy >= a.accuracy && b.cost <= a.cost && (b.accuracy > a.accuracy || b.cost < a.cost));
    // Exact duplicates: brute force keeps both, the front keeps one; compare on distinct (cost, accuracy).
    const want = new Set(pts.filter((p) => !dominated(p)).map((p) => `${p.cost}/${p.accuracy}`));
    const got = paretoFront(pts).map((k) => pts.find((p) => p.key === k)!);
    t.same(new Set(got.map((p) => `${p.cost}/${p.accuracy}`)), want);
    t.ok(got.every((p, i) => i === 0 || (p.cost > got[i - 1]!.cost && p.accuracy > got[i - 1]!.accuracy)), 'cheapest first, accuracy rising');
  }
});
