// One point of a sweep: convert (compress + optional fine-tune + quantise), evaluate, time it.
// The same library calls as `convert`, `eval`, `inspect` and a batch-1 `bench`, in one process.
// A row splits into `result` (a function of the job: the same on any machine, any run) and
// `timing` (measured, so it varies).
import { hostname } from 'node:os';
import { compressModel } from '../converter/compress.js';
import { limitDataset, loadDataset } from '../converter/data/datasets.js';
import { evaluate } from '../converter/evaluate.js';
import { quantizeModel } from '../converter/quantize.js';
import { writeFlm } from '../converter/writer.js';
import { loadModel } from '../cli/modelFile.js';
import { finetuneAfterConvert } from '../converter/train/finetuneOnData.js';
import { log as logStderr, progress } from '../cli/progress.js';
import { VERSION } from '../cli/version.js';
import { summarize } from '../runtime/describe.js';
import { readFlm } from '../runtime/format/reader.js';
import { Session } from '../runtime/session.js';
import { sha256, type PointSettings, type SweepJob } from './grid.js';
import { fitsOf, type PointFit } from './targets.js';

export interface PointLayer {
  name: string;
  /** Layer kind in the file (dense, tucker2_conv2d, tt_dense, ...). */
  op: string;
  ranks: number[];
  params: number;
  bytes: number;
  dtypes: string[];
  /** Relative Frobenius error of the rebuilt weight (0 for layers kept dense). */
  relError: number;
}

export interface PointResult {
  sourceParams: number;
  params: number;
  paramsRatio: number;
  /** Bytes of the .flm file, and the dense f32 source's parameter bytes over it. */
  fileBytes: number;
  bytesRatio: number;
  accuracy: number;
  correct: number;
  samples: number;
  /** sha256 of the .flm: the artefact's name in <out>/artefacts/. */
  artefact: string;
  layers: PointLayer[];
  finetune: { accuracyBefore: number | null; accuracy: number | null } | null;
}

export interface PointTiming {
  convertSeconds: number;
  finetuneSeconds: number;
  evalSeconds: number;
  /** Batch-1 latency in this runtime, median and 90th percentile over benchIters calls. */
  latencyMs: number;
  latencyP90Ms: number;
  /** Batch-1 time of each node of the graph in run order (median of the timed runs), from Session.layerTimes. */
  layers?: Array<{ name: string; op: string; ms: number }>;
  /** CPU time (user + system, all threads) this process spent on the point, in seconds. */
  cpuSeconds: number;
  host: string;
  pid: number;
}

export interface SweepRow {
  key: string;
  model: SweepJob['model'];
  point: PointSettings;
  data: string;
  limit: number | null;
  result: PointResult;
  timing: PointTiming;
  /** How many times the engine started this point (1 unless a worker died or a try failed). */
  attempts: number;
  converterVersion: string;
  /** Fit and predicted latency on each --target profile (absent without --target). */
  fits?: Record<string, PointFit>;
}

function median(sorted: number[], q: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

export function runPoint(job: SweepJob, modelPath: string, log: (line: string) => void = () => {}): { row: SweepRow; flm: Uint8Array } {
  const cpu0 = process.cpuUsage();
  const { model: source } = loadModel(modelPath);
  const p = job.point;
  const t0 = performance.now();
  const { model: compressed, report } = compressModel(source, {
    method: p.method,
    ...(p.ratio !== null ? { ratio: p.ratio } : {}),
    seed: job.seed,
  });
  const t1 = performance.now();
  let tuned = compressed;
  let finetune: PointResult['finetune'] = null;
  if (p.finetune !== null) {
    const r = finetuneAfterConvert(compressed, source, p.finetune, p.epochs !== null ? { epochs: p.epochs } : {}, { log: logStderr, progress: (title, total) => progress(title, total) });
    tuned = r.model;
    finetune = { accuracyBefore: r.summary.accuracyBefore, accuracy: r.summary.accuracy };
  }
  const t2 = performance.now();
  const final = quantizeModel(tuned, p.quant);
  final.metadata['convert.converter_version'] = VERSION;
  const flm = writeFlm(final);
  // Evaluate what was written, as a user of the file would.
  const written = readFlm(flm);
  const session = Session.create(written);
  const ds = limitDataset(loadDataset(job.data, 'test'), job.limit ?? undefined);
  const ev = evaluate(session, ds, { batch: 100 });
  const t3 = performance.now();
  const per = ds.shape.reduce((a, b) => a * b, 1);
  const x = { shape: [1, ...ds.shape], data: ds.images.subarray(0, per) };
  for (let i = 0; i < 5; i++) session.runBatch(x);
  const times: number[] = [];
  for (let i = 0; i < job.benchIters; i++) {
    const s = performance.now();
    session.runBatch(x);
    times.push(performance.now() - s);
  }
  times.sort((a, b) => a - b);
  const layerMs = session.layerTimes({ [session.inputNames[0]!]: x }, Math.max(5, Math.min(job.benchIters, 20)))
    .map((l) => ({ name: l.name, op: l.op, ms: l.ms }));
  const relError = new Map(report.layers.map((l) => [l.name, l.relError]));
  const layers: PointLayer[] = summarize(written).map((l) => ({
    name: l.name, op: l.op, ranks: l.ranks, params: l.params, bytes: l.bytes,
    dtypes: [...new Set(l.tensors.map((t) => t.dtype))], relError: relError.get(l.name) ?? 0,
  }));
  const params = layers.reduce((s, l) => s + l.params, 0);
  const result: PointResult = {
    sourceParams: report.sourceParams, params, paramsRatio: report.sourceParams / params,
    fileBytes: flm.length, bytesRatio: (report.sourceParams * 4) / flm.length,
    accuracy: ev.accuracy, correct: ev.correct, samples: ev.samples,
    artefact: sha256(flm), layers, finetune,
  };
  const cpu = process.cpuUsage(cpu0);
  log(`point ${job.key}: accuracy ${(100 * ev.accuracy).toFixed(2)}%, ${result.paramsRatio.toFixed(1)}x fewer parameters`);
  return {
    flm,
    row: {
      key: job.key, model: job.model, point: p, data: job.data, limit: job.limit, result,
      timing: {
        convertSeconds: (t1 - t0) / 1000, finetuneSeconds: (t2 - t1) / 1000, evalSeconds: ev.seconds,
        latencyMs: median(times, 0.5), latencyP90Ms: median(times, 0.9),
        layers: layerMs, cpuSeconds: (cpu.user + cpu.system) / 1e6, host: hostname(), pid: process.pid,
      },
      attempts: 1,
      converterVersion: VERSION,
      ...(job.targets?.length ? { fits: fitsOf(written, flm.length, job.targets) } : {}),
    },
  };
}
