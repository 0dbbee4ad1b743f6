// Where the shared reference models (PyTorch-exported ONNX files with their .acc accuracies) are:
// $FACTORLITE_FIXTURES, else shared/fixtures beside the checkout (../shared/fixtures), else beside
// the folder that holds the checkout (../../shared/fixtures, e.g. for git worktrees). The one
// lookup for benchmarks and tests; when none exists, the first candidate is named in errors.
import { existsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

/** The candidates in order of preference. */
export function fixtureDirs(): string[] {
  const env = process.env['FACTORLITE_FIXTURES'];
  return [...(env ? [resolve(env)] : []), resolve(ROOT, '../shared/fixtures'), resolve(ROOT, '../../shared/fixtures')];
}

/** The fixtures folder: the first candidate that exists, else the first candidate. */
export const FIXTURES: string = fixtureDirs().find((d) => existsSync(d)) ?? fixtureDirs()[0]!;
