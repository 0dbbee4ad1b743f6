// Sweeps past one machine on BullMQ over Redis. The sweep command is the producer: it puts the
// source model in Redis once (by sha256), adds one job per unfinished point with the point's key
// as the job id (so a point is queued once, however often the sweep is restarted), and collects
// each job's return value (row + .flm) into the sweep folder. `factorlite worker` on any machine
// takes jobs and runs each in a pool process, so that its event loop keeps renewing the job's
// lock; when a worker dies, BullMQ's stalled-job check gives the job to another worker.
import { mkdirSync, existsSync, writeFileSync, renameSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import type { ConnectionOptions, Job } from 'bullmq';
import type { RedisOptions } from 'ioredis';
import { requireOptional } from '../runtime/optionalPackage.js';
import { sha256, SweepError, type SweepJob } from './grid.js';
import { PointPool } from './pool.js';
import type { SweepRow } from './point.js';
import type { SweepStore } from './store.js';
import type { RunReport } from './local.js';

export const QUEUE_NAME = 'factorlite-sweep';

// BullMQ and its Redis client are optional peers: only `sweep --queue` and `worker` load them.
const PURPOSE = 'sweep --queue and worker';
const bullmq = () => requireOptional<typeof import('bullmq')>('bullmq', PURPOSE);
const ioredis = () => requireOptional<typeof import('ioredis')>('ioredis', PURPOSE);
const BLOB_PREFIX = 'factorlite:model:';

export function parseQueueUrl(url: string): RedisOptions & ConnectionOptions {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new SweepError('QUEUE', `--queue ${url}: not a URL (expected redis://host:port[/db])`);
  }
  if (u.protocol !== 'redis:' && u.protocol !== 'rediss:') throw new SweepError('QUEUE', `--queue ${url}: expected a redis:// or rediss:// URL`);
  const db = u.pathname.length > 1 ? Number(u.pathname.slice(1)) : 0;
  if (!Number.isInteger(db) || db < 0) throw new SweepError('QUEUE', `--queue ${url}: database ${u.pathname.slice(1)} is not a number`);
  return {
    host: u.hostname || '127.0.0.1',
    port: u.port ? Number(u.port) : 6379,
    db,
    ...(u.username ? { username: decodeURIComponent(u.username) } : {}),
    ...(u.password ? { password: decodeURIComponent(u.password) } : {}),
    ...(u.protocol === 'rediss:' ? { tls: {} } : {}),
    // BullMQ's blocking calls need this; reconnects are retried for ever (a Redis restart is survivable).
    maxRetriesPerRequest: null,
    retryStrategy: (times: number) => Math.min(200 * times, 2000),
  };
}

// A finished point's .flm waits in Redis under its sha256 until the producer has stored it, then
// the producer deletes it; the expiry only clears what a producer that never came back left.
const ARTEFACT_PREFIX = 'factorlite:artefact:';
const ARTEFACT_TTL_S = 7 * 24 * 3600;
// Job records (the row, a few kB, no .flm) are kept a week: they are the queue's account of who
// ran what; a later sweep with the row stored locally does not need them.
const KEEP = { age: 7 * 24 * 3600 };

/** What a job returns: the row and which worker process computed it (the .flm is under ARTEFACT_PREFIX + sha). */
export interface JobReturn { row: SweepRow; worker: { host: string; pid: number } }

export function artefactKey(sha: string): string {
  return `${ARTEFACT_PREFIX}${sha}`;
}

export interface QueueOptions {
  /** Tries per point before it is reported failed (BullMQ attempts). */
  attempts?: number;
  /** First retry delay; doubles each try. */
  backoffMs?: number;
  log?: (line: string) => void;
  finished?: (row: SweepRow) => void;
  failed?: (key: string, error: string) => void;
  stopped?: () => boolean;
}

export async function runOnQueue(url: string, jobs: SweepJob[], modelBytes: Uint8Array, store: SweepStore, o: QueueOptions = {}): Promise<RunReport> {
  const connection = parseQueueUrl(url);
  const log = o.log ?? (() => {});
  const { Queue, QueueEvents } = bullmq();
  const redis = new (ioredis().Redis)(connection);
  const queue = new Queue(QUEUE_NAME, { connection });
  const events = new QueueEvents(QUEUE_NAME, { connection });
  const report: RunReport = { done: 0, failed: [], interrupted: false };
  const pending = new Set(jobs.filter((j) => !store.has(j.key)).map((j) => j.key));
  try {
    const sha = sha256(modelBytes);
    await redis.set(`${BLOB_PREFIX}${sha}`, Buffer.from(modelBytes), 'NX');
    const label = new Map(jobs.map((j) => [j.key, `${j.point.method}${j.point.ratio !== null ? ` ${j.point.ratio}x` : ''} ${j.point.quant}`]));
    events.on('active', ({ jobId }) => log(`queue: ${jobId} (${label.get(jobId) ?? '?'}) started`));
    events.on('stalled', ({ jobId }) => log(`queue: ${jobId} stalled (its worker stopped renewing the lock); back in the queue`));
    events.on('failed', ({ jobId, failedReason }) => log(`queue: ${jobId} try failed: ${failedReason}`));
    events.on('error', () => undefined);
    queue.on('error', () => undefined);
    redis.on('error', () => undefined);
    const opts = (key: string) => ({
      jobId: key, attempts: o.attempts ?? 3, backoff: { type: 'exponential', delay: o.backoffMs ?? 2000 }, removeOnComplete: KEEP, removeOnFail: KEEP,
    });
    const byKey = new Map(jobs.map((j) => [j.key, j]));
    // A job id is queued once: a point that failed in an earlier sweep, or whose finished .flm is
    // no longer in Redis, would only be found again as it was. Take those out and queue them anew.
    let requeued = 0;
    for (const key of pending) {
      const old = await queue.getJob(key);
      if (!old) continue;
      const state = await old.getState();
      const lost = state === 'completed' && !(await redis.exists(artefactKey((old.returnvalue as JobReturn | null)?.row?.result?.artefact ?? '')));
      if (state === 'failed' || lost) {
        await old.remove();
        requeued++;
      }
    }
    await queue.addBulk([...pending].map((key) => ({ name: 'point', data: byKey.get(key)!, opts: opts(key) })));
    log(`queue: ${pending.size} point(s) on ${url} (${jobs.length - pending.size} already in ${store.dir}${requeued ? `, ${requeued} failed or lost before and queued again` : ''})`);
    // Poll the jobs' states: robust across Redis restarts, when events may be missed.
    while (pending.size > 0) {
      if (o.stopped?.()) {
        report.interrupted = true;
        break;
      }
      for (const key of [...pending]) {
        let job: Job | undefined;
        try {
          job = await queue.getJob(key);
        } catch {
          break; // Redis is away; try again on the next round.
        }
        if (!job) {
          // Gone (e.g. Redis restarted without persistence): queue it again.
          await queue.add('point', byKey.get(key)!, opts(key)).catch(() => undefined);
          continue;
        }
        if (job.finishedOn && job.returnvalue && typeof job.returnvalue === 'object') {
          const rv = job.returnvalue as JobReturn;
          const ak = artefactKey(rv.row.result.artefact);
          let flm: Buffer | null;
          try {
            flm = await redis.getBuffer(ak);
          } catch {
            break;
          }
          if (!flm) {
            // Finished, but its .flm is gone (taken by another sweep, or expired): compute it again.
            log(`queue: ${key} finished but its .flm is no longer in Redis; queued again`);
            await job.remove().catch(() => undefined);
            await queue.add('point', byKey.get(key)!, opts(key)).catch(() => undefined);
            continue;
          }
          await store.put(rv.row, new Uint8Array(flm));
          // Stored here: Redis no longer needs the bytes.
          await redis.del(ak).catch(() => undefined);
          pending.delete(key);
          report.done++;
          o.finished?.(rv.row);
        } else if (job.finishedOn && job.failedReason && (await job.isFailed().catch(() => false))) {
          pending.delete(key);
          report.failed.push({ key, error: job.failedReason });
          o.failed?.(key, job.failedReason);
        }
      }
      if (pending.size > 0) await new Promise((r) => setTimeout(r, 300));
    }
  } finally {
    await events.close().catch(() => undefined);
    await queue.close().catch(() => undefined);
    redis.disconnect();
  }
  return report;
}

export interface WorkerOptions {
  /** Points at once on this machine (pool processes). */
  concurrency?: number;
  /** Lock duration: a job whose worker has not renewed its lock for this long is stalled. */
  lockMs?: number;
  log?: (line: string) => void;
}

/** Takes jobs until `stop` is called; resolves when the worker has closed. */
export function startWorker(url: string, o: WorkerOptions = {}): { closed: Promise<void>; stop: () => Promise<void> } {
  const connection = parseQueueUrl(url);
  const log = o.log ?? (() => {});
  const concurrency = o.concurrency ?? 1;
  const pool = new PointPool(concurrency);
  const { Worker } = bullmq();
  const redis = new (ioredis().Redis)(connection);
  redis.on('error', () => undefined);
  const cacheDir = join(tmpdir(), 'factorlite-models');
  // Cached under its sha256, with its own file name (the converter records the source's name).
  const modelFile = async (sha: string, name: string): Promise<string> => {
    const dir = join(cacheDir, sha);
    const path = join(dir, basename(name));
    if (existsSync(path)) return path;
    const bytes = await redis.getBuffer(`${BLOB_PREFIX}${sha}`);
    if (!bytes) throw new SweepError('MODEL_MISSING', `model ${sha.slice(0, 12)} is not in Redis`);
    if (sha256(bytes) !== sha) throw new SweepError('MODEL_MISSING', `model ${sha.slice(0, 12)} in Redis does not match its sha256`);
    mkdirSync(dir, { recursive: true });
    const tmp = `${path}.${process.pid}.tmp`;
    writeFileSync(tmp, bytes);
    renameSync(tmp, path);
    return path;
  };
  const lockDuration = o.lockMs ?? 30000;
  const worker = new Worker(QUEUE_NAME, async (job: Job<SweepJob>): Promise<JobReturn> => {
    log(`worker ${process.pid}: ${job.id} try ${job.attemptsStarted ?? job.attemptsMade + 1}`);
    const path = await modelFile(job.data.model.sha256, job.data.model.name);
    const { row, flm } = await pool.run(job.data, path);
    row.attempts = job.attemptsStarted ?? job.attemptsMade + 1;
    await redis.set(artefactKey(row.result.artefact), Buffer.from(flm), 'EX', ARTEFACT_TTL_S);
    return { row, worker: { host: hostname(), pid: process.pid } };
  }, { connection, concurrency, lockDuration, stalledInterval: Math.max(1000, Math.floor(lockDuration / 2)), maxStalledCount: 2 });
  worker.on('completed', (job) => log(`worker ${process.pid}: completed ${job.id}`));
  worker.on('failed', (job, err) => log(`worker ${process.pid}: failed ${job?.id ?? '?'}: ${err.message}`));
  worker.on('error', (err) => log(`worker ${process.pid}: ${err.message}`));
  let resolveClosed!: () => void;
  const closed = new Promise<void>((r) => (resolveClosed = r));
  const stop = async () => {
    await worker.close();
    await pool.close();
    redis.disconnect();
    resolveClosed();
  };
  return { closed, stop };
}
