// factorlite sweep on the in-process pool: rows checked against `eval` and `inspect` of the stored
// artefact, resume without recomputing, and one-line errors for bad arguments.
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { cli, cliAsync, cliJson, jsonOf } from '../support/cli.js';
import { DEMO_MODEL } from './support.js';

const dir = mkdtempSync(join(tmpdir(), 'factorlite-sweep-'));
const GRID = ['--methods', 'svd', '--ratios', '4', '--quant', 'int8', '--data', 'mnist', '--limit', '100', '--bench-iters', '5'];

t.test('a pool sweep stores rows that eval and inspect confirm, and a re-run computes nothing', async (t) => {
  const out = join(dir, 'a');
  const first = jsonOf<any>(await cliAsync(['sweep', DEMO_MODEL, ...GRID, '--out', out, '--json'], { timeout: 400_000 }), 'sweep');
  t.same([first.points, first.finished, first.computed, first.reused, first.engine], [1, 1, 1, 0, 'pool']);
  const row = first.rows[0];
  const flm = join(out, 'artefacts', `${row.result.artefact}.flm`);
  t.ok(existsSync(flm), 'the artefact is stored under its sha256');
  const ev = cliJson(['eval', flm, '--data', 'mnist', '--limit', '100', '--json']);
  t.equal(row.result.accuracy, ev.accuracy, 'accuracy as eval measures it on the stored file');
  const ins = cliJson(['inspect', flm, '--json']);
  t.equal(row.result.params, ins.totals.params, 'parameters as inspect counts them');
  t.equal(row.result.fileBytes, ins.totals.fileBytes, 'file bytes');
  t.same(row.result.layers.map((l: any) => [l.name, l.op, l.ranks]), ins.layers.map((l: any) => [l.name, l.op, l.ranks]), 'layers, kinds and ranks');
  const again = jsonOf<any>(await cliAsync(['sweep', DEMO_MODEL, ...GRID, '--out', out, '--json']), 'sweep again');
  t.same([again.finished, again.computed, again.reused], [1, 0, 1], 'resume: nothing recomputed');
  t.same(again.rows[0], row, 'the same row');
});

t.test('bad arguments: one line on stderr, non-zero exit', async (t) => {
  const cases: Array<[string[], RegExp]> = [
    [['sweep', DEMO_MODEL, '--out', join(dir, 'x')], /--methods/],
    [['sweep', DEMO_MODEL, '--methods', 'svd,bogus', '--ratios', '4', '--out', join(dir, 'x')], /bogus/],
    [['sweep', DEMO_MODEL, '--methods', 'svd', '--ratios', 'abc', '--out', join(dir, 'x')], /abc/],
    [['sweep', DEMO_MODEL, '--methods', 'svd', '--out', join(dir, 'x')], /ratios/],
    [['sweep', join(dir, 'missing.onnx'), '--methods', 'svd', '--ratios', '4', '--out', join(dir, 'x')], /does not exist/],
    [['sweep', DEMO_MODEL, '--methods', 'svd', '--ratios', '4', '--out', join(dir, 'x'), '--queue', 'http://x'], /redis:\/\//],
    [['worker', '--queue', 'redis://127.0.0.1:1', '--lock-ms', '5'], /--lock-ms/],
    [['report', join(dir, 'nothing-here'), '-o', join(dir, 'r.html')], /does not exist/],
    [['report', dir, '-o', join(dir, 'r.txt')], /\.html/],
  ];
  for (const [args, re] of cases) {
    const r = cli(args);
    t.not(r.status, 0, `${args.slice(0, 2).join(' ')} … fails`);
    const lines = r.stderr.trim().split('\n');
    t.equal(lines.length, 1, `one line: ${lines[0]}`);
    t.match(lines[0], re);
    t.equal(r.stdout, '', 'nothing on stdout');
  }
});
