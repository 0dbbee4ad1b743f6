// factorlite sweep: every point of a method x ratio x quantisation (x fine-tuning) grid, on a pool
// of processes here or on BullMQ workers (--queue), into a folder that a re-run resumes.
import { cpus } from 'node:os';
import { basename, resolve } from 'node:path';
import { expandGrid, parseMethods, parseQuants, parseRatios, pointKey, pointLabel, readGridFile, sha256, SweepError, type Grid, type SweepCommon, type SweepJob } from '../../sweep/grid.js';
import { runLocal, type RunReport } from '../../sweep/local.js';
import { PointPool } from '../../sweep/pool.js';
import { parseQueueUrl, runOnQueue } from '../../sweep/queue.js';
import { SweepStore } from '../../sweep/store.js';
import { checkTargetNames } from '../../sweep/targets.js';
import type { SweepRow } from '../../sweep/point.js';
import { CliError } from '../errors.js';
import { loadModel, readModelBytes } from '../modelFile.js';
import { log } from '../progress.js';
import { formatBytes, table } from '../table.js';
import { parseLimit } from './evalCmd.js';
import { integerFlag, positiveIntFlag } from '../flags.js';

export interface SweepArgs {
  out: string;
  grid?: string;
  methods?: string;
  ratios?: string;
  quant?: string;
  finetune?: string;
  epochs?: string;
  data: string;
  limit?: string;
  benchIters: string;
  workers?: string;
  queue?: string;
  attempts?: string;
  seed: string;
  target?: string;
  json?: boolean;
}

/** A flag's list that does not parse is a BAD_ARGUMENT, as every other flag (a --grid file's is BAD_GRID). */
function flag<T>(parse: () => T): T {
  try {
    return parse();
  } catch (e) {
    if (e instanceof SweepError && e.code === 'BAD_GRID') throw new CliError('BAD_ARGUMENT', e.message, { cause: e });
    throw e;
  }
}

export function gridFromArgs(a: SweepArgs): Grid {
  const file = a.grid ? readGridFile(a.grid) : {};
  const methods = a.methods ? flag(() => parseMethods(a.methods!)) : file.methods;
  if (!methods) throw new CliError('BAD_ARGUMENT', 'sweep needs --methods (or a --grid file with "methods")');
  const ratios = a.ratios ? flag(() => parseRatios(a.ratios!)) : file.ratios ?? [];
  const quants = a.quant ? flag(() => parseQuants(a.quant!)) : file.quants ?? ['f32'];
  const finetune = a.finetune ?? file.finetune ?? null;
  const epochs = a.epochs !== undefined ? positiveIntFlag('--epochs', a.epochs)! : file.epochs ?? null;
  if (epochs !== null && finetune === null) throw new CliError('BAD_ARGUMENT', '--epochs needs --finetune <data>');
  return { methods, ratios, quants, finetune, epochs };
}

export async function sweepCommand(modelPath: string, a: SweepArgs): Promise<void> {
  const grid = gridFromArgs(a);
  if (a.queue) parseQueueUrl(a.queue); // a bad URL fails before anything is written
  const targets = a.target === undefined ? [] : [...new Set(a.target.split(',').map((s) => s.trim()).filter((s) => s.length > 0))];
  if (a.target !== undefined && targets.length === 0) throw new CliError('BAD_ARGUMENT', `--target ${a.target}: empty list`);
  checkTargetNames(targets); // UNKNOWN_TARGET names the known ones
  const points = expandGrid(grid);
  const bytes = readModelBytes(modelPath);
  loadModel(modelPath); // fail here, once, on a file that is not a model
  const common: SweepCommon = {
    model: { name: basename(modelPath), sha256: sha256(bytes) },
    data: a.data, limit: parseLimit(a.limit) ?? null,
    benchIters: positiveIntFlag('--bench-iters', a.benchIters)!, seed: integerFlag('--seed', a.seed, -Infinity, 'an integer')!,
    ...(targets.length ? { targets } : {}),
  };
  const jobs: SweepJob[] = points.map((point) => ({ ...common, key: pointKey(common, point), point }));
  const store = new SweepStore(a.out);
  store.open();
  const plan = { common, points: jobs.map((j) => ({ key: j.key, point: j.point })) };
  await store.writePlan(plan);
  const already = jobs.filter((j) => store.has(j.key)).length;
  const t0 = performance.now();
  let stop = false;
  const onSignal = () => {
    if (stop) process.exit(130);
    stop = true;
    log('sweep: stopping after the points in progress (finished points are kept; run the same command to resume)');
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  let finished = already;
  const label = new Map(jobs.map((j) => [j.key, pointLabel(j.point)]));
  const on = {
    finished: (row: SweepRow) => {
      finished++;
      log(`sweep: ${finished}/${jobs.length} ${label.get(row.key)}: accuracy ${(100 * row.result.accuracy).toFixed(2)}%, ${formatBytes(row.result.fileBytes)} (${row.result.bytesRatio.toFixed(1)}x)`);
      void store.writeResults(plan);
    },
    failed: (key: string, error: string) => log(`sweep: ${label.get(key)} failed: ${error}`),
    stopped: () => stop,
  };
  log(`sweep: ${jobs.length} point(s), ${already} already done in ${a.out}`);
  let report: RunReport;
  try {
    if (a.queue) {
      report = await runOnQueue(a.queue, jobs, bytes, store, {
        ...(a.attempts ? { attempts: positiveIntFlag('--attempts', a.attempts)! } : {}), log, ...on,
      });
    } else {
      const workers = a.workers ? positiveIntFlag('--workers', a.workers)! : Math.max(1, cpus().length);
      const pool = new PointPool(Math.min(workers, Math.max(1, jobs.length - already)));
      try {
        report = await runLocal(jobs, resolve(modelPath), store, pool, on);
      } finally {
        await pool.close();
      }
    }
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  const rows = await store.writeResults(plan);
  const seconds = (performance.now() - t0) / 1000;
  const out = {
    out: a.out, model: common.model, points: jobs.length, finished: rows.length, computed: report.done, reused: already,
    failed: report.failed, interrupted: report.interrupted, seconds, engine: a.queue ? 'bullmq' : 'pool',
    rows,
  };
  if (a.json) process.stdout.write(`${JSON.stringify(out)}\n`);
  else {
    const onTarget = (r: SweepRow, t: string) => {
      const f = r.fits?.[t];
      if (!f) return '-';
      return `${f.fits ? 'fits' : 'NO'}${f.latencyMs !== null ? `, ${f.latencyMs.toFixed(3)} ms` : ''}`;
    };
    process.stdout.write(`${table(
      ['point', 'accuracy', 'params', 'ratio', 'file', 'bytes ratio', 'latency b1', ...targets],
      rows.map((r) => [label.get(r.key) ?? r.key, `${(100 * r.result.accuracy).toFixed(2)}%`, r.result.params, r.result.paramsRatio.toFixed(1),
        formatBytes(r.result.fileBytes), r.result.bytesRatio.toFixed(1), `${r.timing.latencyMs.toFixed(3)} ms`, ...targets.map((t) => onTarget(r, t))]),
    )}\n\n${rows.length}/${jobs.length} points in ${a.out} (${report.done} computed now, ${already} reused) in ${seconds.toFixed(1)} s\n`);
  }
  if (report.failed.length > 0) throw new SweepError('POINT_FAILED', `${report.failed.length} point(s) failed, first: ${report.failed[0]!.error}`);
  if (report.interrupted) throw new SweepError('POINT_FAILED', `interrupted with ${jobs.length - rows.length} point(s) left; run the same command to resume`);
}
