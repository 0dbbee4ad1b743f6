// A lock held as a folder (mkdir is atomic), so that processes running side by side (test files,
// hil runs) never run make on the same outputs at once. The holder writes its pid into the folder;
// a lock whose owner process is gone, or older than `staleMs`, is taken over.
import { mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const pause = new Int32Array(new SharedArrayBuffer(4));

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export interface DirLockOptions {
  /** A lock older than this is stale (ms). */
  staleMs: number;
  /** Give up after this long (ms), calling onTimeout (which throws); absent: wait until it is free. */
  waitMs?: number;
  onTimeout?: () => never;
}

/** Runs fn holding the lock folder `lock` (its parent is created). */
export function withDirLock<T>(lock: string, fn: () => T, opts: DirLockOptions): T {
  mkdirSync(join(lock, '..'), { recursive: true });
  const deadline = opts.waitMs === undefined ? Infinity : Date.now() + opts.waitMs;
  for (;;) {
    try {
      mkdirSync(lock);
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      let owner = NaN;
      let age = 0;
      try {
        age = Date.now() - statSync(lock).mtimeMs;
        owner = Number(readFileSync(join(lock, 'pid'), 'utf8'));
      } catch { /* the owner is between mkdir and writing its pid, or just left */ }
      if ((Number.isInteger(owner) && owner > 0 && !alive(owner)) || age > opts.staleMs) rmSync(lock, { recursive: true, force: true });
      else if (Date.now() > deadline) opts.onTimeout?.();
      else Atomics.wait(pause, 0, 0, 100);
    }
  }
  try {
    writeFileSync(join(lock, 'pid'), String(process.pid));
    return fn();
  } finally {
    rmSync(lock, { recursive: true, force: true });
  }
}
