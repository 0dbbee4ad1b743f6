// The design space of a sweep: method x ratio x quantisation x fine-tuning, expanded into points.
// Each point has a key, the hash of everything that decides its result, so that a finished point
// is found again (resume) whichever machine computed it.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { METHODS, type Method } from '../converter/compress.js';
import { QUANTS, type QuantChoice } from '../converter/quantize.js';

export class SweepError extends Error {
  constructor(
    readonly code: 'BAD_GRID' | 'BAD_DIR' | 'POINT_FAILED' | 'QUEUE' | 'MODEL_MISSING',
    message: string, options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** One point of the grid: how to compress, quantise and (optionally) fine-tune. */
export interface PointSettings {
  method: Method;
  /** Whole-model parameter ratio; null for method none. */
  ratio: number | null;
  quant: QuantChoice;
  /** Data set to fine-tune on by distillation, or null. */
  finetune: string | null;
  epochs: number | null;
}

/** What every point of one sweep shares. */
export interface SweepCommon {
  /** The source model, by content: name for people, sha256 to find the bytes. */
  model: { name: string; sha256: string };
  /** Test set for the accuracy, and its first N samples (null: all). */
  data: string;
  limit: number | null;
  /** Timed batch-1 runs per point for the latency. */
  benchIters: number;
  seed: number;
  /** --target profiles each point is checked against (not part of the key: the check reads only the artefact). */
  targets?: string[];
}

export interface SweepJob extends SweepCommon {
  key: string;
  point: PointSettings;
}

export interface Grid {
  methods: Method[];
  ratios: number[];
  quants: QuantChoice[];
  finetune: string | null;
  epochs: number | null;
}

// Bumped when a point's computation changes, so that old rows are not mistaken for new ones.
const POINT_VERSION = 1;

export function pointKey(common: SweepCommon, point: PointSettings): string {
  const canon = JSON.stringify({
    v: POINT_VERSION, model: common.model.sha256, data: common.data, limit: common.limit, seed: common.seed,
    method: point.method, ratio: point.ratio, quant: point.quant, finetune: point.finetune, epochs: point.epochs,
  });
  return createHash('sha256').update(canon).digest('hex').slice(0, 20);
}

export function pointLabel(p: PointSettings): string {
  const ft = p.finetune ? ` ft ${p.finetune}${p.epochs ? `x${p.epochs}` : ''}` : '';
  return `${p.method}${p.ratio !== null ? ` ${p.ratio}x` : ''} ${p.quant}${ft}`;
}

function list(flag: string, v: string): string[] {
  const items = v.split(',').map((s) => s.trim()).filter((s) => s.length > 0);
  if (items.length === 0) throw new SweepError('BAD_GRID', `${flag} ${v}: empty list`);
  return items;
}

export function parseMethods(v: string): Method[] {
  return list('--methods', v).map((m) => {
    if (!(METHODS as readonly string[]).includes(m)) throw new SweepError('BAD_GRID', `--methods: ${m} is not one of ${METHODS.join(', ')}`);
    return m as Method;
  });
}

export function parseRatios(v: string): number[] {
  return list('--ratios', v).map((r) => {
    const n = Number(r);
    if (!Number.isFinite(n) || n <= 1) throw new SweepError('BAD_GRID', `--ratios: ${r} is not a number above 1`);
    return n;
  });
}

export function parseQuants(v: string): QuantChoice[] {
  return list('--quant', v).map((q) => {
    if (!(QUANTS as readonly string[]).includes(q)) throw new SweepError('BAD_GRID', `--quant: ${q} is not one of ${QUANTS.join(', ')}`);
    return q as QuantChoice;
  });
}

/** A grid file: {"methods": [...], "ratios": [...], "quant": [...], "finetune": "fashion-mnist", "epochs": 1}. */
export function readGridFile(path: string): Partial<Grid> {
  let v: unknown;
  try {
    v = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new SweepError('BAD_GRID', `grid file ${path} is not readable JSON (${(e as Error).message})`);
  }
  if (!v || typeof v !== 'object' || Array.isArray(v)) throw new SweepError('BAD_GRID', `grid file ${path}: expected a JSON object`);
  const o = v as Record<string, unknown>;
  const known = new Set(['methods', 'ratios', 'quant', 'finetune', 'epochs']);
  for (const k of Object.keys(o)) if (!known.has(k)) throw new SweepError('BAD_GRID', `grid file ${path}: unknown key ${k} (allowed: ${[...known].join(', ')})`);
  const asList = (k: string): string | undefined => {
    const x = o[k];
    if (x === undefined) return undefined;
    if (!Array.isArray(x)) throw new SweepError('BAD_GRID', `grid file ${path}: ${k} must be an array`);
    return x.map(String).join(',');
  };
  const g: Partial<Grid> = {};
  const m = asList('methods');
  if (m !== undefined) g.methods = parseMethods(m);
  const r = asList('ratios');
  if (r !== undefined) g.ratios = parseRatios(r);
  const q = asList('quant');
  if (q !== undefined) g.quants = parseQuants(q);
  if (o['finetune'] !== undefined) {
    if (typeof o['finetune'] !== 'string') throw new SweepError('BAD_GRID', `grid file ${path}: finetune must be a data set name`);
    g.finetune = o['finetune'];
  }
  if (o['epochs'] !== undefined) {
    const e = Number(o['epochs']);
    if (!Number.isInteger(e) || e < 1) throw new SweepError('BAD_GRID', `grid file ${path}: epochs must be a positive integer`);
    g.epochs = e;
  }
  return g;
}

/** All points, in a stable order; method none takes no ratio and appears once per quantisation. */
export function expandGrid(g: Grid): PointSettings[] {
  if (g.methods.some((m) => m !== 'none') && g.ratios.length === 0) throw new SweepError('BAD_GRID', 'a factorising method needs --ratios');
  const out: PointSettings[] = [];
  const seen = new Set<string>();
  for (const method of g.methods) {
    for (const ratio of method === 'none' ? [null] : g.ratios) {
      for (const quant of g.quants) {
        const p: PointSettings = { method, ratio, quant, finetune: method === 'none' ? null : g.finetune, epochs: method === 'none' || !g.finetune ? null : g.epochs };
        const id = JSON.stringify(p);
        if (seen.has(id)) continue;
        seen.add(id);
        out.push(p);
      }
    }
  }
  if (out.length === 0) throw new SweepError('BAD_GRID', 'the grid has no points');
  return out;
}

export function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}
