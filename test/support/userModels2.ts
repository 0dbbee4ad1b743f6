// The second round of models users bring (scripts/user_models2.py: torchvision classifiers, a
// tiny ViT, MultiheadAttention, a TCN, a U-Net, export options, two inputs / two outputs, BatchNorm
// exported in training mode), the tutorials' export and one rotated variant each, built once per
// checkout under tmp/cache/user-models2 (never committed). Skips with a reason when
// /usr/bin/python3 cannot import torch and torchvision, and fails instead under FACTORLITE_CI=1.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Test } from 'tap';
import { readNpy } from '../../cli/npy.js';
import type { Tensor } from '../../runtime/ir.js';
import { PYTHON, REPO_ROOT, missing } from './require.js';

/** The models the acceptance test runs (the sweep runs every model of the script). */
export const USER_MODELS2 = ['tcn', 'vit_tiny', 'mha_block', 'unet', 'nofold',
  'initinputs', 'twoinputs', 'twooutputs', 'bntrain'] as const;
export type UserModel2 = (typeof USER_MODELS2)[number];

const CACHE = resolve(REPO_ROOT, 'tmp/cache/user-models2');
const SCRIPT = resolve(REPO_ROOT, 'scripts/user_models2.py');

export interface UserModel2Meta { shape: number[]; inputs: number[][]; outputs: number; kind: 'classes' | 'values'; expect: 'ok' | 'refused'; defaultOpset: number; variants: string[] }
export interface UserExport2 { meta: UserModel2Meta; xs: Tensor[]; bytes(variant: string): Uint8Array }

let built: boolean | undefined;
function build(t: Test): boolean {
  if (built) return true;
  if (USER_MODELS2.every((m) => existsSync(join(CACHE, `${m}.json`)))) return (built = true);
  const probe = existsSync(PYTHON) ? spawnSync(PYTHON, ['-c', 'import torch, torchvision'], { encoding: 'utf8' }) : undefined;
  if (probe?.status !== 0) return missing(t, `${PYTHON} cannot import torch and torchvision (Debian python3-torch, python3-torchvision)`);
  mkdirSync(CACHE, { recursive: true });
  const r = spawnSync(PYTHON, [SCRIPT, CACHE, '--variants', 'test', ...USER_MODELS2], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`user_models2.py failed: ${r.stderr.slice(-2000)}`);
  return (built = true);
}

/** The model's exports and the 64 seeded samples of each of its inputs, or undefined after a skip. */
export function userModel2(t: Test, name: UserModel2): UserExport2 | undefined {
  if (!build(t)) return undefined;
  const meta = JSON.parse(readFileSync(join(CACHE, `${name}.json`), 'utf8')) as UserModel2Meta;
  const xs = meta.inputs.map((_, k) => {
    const f = `${name}.x${k ? k : ''}.npy`;
    const a = readNpy(readFileSync(join(CACHE, f)), f);
    return { shape: a.shape, data: a.data };
  });
  return { meta, xs, bytes: (v) => readFileSync(join(CACHE, `${name}.${v}.onnx`)) };
}
