// The PyTorch-exported models of test/support/torch_models_norm.py (GELU, SiLU, LayerNorm,
// BatchNorm1d MLPs, an MLP-mixer block and a MatMul of two activations), built once per opset and cached under
// tmp/cache/torch-norm (never committed), with a dynamic batch axis and with a fixed one. Tests
// that use them skip with a reason when /usr/bin/python3 cannot import torch, and fail instead
// under FACTORLITE_CI=1.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Test } from 'tap';
import { missing, PYTHON, REPO_ROOT } from './require.js';

export const NORM_MODELS = ['gelu', 'silu', 'layernorm', 'bn1d', 'mixer', 'widemlp', 'elementwise', 'gram'] as const;
export type NormModel = (typeof NORM_MODELS)[number];
export type CheckedModel = (typeof CHECKED_MODELS)[number];
export const NORM_OPSETS = [11, 13, 17] as const;
const CACHE = resolve(REPO_ROOT, 'tmp/cache/torch-norm');
/** The models checked one by one against onnxruntime (widemlp serves the compression test). */
export const CHECKED_MODELS = ['gelu', 'silu', 'layernorm', 'bn1d', 'mixer', 'elementwise'] as const;
const SCRIPT = resolve(REPO_ROOT, 'test/support/torch_models_norm.py');

let torchOk: boolean | undefined;
function torchReady(t: Test): boolean {
  if (torchOk === undefined) {
    const r = existsSync(PYTHON) ? spawnSync(PYTHON, ['-c', 'import torch'], { encoding: 'utf8' }) : undefined;
    torchOk = r?.status === 0;
  }
  return torchOk || missing(t, `${PYTHON} cannot import torch (Debian python3-torch)`);
}

export interface NormExport { dynamic: Uint8Array; fixed: Uint8Array; inputShape: number[] }

/** The model exported at `opset` (built on first use), or undefined after a skip. */
export function normModel(t: Test, name: NormModel, opset: number): NormExport | undefined {
  const base = resolve(CACHE, `${name}.opset${opset}`);
  const files = [`${base}.onnx`, `${base}.static.onnx`, `${base}.json`];
  if (!files.every((f) => existsSync(f))) {
    if (!torchReady(t)) return undefined;
    mkdirSync(CACHE, { recursive: true });
    const r = spawnSync(PYTHON, [SCRIPT, CACHE, String(opset), ...NORM_MODELS], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`torch_models_norm.py failed at opset ${opset}: ${r.stderr.slice(-2000)}`);
  }
  return {
    dynamic: readFileSync(files[0]!),
    fixed: readFileSync(files[1]!),
    inputShape: (JSON.parse(readFileSync(files[2]!, 'utf8')) as { shape: number[] }).shape,
  };
}
