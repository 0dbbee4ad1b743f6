// The report in a real browser: Debian's chromium, headless, through playwright-core. It must
// render with no console error and no network request, its front must be the accuracy-size Pareto
// front of the sweep's rows (computed here by brute force), and every point must carry its
// settings on hover. The screenshot goes to docs/report.png, which the README shows.
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import t from 'tap';
import { chromium } from 'playwright-core';
import { cliAsync, jsonOf } from '../support/cli.js';
import { REPO_ROOT, missing } from '../support/require.js';
import { DEMO_MODEL, TINY_GRID } from '../sweep/support.js';

const CHROMIUM = '/usr/bin/chromium';
const FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'];
const dir = mkdtempSync(join(tmpdir(), 'factorlite-report-'));

t.test('the report renders offline in chromium, and its front is the sweep rows\' Pareto front', async (t) => {
  if (!existsSync(CHROMIUM)) return void missing(t, `chromium (Debian package chromium) not found at ${CHROMIUM}`);
  const out = join(dir, 'sweep');
  // The sweep, and beside it a TTL MLP trained a few steps for explain's pictures.
  const ttl = join(dir, 'ttl.flm');
  const [sweepRun, trainRun] = await Promise.all([
    cliAsync(['sweep', DEMO_MODEL, ...TINY_GRID, '--ratios', '2,4', '--workers', '2', '--target', 'cortex-m4', '--out', out, '--json'], { timeout: 500_000 }),
    cliAsync(['train', '--arch', 'mlp', '--layer', 'tucker', '--ratio', '20', '--data', 'mnist', '--epochs', '1', '--limit', '64', '--eval-limit', '32', '--no-progress', '-o', ttl, '--json']),
  ]);
  const sweep = jsonOf<any>(sweepRun, 'sweep');
  jsonOf(trainRun, 'train');
  t.equal(sweep.finished, 6, 'the sweep finished its 6 points');
  const best = sweep.rows.find((r: any) => r.point.method === 'svd' && r.point.ratio === 4 && r.point.quant === 'int8');
  const hilOut = join(dir, 'hil');
  const explainJson = join(dir, 'explain.json');
  const [hilRun, explainRun] = await Promise.all([
    cliAsync(['hil', '--model', join(out, 'artefacts', `${best.result.artefact}.flm`), '--emulate', 'host', '--data', 'mnist', '--limit', '30', '--no-progress', '--out', hilOut, '--json']),
    cliAsync(['explain', ttl, '--data', 'mnist', '--limit', '32', '--no-progress', '-o', join(dir, 'importance.png'), '--json']),
  ]);
  const hil = jsonOf<any>(hilRun, 'hil');
  const explain = jsonOf<any>(explainRun, 'explain');
  writeFileSync(explainJson, JSON.stringify(explain));
  const html = join(dir, 'report.html');
  const rep = jsonOf<any>(await cliAsync(['report', out, ttl, '--hil', `${hilOut}.json`, '--explain', explainJson, '-o', html, '--json']), 'report');
  t.equal(rep.sweeps[0].points, 6);
  t.same([rep.models, rep.hil, rep.explain], [1, 1, 1]);
  const page0 = readFileSync(html, 'utf8');
  t.notMatch(page0, /<script|https?:\/\/(?!www\.w3\.org)/, 'no script and no link to the network in the page');

  const rows = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8')).rows as any[];
  // Brute force: a row is on the front when no other row is at least as good on both and better on one.
  const dominated = (a: any) => rows.some((b) => b !== a && b.result.accuracy >= a.result.accuracy && b.result.fileBytes <= a.result.fileBytes
    && (b.result.accuracy > a.result.accuracy || b.result.fileBytes < a.result.fileBytes));
  const want = rows.filter((r) => !dominated(r)).map((r) => r.key).sort();

  const ctx = await chromium.launchPersistentContext(mkdtempSync(join(tmpdir(), 'factorlite-chromium-')), {
    executablePath: CHROMIUM, headless: true, args: FLAGS, viewport: { width: 1200, height: 900 },
  });
  try {
    const page = await ctx.newPage();
    const errors: string[] = [];
    const requests: string[] = [];
    const url = pathToFileURL(html).href;
    page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
    page.on('pageerror', (e) => errors.push(e.message));
    page.on('request', (r) => { if (r.url() !== url && !r.url().startsWith('data:')) requests.push(r.url()); });
    await page.goto(url, { waitUntil: 'load' });
    t.same(errors, [], 'no console error');
    t.same(requests, [], 'no network request');
    const shown = await page.$$eval('#front-size [aria-label^="front "]', (els) => els.map((e) => (e.getAttribute('aria-label') ?? '').slice(6, 26)));
    t.same(shown.slice().sort(), want, `the drawn front is the Pareto front of results.json (${want.length} points)`);
    const titles = await page.$$eval('#front-size path[role="graphics-symbol"] > title', (els) => els.map((e) => e.textContent ?? ''));
    for (const r of rows) t.ok(titles.some((s) => s.startsWith(`${r.key}:`) && s.includes(r.point.method) && s.includes(r.point.quant)), `point ${r.key} has its settings on hover`);
    const box = await page.locator('#front-size svg').boundingBox();
    t.ok(box && box.width > 300 && box.height > 200, 'the chart has a size on the page');
    const layerRows = await page.$$eval('table.layers tbody tr', (els) => els.length);
    t.ok(layerRows > 0, 'the chosen point has its layer table');

    // Accuracy against the latency predicted on --target cortex-m4: every point drawn, those that
    // do not fit marked so, the front drawn among those that fit.
    const onM4 = await page.$$eval('#front-target-cortex-m4 path[role="graphics-symbol"] > title', (els) => els.map((e) => e.textContent ?? ''));
    const fitting = rows.filter((r) => r.fits['cortex-m4'].fits);
    t.ok(fitting.length > 0 && fitting.length < rows.length, `some points fit cortex-m4 and some do not (${fitting.length} of ${rows.length})`);
    for (const r of rows) {
      const mine = onM4.filter((s) => s.startsWith(`${r.key}:`));
      const f = r.fits['cortex-m4'];
      t.ok(mine.length === 1 && mine[0]!.includes(f.fits ? `fits cortex-m4, predicted ${f.latencyMs.toFixed(3)} ms` : 'does not fit cortex-m4'),
        `point ${r.key} on the cortex-m4 chart, ${f.fits ? 'fitting' : 'marked as not fitting'}`);
    }
    const m4Dominated = (a: any) => fitting.some((b) => b !== a && b.result.accuracy >= a.result.accuracy && b.fits['cortex-m4'].latencyMs <= a.fits['cortex-m4'].latencyMs
      && (b.result.accuracy > a.result.accuracy || b.fits['cortex-m4'].latencyMs < a.fits['cortex-m4'].latencyMs));
    const m4Front = await page.$$eval('#front-target-cortex-m4 [aria-label^="front "]', (els) => els.map((e) => (e.getAttribute('aria-label') ?? '').slice(6, 26)));
    t.same(m4Front.sort(), fitting.filter((r) => !m4Dominated(r)).map((r) => r.key).sort(), 'its front: the Pareto front of the points that fit');

    // Time per layer of the chosen point: a time in each row of the layer table, one bar per node.
    const chosenKey = await page.textContent('section.sweep h3 code');
    const chosen = rows.find((r) => r.key === chosenKey)!;
    const times = await page.$$eval('section.sweep table.layers tbody tr td:last-child', (els) => els.map((e) => e.textContent ?? ''));
    const byName = new Map(chosen.timing.layers.map((l: any) => [l.name, l.ms]));
    t.same(times, chosen.result.layers.map((l: any) => `${(byName.get(l.name) as number).toFixed(4)} ms`), 'the layer table\'s time column is the row\'s per-layer time');
    const bars = await page.$$eval('#layer-time path[role="graphics-symbol"] > title', (els) => els.length);
    t.equal(bars, chosen.timing.layers.length, 'one bar per node in the time chart');

    // Per-sample logit error of the hil report, as a histogram.
    t.equal(hil.logitErrors.length, hil.results.answered, 'the hil report has a logit error per sample');
    t.equal(Math.max(...hil.logitErrors), hil.results.maxAbsLogitError, 'whose largest is the report\'s max |logit error|');
    const histTitle = await page.textContent('section.hil figure.logit-error svg');
    t.match(histTitle, `logit per sample (${hil.results.answered} samples)`, 'the logit error histogram is drawn');
    const agreement = await page.textContent('section.hil p.agreement');
    t.match(agreement, `${(100 * hil.results.agreement).toFixed(2)}%`, 'the HIL agreement of the hil report');
    const cells = await page.$$eval('section.hil figure.confusion [aria-roledescription="rect mark container"] path[role="graphics-symbol"]', (els) => els.length);
    t.equal(cells, hil.results.confusion.length * hil.results.confusion[0].length, 'one confusion cell per (desktop, device) pair');
    const imgs = await page.$$eval('section.explain img', (els) => els.map((e) => (e as HTMLImageElement).naturalWidth));
    t.equal(imgs.length, explain.layers.length, 'one picture per explained layer');
    t.ok(imgs.every((w) => w > 0), 'the inlined PNGs decode');
    await page.screenshot({ path: resolve(REPO_ROOT, 'docs/report.png'), fullPage: true });
  } finally {
    await ctx.close();
  }
});
