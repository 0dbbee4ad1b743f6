// Runs the real command line in a child process, as a user would.
import { spawn, spawnSync } from 'node:child_process';
import { resolve } from 'node:path';
import { PYTHON, REPO_ROOT } from './require.js';

export interface CliResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

export function cli(args: string[], opts: { timeout?: number } = {}): CliResult {
  const r = spawnSync(process.execPath, [resolve(REPO_ROOT, 'bin/factorlite.js'), ...args], {
    cwd: REPO_ROOT,
    encoding: 'utf8',
    timeout: opts.timeout ?? 180_000,
    // A clean environment for the CLI: no debug stack traces, no TTY progress.
    env: { ...process.env, FACTORLITE_DEBUG: '' },
    maxBuffer: 64 * 1024 * 1024,
  });
  if (r.error) throw r.error;
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** The one JSON object a --json command prints; throws when stdout is anything else. */
export function cliJson<T = any>(args: string[]): T {
  return jsonOf<T>(cli(args), `factorlite ${args.join(' ')}`);
}

/** Runs python3 code; returns stdout, throws with stderr on failure. */
export function python(code: string, args: string[] = []): string {
  const r = spawnSync(PYTHON, ['-c', code, ...args], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`python failed: ${r.stderr}`);
  return r.stdout;
}

/** As cli(), without blocking: lets a test run several slow conversions side by side. */
export function cliAsync(args: string[], opts: { timeout?: number } = {}): Promise<CliResult> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, [resolve(REPO_ROOT, 'bin/factorlite.js'), ...args], {
      cwd: REPO_ROOT,
      env: { ...process.env, FACTORLITE_DEBUG: '' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => { stdout += d; });
    child.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d; });
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeout ?? 300_000);
    child.on('error', (e) => { clearTimeout(timer); reject(e); });
    child.on('close', (status) => { clearTimeout(timer); resolvePromise({ status, stdout, stderr }); });
  });
}

/** Parses the single JSON object on stdout of a successful --json run; throws otherwise. */
export function jsonOf<T = any>(r: CliResult, what: string): T {
  if (r.status !== 0) throw new Error(`${what} exited ${r.status}: ${r.stderr.trim().split('\n').at(-1)}`);
  const lines = r.stdout.split('\n').filter((l) => l.length > 0);
  if (lines.length !== 1 || !r.stdout.endsWith('\n')) throw new Error(`${what}: expected exactly one stdout line, got ${JSON.stringify(r.stdout.slice(0, 200))}`);
  return JSON.parse(lines[0]!) as T;
}
