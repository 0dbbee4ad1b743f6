// factorlite explain <model.flm> --data <set> -o <importance.png> [--json]
// TTL layers: gradient-based importance of each factor row (input-mode index) over the data set,
// drawn as a 28x28 pixel heat map when the layer reads the image. CP conv layers: the significance
// of each rank-1 term and of each output / input feature map, drawn as bar charts. flexact layers
// (convert --method decouple): each branch's learned activation g_b, drawn as small multiples. adtn
// layers: each gate's significance (the weight without it), a heat map of layers by gate position.
// The first picture goes to -o; every other one to <stem>.<layer>.png (listed under `files`).
import { basename, dirname, join } from 'node:path';
import { writeFileAtomic } from '../../converter/atomicWrite.js';
import { checkOutputs } from '../outputs.js';
import { loadDataset, limitDataset } from '../../converter/data/datasets.js';
import { explainCp, type CpLayerSignificance } from '../../converter/explain/cp.js';
import { drawBarChart, drawCurveGrid, drawHeatMap, type BarChartLayout, type CurveGridLayout, type HeatMapLayout } from '../../converter/explain/draw.js';
import { explainFlexact, flexactNodes, type FlexactLayerCurves } from '../../converter/explain/flexact.js';
import { explainTtl, ttlNodes, type TtlLayerImportance } from '../../converter/explain/ttl.js';
import { cpNodes } from '../../converter/explain/cp.js';
import { adtnNodes, explainAdtn, type AdtnLayerSignificance } from '../../converter/explain/adtn.js';
import { CliError } from '../errors.js';
import { isFlm, readFlmAt, readModelBytes } from '../modelFile.js';
import { log, progress } from '../progress.js';
import { parseLimit } from './evalCmd.js';
import { positiveIntFlag } from '../flags.js';
import { CP_KIND } from '../../converter/methods/cp.js';

export interface ExplainArgs {
  data: string;
  labels?: string;
  limit?: string;
  output: string;
  batch?: string;
  json?: boolean;
  /** false: no progress on stderr (commander's --no-progress). */
  progress?: boolean;
}

type Picture = HeatMapLayout | BarChartLayout | CurveGridLayout;
export type ExplainedLayer = (TtlLayerImportance | CpLayerSignificance | FlexactLayerCurves | AdtnLayerSignificance) & { file: string; picture: Picture };

export interface ExplainResult {
  model: string;
  data: string;
  samples: number;
  /** The kinds explained, joined by '+' in this order: ttl, cp, flexact, adtn. */
  kind: string;
  output: string;
  files: string[];
  layers: ExplainedLayer[];
}

/** `<stem>.<layer>.png` next to `output` (stem: output without a .png ending). */
export function layerFileName(output: string, layer: string): string {
  const stem = basename(output).replace(/\.png$/i, '');
  const safe = layer.replace(/[^A-Za-z0-9_.-]+/g, '_').replace(/^[_.]+|_+$/g, '') || 'layer';
  return join(dirname(output), `${stem}.${safe}.png`);
}

function pictureOfTtl(l: TtlLayerImportance): { png: Buffer; layout: HeatMapLayout | BarChartLayout } {
  if (l.pixelMap) return drawHeatMap(l.pixelMap.values, l.pixelMap.width, l.pixelMap.height, { scale: 10, colorMap: 'inferno' });
  return drawBarChart(l.modes.map((m) => ({ name: `${m.side}.${m.mode} (${m.role}) importance`, values: m.importance, order: 'index' as const })));
}

function pictureOfCp(l: CpLayerSignificance): { png: Buffer; layout: BarChartLayout } {
  return drawBarChart([
    { name: 'rank-1 term significance, sorted', values: l.termSignificance, order: 'desc' },
    { name: 'output feature map significance', values: l.outputMaps, order: 'index' },
    { name: 'input feature map significance', values: l.inputMaps, order: 'index' },
  ]);
}

function pictureOfFlexact(l: FlexactLayerCurves): { png: Buffer; layout: CurveGridLayout } {
  return drawCurveGrid(l.curves.map((c) => ({ x: c.z, y: c.g, ...(c.ranged ? { band: [c.lo, c.hi] as [number, number] } : {}) })));
}

function pictureOfAdtn(l: AdtnLayerSignificance): { png: Buffer; layout: HeatMapLayout } {
  const top = Math.max(...l.grid.values) || 1;
  return drawHeatMap(l.grid.values.map((v) => v / top), l.grid.cols, l.grid.rows, { scale: 16, colorMap: 'inferno' });
}

function argmax(v: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < v.length; i++) if (v[i]! > v[best]!) best = i;
  return best;
}

export async function explainCommand(path: string, a: ExplainArgs): Promise<ExplainResult> {
  const limit = parseLimit(a.limit);
  const batch = positiveIntFlag('--batch', a.batch) ?? 32;
  if (!a.output) throw new CliError('BAD_ARGUMENT', '-o <importance.png> is required');
  checkOutputs({ inputs: [path, a.data], outputs: [a.output] });
  const bytes = readModelBytes(path);
  if (!isFlm(bytes)) throw new CliError('NOT_A_MODEL', `${path} is not a .flm file (explain reads .flm; convert an ONNX model first)`);
  const model = readFlmAt(path, bytes);
  const nTtl = ttlNodes(model).length;
  const nCp = cpNodes(model).length;
  const nFx = flexactNodes(model).length;
  const nAd = adtnNodes(model).length;
  if (nTtl + nCp + nFx + nAd === 0) {
    throw new CliError('BAD_INPUT', `${path} has no ttl_dense or ${CP_KIND} layer to explain, nor a flexact, adtn_dense or adtn_conv2d one (train with --layer tucker, cp or adtn, or convert with --method tucker/cp/decouple/adtn)`);
  }
  const ds = limitDataset(loadDataset(a.data, 'test', a.labels !== undefined ? { labels: a.labels } : {}), limit);
  const showProgress = a.progress !== false;
  let ttl: TtlLayerImportance[] = [];
  if (nTtl > 0) {
    const bar = progress('explain (TTL gradients)', ds.count, showProgress);
    try {
      ttl = explainTtl(model, ds, { batch, onProgress: (d) => bar.update(d) });
    } catch (e) {
      throw new CliError('BAD_INPUT', `${path}: cannot back-propagate through the model on ${ds.name}: ${(e as Error).message}`, { cause: e });
    } finally {
      bar.stop();
    }
  }
  const cp = explainCp(model);
  const fx = explainFlexact(model);
  let ad: AdtnLayerSignificance[] = [];
  if (nAd > 0) {
    const gates = adtnNodes(model).reduce((n, x) => n + (model.tensors.get(x.weights['gates'] ?? '')?.shape[0] ?? 0), 0);
    const bar = progress('explain (adtn gates, one W each)', gates, showProgress);
    try {
      ad = explainAdtn(model, (d) => bar.update(d));
    } catch (e) {
      throw new CliError('BAD_INPUT', `${path}: ${(e as Error).message}`, { cause: e });
    } finally {
      bar.stop();
    }
  }
  // TTL first (a layer with a pixel map first of all), then CP, then flexact.
  const ordered: Array<{ l: TtlLayerImportance | CpLayerSignificance | FlexactLayerCurves | AdtnLayerSignificance; pic: { png: Buffer; layout: Picture } }> = [
    ...[...ttl].sort((x, y) => Number(!!y.pixelMap) - Number(!!x.pixelMap)).map((l) => ({ l, pic: pictureOfTtl(l) })),
    ...cp.map((l) => ({ l, pic: pictureOfCp(l) })),
    ...fx.map((l) => ({ l, pic: pictureOfFlexact(l) })),
    ...ad.map((l) => ({ l, pic: pictureOfAdtn(l) })),
  ];
  const layers: ExplainedLayer[] = ordered.map(({ l, pic }, i) => ({
    ...l, file: i === 0 ? a.output : layerFileName(a.output, l.layer), picture: pic.layout,
  }));
  const used = new Set<string>();
  for (const l of layers) {
    if (used.has(l.file)) throw new CliError('BAD_ARGUMENT', `two pictures would be written to ${l.file}; choose another -o name`);
    used.add(l.file);
  }
  for (let i = 0; i < layers.length; i++) {
    try {
      await writeFileAtomic(layers[i]!.file, ordered[i]!.pic.png);
    } catch (e) {
      throw new CliError('BAD_ARGUMENT', `cannot write ${layers[i]!.file}: ${(e as Error).message}`, { cause: e });
    }
  }
  const out: ExplainResult = {
    model: path, data: ds.name, samples: ds.count,
    kind: [nTtl > 0 ? 'ttl' : '', nCp > 0 ? 'cp' : '', nFx > 0 ? 'flexact' : '', nAd > 0 ? 'adtn' : ''].filter(Boolean).join('+'),
    output: a.output, files: layers.map((l) => l.file), layers,
  };
  if (a.json) {
    process.stdout.write(`${JSON.stringify(out)}\n`);
    return out;
  }
  for (const l of layers) {
    if (l.kind === 'ttl') {
      const t = l as TtlLayerImportance;
      const where = t.pixelMap ? (() => { const j = argmax(t.pixelMap!.values); return `; most important pixel (row ${Math.floor(j / 28)}, col ${j % 28})`; })() : '';
      const inModes = t.modes.filter((m) => m.side === 'in').map((m) => `${m.role} top index ${argmax(m.importance)}`).join(', ');
      process.stdout.write(`${t.layer} (ttl_dense, in modes [${t.inModes}]): ${inModes}${where} -> ${l.file}\n`);
    } else if (l.kind === 'adtn') {
      const d = l as AdtnLayerSignificance;
      const top = [...d.gates].sort((x, y) => y.significance - x.significance).slice(0, 3).map((g) => `layer ${g.layer} index ${g.index} (${g.significance.toFixed(3)})`).join(', ');
      process.stdout.write(`${d.layer} (${d.op}, Q ${d.q}, depth ${d.depth}): most significant gates ${top} -> ${l.file}\n`);
    } else if (l.kind === 'flexact') {
      const f = l as FlexactLayerCurves;
      process.stdout.write(`${f.layer} (flexact, ${f.branches} branches of degree ${f.degree}): branches by weight ${f.curves.slice(0, 5).map((c) => c.branch).join(', ')}${f.branches > 5 ? ', ...' : ''} -> ${l.file}\n`);
    } else {
      const c = l as CpLayerSignificance;
      const total = c.termSignificance.reduce((s, v) => s + v, 0);
      const top = c.termOrder.slice(0, 3).map((r) => `${r} (${(100 * c.termSignificance[r]! / (total || 1)).toFixed(1)}%)`).join(', ');
      process.stdout.write(`${c.layer} (${CP_KIND}, rank ${c.rank}): top terms ${top}; top output map ${argmax(c.outputMaps)}, top input map ${argmax(c.inputMaps)} -> ${l.file}\n`);
    }
  }
  log(`explain: ${layers.length} picture(s) from ${ds.count} ${ds.name} images`);
  return out;
}
