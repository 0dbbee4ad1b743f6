// The models users bring (scripts/user_models.py), exported by PyTorch the tutorials' way (default
// opset, fixed batch) and at one rotated variant each, built once per checkout under
// tmp/cache/user-models (never committed). Tests that use them skip with a reason when
// /usr/bin/python3 cannot import torch, and fail instead under FACTORLITE_CI=1.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Test } from 'tap';
import { readNpy } from '../../cli/npy.js';
import type { Tensor } from '../../runtime/ir.js';
import { PYTHON, REPO_ROOT, missing } from './require.js';

export const USER_MODELS = ['viewnet', 'sameconv', 'mbv2', 'mlpbn', 'mlpln', 'acts', 'pools', 'adaptive', 'sensor1d', 'audio1d', 'kwscnn',
  'decoder', 'bilinear', 'resnet', 'se', 'inputnorm', 'linear3d', 'tokenmix', 'autoenc', 'regress',
  'superres', 'aligncorners', 'permute1d', 'groupnorm', 'chunkgate', 'softmax2d', 'gru', 'lstm'] as const;
export type UserModel = (typeof USER_MODELS)[number];

const CACHE = resolve(REPO_ROOT, 'tmp/cache/user-models');
const SCRIPT = resolve(REPO_ROOT, 'scripts/user_models.py');

export interface UserModelMeta { shape: number[]; kind: 'classes' | 'values'; expect: 'ok' | 'refused'; defaultOpset: number; variants: string[] }
export interface UserExport { meta: UserModelMeta; x: Tensor; bytes(variant: string): Uint8Array }

let built: boolean | undefined;
function build(t: Test): boolean {
  if (built) return true;
  if (USER_MODELS.every((m) => existsSync(join(CACHE, `${m}.json`)))) return (built = true);
  const probe = existsSync(PYTHON) ? spawnSync(PYTHON, ['-c', 'import torch'], { encoding: 'utf8' }) : undefined;
  if (probe?.status !== 0) return missing(t, `${PYTHON} cannot import torch (Debian python3-torch)`);
  mkdirSync(CACHE, { recursive: true });
  const r = spawnSync(PYTHON, [SCRIPT, CACHE, '--variants', 'test', ...USER_MODELS], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`user_models.py failed: ${r.stderr.slice(-2000)}`);
  return (built = true);
}

/** The model's exports and its 64 seeded inputs, or undefined after a skip. */
export function userModel(t: Test, name: UserModel): UserExport | undefined {
  if (!build(t)) return undefined;
  const meta = JSON.parse(readFileSync(join(CACHE, `${name}.json`), 'utf8')) as UserModelMeta;
  const a = readNpy(readFileSync(join(CACHE, `${name}.x.npy`)), `${name}.x.npy`);
  return { meta, x: { shape: a.shape, data: a.data }, bytes: (v) => readFileSync(join(CACHE, `${name}.${v}.onnx`)) };
}
