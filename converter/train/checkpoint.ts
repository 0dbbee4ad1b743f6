// Checkpoints: the model as a normal .flm (it runs in the runtime as it is) plus a sidecar
// `<file>.state.json` with what the .flm does not hold: the run's configuration, epoch and step
// counters, history, and the optimiser moments (base64 of little-endian f32, exact round trip).
// The epoch is in both files, so a sidecar left from another run is caught at load.
import { readFileSync, existsSync } from 'node:fs';
import { readFlm } from '../../runtime/format/reader.js';
import type { Model } from '../../runtime/ir.js';
import { writeFlmFile } from '../writer.js';
import type { OptimizerState } from './optim.js';
import type { TrainState } from './state.js';
import { writeFileAtomic } from '../atomicWrite.js';

export const STATE_FORMAT = 'factorlite.train_state';
export const STATE_VERSION = 1;

export function statePath(flm: string): string {
  return `${flm}.state.json`;
}

export class CheckpointError extends Error {
  constructor(readonly code: 'CHECKPOINT_MISSING' | 'CHECKPOINT_BAD' | 'CHECKPOINT_MISMATCH', message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

function toBase64(a: Float32Array): string {
  const bytes = new Uint8Array(a.byteLength);
  const dv = new DataView(bytes.buffer);
  a.forEach((v, i) => dv.setFloat32(4 * i, v, true));
  return Buffer.from(bytes).toString('base64');
}

function fromBase64(s: string, where: string): Float32Array {
  const bytes = Buffer.from(s, 'base64');
  if (bytes.length % 4 !== 0) throw new CheckpointError('CHECKPOINT_BAD', `${where}: ${bytes.length} bytes is not a whole number of f32 values`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
  const out = new Float32Array(bytes.length / 4);
  for (let i = 0; i < out.length; i++) out[i] = dv.getFloat32(4 * i, true);
  return out;
}

async function writeAtomic(path: string, text: string): Promise<void> {
  try {
    await writeFileAtomic(path, text);
  } catch (e) {
    throw new CheckpointError('CHECKPOINT_BAD', `cannot write ${path}`, { cause: e });
  }
}

/** Writes `path` (.flm) and `path.state.json`. `model` should carry 'train.epoch' = state.epoch. */
export async function saveCheckpoint(path: string, model: Model, state: TrainState): Promise<void> {
  await writeFlmFile(model, path);
  const moments: Record<string, string[]> = {};
  for (const [name, bufs] of Object.entries(state.optimizer.moments)) moments[name] = bufs.map(toBase64);
  const json = {
    format: STATE_FORMAT,
    version: STATE_VERSION,
    ...state,
    optimizer: { kind: state.optimizer.kind, t: state.optimizer.t, moments },
  };
  await writeAtomic(statePath(path), `${JSON.stringify(json)}\n`);
}

export function hasCheckpoint(path: string): boolean {
  return existsSync(path) && existsSync(statePath(path));
}

/** Reads a checkpoint written by saveCheckpoint. Throws CheckpointError (or the reader's FlmError). */
export function loadCheckpoint(path: string): { model: Model; state: TrainState } {
  const sp = statePath(path);
  if (!existsSync(path) || !existsSync(sp)) {
    throw new CheckpointError('CHECKPOINT_MISSING', `no checkpoint to resume: ${existsSync(path) ? sp : path} does not exist`);
  }
  const model = readFlm(readFileSync(path));
  let raw: Record<string, unknown>;
  try {
    raw = JSON.parse(readFileSync(sp, 'utf8')) as Record<string, unknown>;
  } catch (e) {
    throw new CheckpointError('CHECKPOINT_BAD', `${sp} is not JSON`, { cause: e });
  }
  if (raw['format'] !== STATE_FORMAT || raw['version'] !== STATE_VERSION) {
    throw new CheckpointError('CHECKPOINT_BAD', `${sp}: expected ${STATE_FORMAT} version ${STATE_VERSION}, got ${String(raw['format'])} version ${String(raw['version'])}`);
  }
  const opt = raw['optimizer'] as { kind?: unknown; t?: unknown; moments?: unknown } | undefined;
  if (!opt || typeof opt.moments !== 'object' || opt.moments === null) throw new CheckpointError('CHECKPOINT_BAD', `${sp}: no optimiser state`);
  const moments: Record<string, Float32Array[]> = {};
  for (const [name, bufs] of Object.entries(opt.moments as Record<string, unknown>)) {
    if (!Array.isArray(bufs) || !bufs.every((b) => typeof b === 'string')) throw new CheckpointError('CHECKPOINT_BAD', `${sp}: moments of ${name} are not base64 strings`);
    moments[name] = bufs.map((b, k) => fromBase64(b as string, `${sp} moment ${k} of ${name}`));
  }
  const state = { ...raw, optimizer: { kind: opt.kind, t: opt.t, moments } as OptimizerState } as unknown as TrainState;
  for (const key of ['net', 'config', 'epoch', 'step', 'history'] as const) {
    if (state[key] === undefined) throw new CheckpointError('CHECKPOINT_BAD', `${sp}: missing ${key}`);
  }
  const flmEpoch = model.metadata['train.epoch'];
  if (flmEpoch !== state.epoch) {
    throw new CheckpointError('CHECKPOINT_MISMATCH', `${path} is from epoch ${String(flmEpoch)} but ${sp} from epoch ${state.epoch}`);
  }
  return { model, state };
}
