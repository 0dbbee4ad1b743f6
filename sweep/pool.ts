// A pool of child processes on this machine, one point at a time each. A child that dies takes
// its point down with it (the caller sees an error); the pool starts a fresh child for the next.
import { fork, type ChildProcess } from 'node:child_process';
import { createRequire } from 'node:module';
import { dirname, extname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { ChildReply } from './child.js';
import { SweepError, type SweepJob } from './grid.js';
import type { SweepRow } from './point.js';

const here = fileURLToPath(import.meta.url);

function childArgs(): { file: string; execArgv: string[] } {
  const ext = extname(here);
  const file = join(dirname(here), `child${ext}`);
  // Running from the TypeScript sources: the child needs tsx's loader too.
  if (ext === '.ts') return { file, execArgv: ['--import', pathToFileURL(createRequire(here).resolve('tsx')).href] };
  return { file, execArgv: [] };
}

interface Slot { proc: ChildProcess; ready: Promise<void>; busy: boolean }

export class PointPool {
  private readonly slots: Slot[] = [];
  private closed = false;

  constructor(readonly size: number) {
    if (!(Number.isInteger(size) && size >= 1)) throw new SweepError('BAD_GRID', `pool size ${size}: expected a positive integer`);
  }

  private spawn(): Slot {
    const { file, execArgv } = childArgs();
    // The child's stdout goes to our stderr: stdout is kept for results.
    const proc = fork(file, [], { execArgv, stdio: ['ignore', 2, 2, 'ipc'], serialization: 'advanced' });
    const ready = new Promise<void>((resolve, reject) => {
      const onMsg = (m: unknown) => {
        if (m && typeof m === 'object' && 'ready' in m) {
          proc.off('message', onMsg);
          resolve();
        }
      };
      proc.on('message', onMsg);
      proc.once('exit', (code, sig) => reject(new SweepError('POINT_FAILED', `pool process exited before it was ready (${sig ?? code})`)));
    });
    ready.catch(() => undefined);
    return { proc, ready, busy: false };
  }

  /** Runs one point in a free child (starting one when fewer than `size` are alive). */
  async run(job: SweepJob, modelPath: string): Promise<{ row: SweepRow; flm: Uint8Array }> {
    if (this.closed) throw new SweepError('POINT_FAILED', 'the pool is closed');
    let slot = this.slots.find((s) => !s.busy && s.proc.exitCode === null && s.proc.signalCode === null);
    if (!slot) {
      if (this.slots.filter((s) => s.busy).length >= this.size) throw new SweepError('POINT_FAILED', 'all pool processes are busy');
      slot = this.spawn();
      this.slots.push(slot);
    }
    slot.busy = true;
    const s = slot;
    try {
      await s.ready;
      return await new Promise((resolve, reject) => {
        const onExit = (code: number | null, sig: string | null) => {
          s.proc.off('message', onMsg);
          reject(new SweepError('POINT_FAILED', `point ${job.key}: pool process died (${sig ?? `exit ${code}`})`));
        };
        const onMsg = (m: ChildReply) => {
          s.proc.off('exit', onExit);
          s.proc.off('message', onMsg);
          if (m.ok) resolve({ row: m.row, flm: new Uint8Array(m.flm) });
          else reject(new SweepError('POINT_FAILED', `point ${job.key}: ${m.error}${m.code ? ` [${m.code}]` : ''}`));
        };
        s.proc.on('message', onMsg);
        s.proc.once('exit', onExit);
        s.proc.send({ job, modelPath });
      });
    } finally {
      s.busy = false;
      if (s.proc.exitCode !== null || s.proc.signalCode !== null) this.slots.splice(this.slots.indexOf(s), 1);
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all(this.slots.map((s) => new Promise<void>((resolve) => {
      if (s.proc.exitCode !== null || s.proc.signalCode !== null) return resolve();
      s.proc.once('exit', () => resolve());
      s.proc.kill('SIGTERM');
    })));
    this.slots.length = 0;
  }
}
