// The PyTorch-exported models of test/support/torch_models.py, built once per opset and cached
// under tmp/cache/torch-ops (never committed). Tests that use them skip with a reason when
// /usr/bin/python3 cannot import torch, and fail instead under FACTORLITE_CI=1.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Test } from 'tap';
import { missing, PYTHON, REPO_ROOT } from './require.js';

export const TORCH_MODELS = ['conv1d', 'unet', 'avgpad', 'resnet', 'dsnet', 'norm'] as const;
export type TorchModel = (typeof TORCH_MODELS)[number];
export const TORCH_OPSETS = [11, 13, 17] as const;
const CACHE = resolve(REPO_ROOT, 'tmp/cache/torch-ops');
const SCRIPT = resolve(REPO_ROOT, 'test/support/torch_models.py');

let torchOk: boolean | undefined;
function torchReady(t: Test): boolean {
  if (torchOk === undefined) {
    const r = existsSync(PYTHON) ? spawnSync(PYTHON, ['-c', 'import torch'], { encoding: 'utf8' }) : undefined;
    torchOk = r?.status === 0;
  }
  return torchOk || missing(t, `${PYTHON} cannot import torch (Debian python3-torch)`);
}

export interface TorchExport { bytes: Uint8Array; inputShape: number[] }

/** The model exported at `opset` (built on first use), or undefined after a skip. */
export function torchModel(t: Test, name: TorchModel, opset: number): TorchExport | undefined {
  const onnx = resolve(CACHE, `${name}.opset${opset}.onnx`);
  const meta = resolve(CACHE, `${name}.opset${opset}.json`);
  if (!existsSync(onnx) || !existsSync(meta)) {
    if (!torchReady(t)) return undefined;
    mkdirSync(CACHE, { recursive: true });
    const r = spawnSync(PYTHON, [SCRIPT, CACHE, String(opset), ...TORCH_MODELS], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`torch_models.py failed at opset ${opset}: ${r.stderr.slice(-2000)}`);
  }
  return { bytes: readFileSync(onnx), inputShape: (JSON.parse(readFileSync(meta, 'utf8')) as { shape: number[] }).shape };
}
