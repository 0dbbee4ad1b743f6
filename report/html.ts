// The report page: one HTML file with every chart inlined as SVG and every picture as a data URI.
// No script, no external style, no network: it opens the same from a mail attachment or a CI
// artefact as from disk.
import { basename } from 'node:path';
import { pointLabel } from '../sweep/grid.js';
import type { SweepRow } from '../sweep/point.js';
import { renderSvg, type VlSpec } from './charts.js';
import { ReportError, type ExplainInput, type HilInput, type ModelInput, type ReportInputs, type SweepInput } from './inputs.js';
import { paretoFront } from './pareto.js';

const esc = (s: unknown) => String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
const pct = (x: number) => `${(100 * x).toFixed(2)}%`;
function bytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(2)} MiB`;
}

function htmlTable(head: string[], rows: Array<Array<string | number>>, cls = ''): string {
  return `<table${cls ? ` class="${cls}"` : ''}><thead><tr>${head.map((h) => `<th>${esc(h)}</th>`).join('')}</tr></thead><tbody>${
    rows.map((r) => `<tr>${r.map((c) => `<td>${typeof c === 'number' ? esc(Number.isInteger(c) ? c : c.toPrecision(4)) : c}</td>`).join('')}</tr>`).join('')
  }</tbody></table>`;
}

/** The tooltip text of a point: its settings and results; front points start with "front ". */
export function pointDescription(r: SweepRow, onFront: boolean, target?: string): string {
  const f = target ? r.fits?.[target] : undefined;
  const fit = !target ? '' : !f ? `; ${target}: not checked`
    : f.fits ? `; fits ${target}, predicted ${f.latencyMs !== null ? `${f.latencyMs.toFixed(3)} ms` : 'latency unknown'}`
      : `; does not fit ${target}: ${f.why.join('; ')}`;
  return `${onFront ? 'front ' : ''}${r.key}: ${pointLabel(r.point)}; accuracy ${pct(r.result.accuracy)}; ${bytes(r.result.fileBytes)} (${r.result.bytesRatio.toFixed(1)}x smaller); ` +
    `${r.result.params} params (${r.result.paramsRatio.toFixed(1)}x fewer); batch-1 latency ${r.timing.latencyMs.toFixed(3)} ms${fit}`;
}

/** Accuracy against the latency `target`'s profile predicts; points that do not fit are crosses, off the front. */
function targetSpec(s: SweepInput, target: string): VlSpec | null {
  const values = s.rows.filter((r) => r.fits?.[target]?.latencyMs != null).map((r) => {
    const f = r.fits![target]!;
    return {
      key: r.key, method: r.point.method, quant: r.point.quant, accuracy: r.result.accuracy, latencyMs: f.latencyMs!, fits: f.fits,
      description: pointDescription(r, false, target), frontDescription: pointDescription(r, true, target),
    };
  });
  if (values.length === 0) return null;
  const fitting = values.filter((v) => v.fits);
  const frontKeys = new Set(paretoFront(fitting.map((v) => ({ key: v.key, accuracy: v.accuracy, cost: v.latencyMs }))));
  const frontValues = fitting.filter((v) => frontKeys.has(v.key)).sort((a, b) => a.latencyMs - b.latencyMs);
  const xEnc = { field: 'latencyMs', type: 'quantitative' as const, scale: { type: 'log' as const, nice: false }, title: `predicted latency on ${target}, ms (log)` };
  const yEnc = { field: 'accuracy', type: 'quantitative' as const, scale: { zero: false }, axis: { format: '.2%' }, title: 'test accuracy' };
  const color = { field: 'method', type: 'nominal' as const, title: 'method' };
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: `accuracy against latency predicted on ${target}; crosses: points that do not fit it`, width: 520, height: 320,
    layer: [
      ...(frontValues.length ? [{ data: { values: frontValues }, mark: { type: 'line', interpolate: 'step-after', color: '#c0392b', strokeDash: [4, 3] }, encoding: { x: xEnc, y: yEnc } }] : []),
      ...(fitting.length ? [{
        data: { values: fitting }, mark: { type: 'point', filled: true, size: 70, opacity: 0.85 },
        encoding: { x: xEnc, y: yEnc, color, shape: { field: 'quant', type: 'nominal', title: 'quantisation' }, description: { field: 'description' } },
      }] : []),
      ...(fitting.length < values.length ? [{
        data: { values: values.filter((v) => !v.fits) }, mark: { type: 'point', shape: 'cross', filled: true, size: 160, opacity: 0.8 },
        encoding: { x: xEnc, y: yEnc, color, description: { field: 'description' } },
      }] : []),
      ...(frontValues.length ? [{
        data: { values: frontValues }, mark: { type: 'point', size: 220, color: '#c0392b', strokeWidth: 1.5 },
        encoding: { x: xEnc, y: yEnc, description: { field: 'frontDescription' } },
      }] : []),
    ],
  } as VlSpec;
}

function layerTimeSpec(r: SweepRow): VlSpec {
  return {
    title: `batch-1 time per layer: ${pointLabel(r.point)}`, width: 520, height: { step: 14 },
    data: { values: r.timing.layers!.map((l, i) => ({ layer: `${i}: ${l.name}`, ms: l.ms, kind: l.op, description: `${l.name} (${l.op}): ${l.ms.toFixed(4)} ms` })) },
    mark: 'bar',
    encoding: { y: { field: 'layer', type: 'nominal', sort: null, title: null }, x: { field: 'ms', type: 'quantitative', title: 'ms (median of timed runs)' }, color: { field: 'kind', type: 'nominal' }, description: { field: 'description' } },
  } as VlSpec;
}

function scatterSpec(s: SweepInput, front: Set<string>, x: 'fileBytes' | 'latencyMs', title: string): VlSpec {
  const values = s.rows.map((r) => ({
    key: r.key, method: r.point.method, quant: r.point.quant, accuracy: r.result.accuracy,
    fileBytes: r.result.fileBytes, latencyMs: r.timing.latencyMs, front: front.has(r.key),
    description: pointDescription(r, false), frontDescription: pointDescription(r, true),
  }));
  // The front on this chart's axis: accuracy against this x.
  const frontKeys = new Set(paretoFront(values.map((v) => ({ key: v.key, accuracy: v.accuracy, cost: v[x] }))));
  const frontValues = values.filter((v) => frontKeys.has(v.key)).sort((a, b) => a[x] - b[x]);
  const xEnc = { field: x, type: 'quantitative' as const, scale: { type: 'log' as const, nice: false }, title: x === 'fileBytes' ? 'file bytes (log)' : 'batch-1 latency, ms (log)' };
  const yEnc = { field: 'accuracy', type: 'quantitative' as const, scale: { zero: false }, axis: { format: '.2%' }, title: 'test accuracy' };
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title, width: 520, height: 320,
    layer: [
      { data: { values: frontValues }, mark: { type: 'line', interpolate: 'step-after', color: '#c0392b', strokeDash: [4, 3] }, encoding: { x: xEnc, y: yEnc } },
      {
        data: { values }, mark: { type: 'point', filled: true, size: 70, opacity: 0.85 },
        encoding: {
          x: xEnc, y: yEnc, color: { field: 'method', type: 'nominal', title: 'method' }, shape: { field: 'quant', type: 'nominal', title: 'quantisation' },
          description: { field: 'description' },
        },
      },
      {
        data: { values: frontValues }, mark: { type: 'point', size: 220, color: '#c0392b', strokeWidth: 1.5 },
        encoding: { x: xEnc, y: yEnc, description: { field: 'frontDescription' } },
      },
    ],
  } as VlSpec;
}

function layerBarsSpec(r: SweepRow): VlSpec {
  return {
    title: `bytes per layer: ${pointLabel(r.point)}`, width: 520, height: { step: 18 },
    data: { values: r.result.layers.map((l) => ({ layer: l.name, bytes: l.bytes, kind: l.op, description: `${l.name} (${l.op}): ${bytes(l.bytes)}, ${l.params} params, ranks ${l.ranks.join('x') || '-'}` })) },
    mark: 'bar',
    encoding: { y: { field: 'layer', type: 'nominal', sort: null, title: null }, x: { field: 'bytes', type: 'quantitative' }, color: { field: 'kind', type: 'nominal' }, description: { field: 'description' } },
  } as VlSpec;
}

async function sweepSection(s: SweepInput, chosenKey: string | undefined): Promise<string> {
  if (s.rows.length === 0) return `<section><h2>${esc(basename(s.dir))}</h2><p>No finished points yet.</p></section>`;
  const frontKeys = paretoFront(s.rows.map((r) => ({ key: r.key, accuracy: r.result.accuracy, cost: r.result.fileBytes })));
  const front = new Set(frontKeys);
  const chosen = chosenKey ? s.rows.find((r) => r.key === chosenKey) : s.rows.find((r) => r.key === frontKeys.at(-1));
  if (chosenKey && !chosen) throw new ReportError('REPORT_POINT', `--point ${chosenKey}: no such point in ${s.dir} (keys: ${s.rows.map((r) => r.key).join(', ')})`);
  const c = s.common;
  const size = await renderSvg(scatterSpec(s, front, 'fileBytes', 'accuracy against file size; red: the front (no point is both smaller and more accurate)'));
  const speed = await renderSvg(scatterSpec(s, front, 'latencyMs', 'accuracy against batch-1 latency in the Node runtime on the sweep host'));
  const targets = c.targets ?? [];
  const targetCharts: string[] = [];
  for (const tg of targets) {
    const spec = targetSpec(s, tg);
    targetCharts.push(spec ? `<figure class="chart target" id="front-target-${esc(tg)}" data-target="${esc(tg)}">${await renderSvg(spec)}</figure>`
      : `<p>No latency predicted on ${esc(tg)} for any point.</p>`);
  }
  const onTarget = (r: SweepRow, tg: string): string => {
    const f = r.fits?.[tg];
    if (!f) return '-';
    const ms = f.latencyMs !== null ? `${f.latencyMs.toFixed(3)} ms` : '-';
    return f.fits ? `<span class="fits">fits</span>, ${ms}` : `<span class="nofit" title="${esc(f.why.join('; '))}">does not fit</span>, ${ms}`;
  };
  const table = htmlTable(
    ['', 'point', 'accuracy', 'params', 'fewer params', 'file', 'smaller', 'latency b1', ...targets.map((tg) => `on ${tg}`), 'tries', 'key'],
    s.rows.map((r) => [front.has(r.key) ? '<span class="front" title="on the front">&#9679;</span>' : '', esc(pointLabel(r.point)), pct(r.result.accuracy), r.result.params,
      `${r.result.paramsRatio.toFixed(1)}x`, bytes(r.result.fileBytes), `${r.result.bytesRatio.toFixed(1)}x`, `${r.timing.latencyMs.toFixed(3)} ms`,
      ...targets.map((tg) => onTarget(r, tg)), r.attempts, `<code>${esc(r.key)}</code>`]),
    'points',
  );
  let layers = '';
  if (chosen) {
    const times = new Map((chosen.timing.layers ?? []).map((l) => [l.name, l.ms]));
    const timed = chosen.timing.layers?.length ? chosen.timing.layers.reduce((a, l) => a + l.ms, 0) : null;
    const weighted = chosen.result.layers.reduce((a, l) => a + (times.get(l.name) ?? 0), 0);
    layers = `<h3>Layers of ${esc(pointLabel(chosen.point))} <code>${esc(chosen.key)}</code></h3>
<p>Accuracy ${pct(chosen.result.accuracy)} on ${chosen.result.samples} test images; artefact <code>artefacts/${esc(chosen.result.artefact)}.flm</code>.
${timed !== null
    ? `Time per layer: batch 1 on the sweep host, median of the timed runs (Session.layerTimes); the layers below take ${weighted.toFixed(3)} ms of the ${timed.toFixed(3)} ms all ${chosen.timing.layers!.length} nodes take (whole-model batch-1 latency ${chosen.timing.latencyMs.toFixed(3)} ms).`
    : `This row was computed before the sweep timed layers; the batch-1 latency of the whole model is ${chosen.timing.latencyMs.toFixed(3)} ms.`}</p>
${htmlTable(['layer', 'kind', 'ranks', 'params', 'bytes', 'dtypes', 'rel. error', 'time b1'],
      chosen.result.layers.map((l) => [esc(l.name), esc(l.op), l.ranks.join('x') || '-', l.params, l.bytes, esc(l.dtypes.join('/')), l.relError ? l.relError.toFixed(4) : '-',
        times.has(l.name) ? `${times.get(l.name)!.toFixed(4)} ms` : '-']), 'layers')}
<div class="row"><figure class="bytes">${await renderSvg(layerBarsSpec(chosen))}</figure>${
  chosen.timing.layers?.length ? `<figure class="layer-time" id="layer-time">${await renderSvg(layerTimeSpec(chosen))}</figure>` : ''}</div>`;
  }
  return `<section class="sweep" data-dir="${esc(s.dir)}">
<h2>Sweep of ${esc(c.model.name)}</h2>
<p>${s.rows.length} finished points; accuracy on ${esc(c.data)}${c.limit ? ` (first ${c.limit} test images)` : ''}; seed ${c.seed}. Hover a point for its settings.</p>
<figure class="chart" id="front-size">${size}</figure>
<figure class="chart" id="front-latency">${speed}</figure>
${targetCharts.join('\n')}
${table}
${layers}
</section>`;
}

function modelSection(m: ModelInput): string {
  const params = m.layers.reduce((s, l) => s + l.params, 0);
  return `<section class="model"><h2>${esc(basename(m.path))}</h2>
<p>${params} parameters; file ${bytes(m.fileBytes)}${typeof m.metadata['convert.method'] === 'string' ? `; method ${esc(m.metadata['convert.method'])}` : ''}.</p>
${htmlTable(['layer', 'kind', 'ranks', 'params', 'bytes', 'dtypes'], m.layers.map((l) => [esc(l.name), esc(l.op), l.ranks.join('x') || '-', l.params, l.bytes, esc([...new Set(l.tensors.map((t) => t.dtype))].join('/'))]), 'layers')}
</section>`;
}

async function hilSection(h: HilInput): Promise<string> {
  const r = h.report;
  const head = `<h2>Hardware in the loop: ${esc(r.device.board)} (${esc(basename(r.model.path))})</h2>`;
  if (!r.results) return `<section class="hil">${head}<p>No results: ${esc(r.why ?? 'the model did not run')}.</p></section>`;
  const x = r.results;
  const numbers = htmlTable(['samples', 'agreement', 'device accuracy', 'desktop accuracy', 'max |logit error|', 'mean |logit error|', 'latency p50', 'latency p95', 'cycles p50'], [[
    x.answered, pct(x.agreement), x.deviceAccuracy === null ? '-' : pct(x.deviceAccuracy), x.desktopAccuracy === null ? '-' : pct(x.desktopAccuracy), x.maxAbsLogitError.toExponential(2), x.meanAbsLogitError.toExponential(2),
    `${x.latencyUs.p50.toFixed(0)} µs`, `${x.latencyUs.p95.toFixed(0)} µs`, x.cycles ? x.cycles.p50.toFixed(0) : '-',
  ]]);
  const cells = x.confusion.flatMap((row, d) => row.map((n, v) => ({ desktop: d, device: v, n, description: `desktop ${d}, device ${v}: ${n}` })));
  const confusion = x.confusion.length === 0 ? '<p>No confusion matrix: the outputs were compared as values.</p>' : await renderSvg({
    title: 'confusion: device top-1 against desktop top-1', width: 260, height: 260, data: { values: cells },
    encoding: { x: { field: 'device', type: 'ordinal' }, y: { field: 'desktop', type: 'ordinal' } },
    layer: [
      { mark: 'rect', encoding: { color: { field: 'n', type: 'quantitative', scale: { type: 'symlog' } }, description: { field: 'description' } } },
      { mark: { type: 'text', fontSize: 9 }, encoding: { text: { field: 'n', type: 'quantitative' } } },
    ],
  } as VlSpec);
  const latency = await renderSvg({
    title: 'device latency per sample', width: 300, height: 200, data: { values: r.samples.map((s) => ({ us: s[3] })) },
    mark: 'bar', encoding: { x: { field: 'us', type: 'quantitative', bin: { maxbins: 30 }, title: 'µs' }, y: { aggregate: 'count', type: 'quantitative' } },
  } as VlSpec);
  // Per-sample logit error (hil reports written before it was recorded have none). JSON keeps an
  // infinite error as null: counted, not drawn.
  const errs = (r.logitErrors ?? []).map((e) => (typeof e === 'number' && Number.isFinite(e) ? e : null));
  const finite = errs.filter((e): e is number => e !== null);
  let logit = '<p>This hil report has no per-sample logit error (written before hil recorded it).</p>';
  if (errs.length > 0) {
    logit = await renderSvg({
      title: `max |device - workstation| logit per sample (${finite.length} samples)`, width: 300, height: 200,
      data: { values: finite.map((e) => ({ err: e })) },
      mark: 'bar', encoding: { x: { field: 'err', type: 'quantitative', bin: { maxbins: 30 }, title: 'max |logit error|' }, y: { aggregate: 'count', type: 'quantitative', title: 'samples' } },
    } as VlSpec);
    if (finite.length < errs.length) logit += `<p>${errs.length - finite.length} sample(s) with an error that is not finite (NaN or infinite outputs).</p>`;
  }
  return `<section class="hil">${head}
<p class="agreement">Device and workstation agree on ${pct(x.agreement)} of ${x.answered} samples.</p>
<p>${esc(r.device.fw)} on ${esc(r.device.board)}; ${esc(r.data.name)}; line ${r.link.baud ?? '-'} baud, ${r.link.resends} resends, ${r.link.timeouts} timeouts.</p>
${numbers}<div class="row"><figure class="confusion">${confusion}</figure><figure class="logit-error">${logit}</figure><figure class="latency">${latency}</figure></div></section>`;
}

function explainSection(e: ExplainInput): string {
  return `<section class="explain"><h2>What the factors say (${esc(e.kind)}, ${e.samples} ${esc(e.data)} images)</h2>
<div class="row">${e.pictures.map((p) => `<figure><img alt="${esc(p.layer)}" src="${p.png}"><figcaption>${esc(p.layer)} (${esc(p.kind)})</figcaption></figure>`).join('')}</div></section>`;
}

const STYLE = `body{font:14px/1.45 system-ui,sans-serif;margin:24px auto;max-width:1100px;color:#222;padding:0 16px}
h1{font-size:22px}h2{font-size:18px;margin-top:32px;border-bottom:1px solid #ddd}h3{font-size:15px}
table{border-collapse:collapse;margin:8px 0;font-variant-numeric:tabular-nums}th,td{padding:3px 8px;border-bottom:1px solid #eee;text-align:right}
th{background:#f6f6f6}td:nth-child(2),th:nth-child(2){text-align:left}table.layers td:first-child{text-align:left}
figure{margin:8px 0;display:inline-block;vertical-align:top}.row{display:flex;flex-wrap:wrap;gap:16px}img{image-rendering:pixelated;max-width:360px}
.front{color:#c0392b}.nofit{color:#c0392b}.fits{color:#1e8449}code{font-size:12px;color:#555}`;

export async function buildReport(inputs: ReportInputs, opts: { point?: string; title?: string } = {}): Promise<string> {
  if (inputs.sweeps.length + inputs.models.length + inputs.hil.length + inputs.explain.length === 0) throw new ReportError('REPORT_INPUT', 'nothing to report: give a sweep folder, a .flm, --hil or --explain');
  const parts: string[] = [];
  for (const s of inputs.sweeps) parts.push(await sweepSection(s, opts.point && s.rows.some((r) => r.key === opts.point) ? opts.point : inputs.sweeps.length === 1 ? opts.point : undefined));
  for (const m of inputs.models) parts.push(modelSection(m));
  for (const h of inputs.hil) parts.push(await hilSection(h));
  for (const e of inputs.explain) parts.push(explainSection(e));
  const title = opts.title ?? 'factorlite report';
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src data:; style-src 'unsafe-inline'">
<title>${esc(title)}</title><style>${STYLE}</style></head>
<body><h1>${esc(title)}</h1>
${parts.join('\n')}
</body></html>
`;
}
