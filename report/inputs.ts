// What a report is made of, read from disk: sweep folders, .flm files, hil and explain JSONs.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import type { SweepCommon } from '../sweep/grid.js';
import type { SweepRow } from '../sweep/point.js';
import { SweepStore } from '../sweep/store.js';
import { summarize, type LayerSummary } from '../runtime/describe.js';
import { readFlm } from '../runtime/format/reader.js';
import type { HilReport } from '../hardware-in-loop/hil.js';

export class ReportError extends Error {
  constructor(readonly code: 'REPORT_INPUT' | 'REPORT_POINT', message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

export interface SweepInput { dir: string; common: SweepCommon; rows: SweepRow[] }
export interface ModelInput { path: string; fileBytes: number; layers: LayerSummary[]; metadata: Record<string, unknown> }
export interface HilInput { path: string; report: HilReport }
export interface ExplainInput { path: string; kind: string; data: string; samples: number; pictures: Array<{ layer: string; kind: string; png: string }> }

export interface ReportInputs {
  sweeps: SweepInput[];
  models: ModelInput[];
  hil: HilInput[];
  explain: ExplainInput[];
}

function readJson(path: string, what: string): any {
  try {
    return JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new ReportError('REPORT_INPUT', `${what} ${path} is not readable JSON (${(e as Error).message})`, { cause: e });
  }
}

const dataUri = (path: string) => `data:image/png;base64,${readFileSync(path).toString('base64')}`;

export function readSweep(dir: string): SweepInput {
  const store = new SweepStore(dir);
  const plan = store.readPlan();
  if (!plan) throw new ReportError('REPORT_INPUT', `${dir} is not a sweep folder (no sweep.json)`);
  return { dir, common: plan.common, rows: store.planRows(plan) };
}

export function readModelInput(path: string): ModelInput {
  const bytes = readFileSync(path);
  let model;
  try {
    model = readFlm(bytes);
  } catch (e) {
    throw new ReportError('REPORT_INPUT', `${path} is not a readable .flm (${(e as Error).message})`, { cause: e });
  }
  return { path, fileBytes: bytes.length, layers: summarize(model), metadata: model.metadata };
}

export function readHil(path: string): HilInput {
  const report = readJson(path, 'hil report') as HilReport;
  if (!report || typeof report !== 'object' || !('device' in report) || !('link' in report)) throw new ReportError('REPORT_INPUT', `${path} is not a hil --out report (no device/link)`);
  return { path, report };
}

export function readExplain(path: string): ExplainInput {
  const r = readJson(path, 'explain result');
  if (!r || !Array.isArray(r.layers)) throw new ReportError('REPORT_INPUT', `${path} is not explain --json output (no layers)`);
  const pictures = (r.layers as Array<{ layer: string; kind: string; file: string }>).map((l) => {
    const file = isAbsolute(l.file) || existsSync(l.file) ? l.file : join(dirname(path), l.file);
    if (!existsSync(file)) throw new ReportError('REPORT_INPUT', `${path}: picture ${l.file} of layer ${l.layer} not found`);
    return { layer: l.layer, kind: l.kind, png: dataUri(file) };
  });
  return { path, kind: String(r.kind), data: String(r.data), samples: Number(r.samples), pictures };
}

/** Sweep folders and .flm files from the positional arguments. */
export function readInputs(paths: string[], hil: string[] = [], explain: string[] = []): ReportInputs {
  const out: ReportInputs = { sweeps: [], models: [], hil: hil.map(readHil), explain: explain.map(readExplain) };
  for (const p of paths) {
    if (!existsSync(p)) throw new ReportError('REPORT_INPUT', `${p} does not exist`);
    if (statSync(p).isDirectory()) out.sweeps.push(readSweep(resolve(p)));
    else out.models.push(readModelInput(p));
  }
  return out;
}
