// Runs the real command line in a child process, as a user would.
import { spawnSync } from 'node:child_process';
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
export function cliJson<T = Record<string, unknown>>(args: string[]): { result: CliResult; json: T } {
  const result = cli(args);
  if (result.status !== 0) throw new Error(`factorlite ${args.join(' ')} exited ${result.status}: ${result.stderr.trim()}`);
  const lines = result.stdout.split('\n').filter((l) => l.length > 0);
  if (lines.length !== 1) throw new Error(`factorlite ${args.join(' ')}: expected one stdout line, got ${lines.length}`);
  return { result, json: JSON.parse(lines[0]!) as T };
}

/** Runs python3 code; returns stdout, throws with stderr on failure. */
export function python(code: string, args: string[] = []): string {
  const r = spawnSync(PYTHON, ['-c', code, ...args], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`python failed: ${r.stderr}`);
  return r.stdout;
}
