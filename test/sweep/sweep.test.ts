// factorlite sweep on the in-process pool: rows checked against `eval` and `inspect` of the stored
// artefact, resume without recomputing, and one-line errors for bad arguments.
import { existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { cli, cliAsync, cliJson, jsonOf } from '../support/cli.js';
import { DEMO_MODEL, startCli } from './support.js';

const dir = mkdtempSync(join(tmpdir(), 'factorlite-sweep-'));
const GRID = ['--methods', 'svd', '--ratios', '4', '--quant', 'int8', '--data', 'mnist', '--limit', '100', '--bench-iters', '5'];

t.test('a pool sweep stores rows that eval and inspect confirm, and a re-run computes nothing', async (t) => {
  const out = join(dir, 'a');
  const first = jsonOf<any>(await cliAsync(['sweep', DEMO_MODEL, ...GRID, '--target', 'cortex-m4,host', '--out', out, '--json'], { timeout: 400_000 }), 'sweep');
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

  // Per-layer time: every node of the graph, in run order, each weighted layer among them.
  const timed = row.timing.layers as Array<{ name: string; op: string; ms: number }>;
  t.ok(timed.length >= ins.layers.length, `a time for each of the ${timed.length} nodes`);
  t.ok(timed.every((l) => Number.isFinite(l.ms) && l.ms >= 0) && timed.some((l) => l.ms > 0), 'finite, non-negative times');
  const timedNames = timed.map((l) => l.name);
  t.ok(ins.layers.every((l: any) => timedNames.includes(l.name)), 'every weighted layer of inspect has a time');
  t.ok(row.timing.cpuSeconds > 0, 'CPU time of the point recorded');

  // Fit on each --target: the file's bytes against the profile's budget less the 10% margin, the
  // latency from the profile's cycles per MAC (budgets and constants as `factorlite targets` lists them).
  const profiles = new Map((cliJson(['targets', '--json']).targets as any[]).map((p) => [p.name, p]));
  for (const name of ['cortex-m4', 'host']) {
    const f = row.fits[name];
    const p = profiles.get(name);
    t.equal(f.modelBytes, row.result.fileBytes, `${name}: the file's bytes`);
    t.equal(f.modelBudget, Math.floor(p.budget.modelBytes * 0.9), `${name}: model budget less the margin`);
    t.equal(f.fits, f.modelBytes <= f.modelBudget && f.arenaBytes <= Math.floor(p.budget.arenaBytes * 0.9), `${name}: fits ${f.fits} as the budgets say`);
    if (p.cyclesPerMac) t.ok(Math.abs(f.latencyMs - (f.macs * p.cyclesPerMac.value) / (p.clockMHz.value * 1e3)) < 1e-3, `${name}: latency = MACs x cycles per MAC / clock`);
    else t.ok(f.latencyMs > 0, `${name}: a predicted latency`);
  }

  const again = jsonOf<any>(await cliAsync(['sweep', DEMO_MODEL, ...GRID, '--target', 'cortex-m4,host', '--out', out, '--json']), 'sweep again');
  t.same([again.finished, again.computed, again.reused], [1, 0, 1], 'resume: nothing recomputed');
  t.same(again.rows[0], row, 'the same row');
  // Another target on a finished sweep: nothing converted again; the fit comes from the stored artefact.
  const other = jsonOf<any>(await cliAsync(['sweep', DEMO_MODEL, ...GRID, '--target', 'atmega2560', '--out', out, '--json']), 'sweep, another target');
  t.same([other.computed, other.reused], [0, 1], 'a new target recomputes no point');
  t.equal(other.rows[0].fits['atmega2560'].modelBytes, row.result.fileBytes, 'its fit is read from the stored artefact');
  t.equal(other.rows[0].fits['atmega2560'].fits, false, 'the ATmega2560 arena budget (4 KB) is too small for the demo CNN');
});

t.test('Ctrl-C (SIGINT to the process group) stops after the point in progress; a re-run resumes with nothing lost', async (t) => {
  const out = join(dir, 'interrupted');
  const grid = ['--methods', 'svd', '--ratios', '2,3,4,6', '--quant', 'f32', '--data', 'mnist', '--limit', '100', '--bench-iters', '5', '--workers', '1', '--out', out];
  const run = startCli(['sweep', DEMO_MODEL, ...grid, '--json'], { detached: true });
  await run.waitFor(/sweep: 1\/4 /, 300_000);
  // As a terminal's Ctrl-C does: the signal reaches the sweep and its pool process; point 2 is in progress.
  process.kill(-run.child.pid!, 'SIGINT');
  const code = await run.exited;
  t.not(code, 0, 'the interrupted sweep exits non-zero');
  t.match(run.err, /stopping after the points in progress/, 'says it is stopping');
  t.match(run.err.trim().split('\n').at(-1), /interrupted with 2 point\(s\) left; run the same command to resume/, 'last line: how to resume');
  const partial = JSON.parse(run.out.trim());
  t.same([partial.finished, partial.interrupted], [2, true], 'the point in progress at Ctrl-C finished and was kept');
  const kept = new Map(readdirSync(join(out, 'rows')).map((f) => [f, readFileSync(join(out, 'rows', f), 'utf8')]));
  t.equal(kept.size, 2, 'two rows on disk');
  const again = jsonOf<any>(await cliAsync(['sweep', DEMO_MODEL, ...grid, '--json'], { timeout: 400_000 }), 'sweep resumed');
  t.same([again.finished, again.computed, again.reused, again.interrupted], [4, 2, 2, false], 'the re-run computes only the 2 points left');
  for (const [f, text] of kept) t.equal(readFileSync(join(out, 'rows', f), 'utf8'), text, `row ${f} kept as it was`);
  t.same(again.rows.slice(0, 2).map((r: any) => r.key), partial.rows.map((r: any) => r.key), 'the finished points first, in grid order');
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
    [['sweep', DEMO_MODEL, '--methods', 'svd', '--ratios', '4', '--target', 'cortex-m4,toaster', '--out', join(dir, 'x')], /unknown target toaster/],
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
