// MLPerf Tiny's four reference models, built by scripts/mlperf_tiny.py into a cache folder
// (they are too large to keep in the repo: about 2.3 MB of ONNX). The folder is keyed by the
// script's hash, so an edited script rebuilds them; $FACTORLITE_CACHE moves the cache.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const PYTHON = '/usr/bin/python3';

export const MLPERF_MODELS = ['ic', 'kws', 'vww', 'ad'] as const;
export type MlperfModel = (typeof MLPERF_MODELS)[number];

/**
 * Builds (once) and returns the folder with {ic,kws,vww,ad}.onnx, *_x.npy, *_ref.npy, ic_y.npy.
 * `epochs` > 0 trains IC on Fashion-MNIST (minutes); 0 keeps its initialisation (seconds).
 * `finetuneLimit`: training images written to ic_data/ for fine-tuning (with `epochs` > 0).
 */
export function mlperfTinyModels(opts: { epochs?: number; trainLimit?: number; testLimit?: number; samples?: number; finetuneLimit?: number; log?: boolean } = {}): string {
  const script = resolve(REPO_ROOT, 'scripts/mlperf_tiny.py');
  // ic_data/ (the fine-tuning set): 256 images for an untrained IC, else finetuneLimit (the script's default: 10,000)
  const ft = opts.epochs ? (opts.finetuneLimit !== undefined ? ['--finetune-limit', String(opts.finetuneLimit)] : []) : ['--finetune-limit', '256'];
  const args = ['--epochs', String(opts.epochs ?? 0), '--train-limit', String(opts.trainLimit ?? 60000), '--test-limit', String(opts.testLimit ?? 64), '--samples', String(opts.samples ?? 8), ...ft];
  const key = createHash('sha256').update(readFileSync(script)).update(args.join(' ')).digest('hex').slice(0, 16);
  const root = process.env['FACTORLITE_CACHE'] ?? join(tmpdir(), 'factorlite-cache');
  const dir = join(root, `mlperf-tiny-${key}`);
  if (existsSync(join(dir, 'summary.json'))) return dir;
  mkdirSync(root, { recursive: true });
  // Built beside the final folder and renamed, so that a half-built folder is never used.
  const tmp = `${dir}.${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  const r = spawnSync(PYTHON, [script, tmp, ...args], { encoding: 'utf8', timeout: 3_600_000, stdio: ['ignore', opts.log ? 'inherit' : 'pipe', 'pipe'] });
  if (r.status !== 0) throw new Error(`scripts/mlperf_tiny.py failed: ${r.stderr.slice(-2000)}`);
  if (!existsSync(join(dir, 'summary.json'))) renameSync(tmp, dir);
  else rmSync(tmp, { recursive: true, force: true });
  return dir;
}
