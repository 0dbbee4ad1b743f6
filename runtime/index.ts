// The runtime's public API, for applications on a Pi or a Jetson (and the `factorlite-runtime`
// package built from this folder): load a .flm, pick kernels, run batches.
import { readFlm, readFlmFile } from './format/reader.js';
import type { Model, Tensor } from './ir.js';
import { initKernels, referenceBackend, selectBackend, type KernelBackend } from './kernels/backend.js';
import { Session, type SessionOptions } from './session.js';
import { Int8Session } from './int8full/session.js';
import { isInt8Full } from './int8full/params.js';

export { Session, SessionError, type SessionOptions, type ArenaInfo } from './session.js';
export { readFlm, readFlmFile } from './format/reader.js';
export { FlmError, isFlmError, type FlmErrorCode } from './format/errors.js';
export {
  initKernels, selectBackend, hasWasmSimd, referenceBackend, describeSelection, BackendError, type KernelBackend,
} from './kernels/backend.js';
export type { Model, Tensor, Graph, GraphNode, StoredTensor, DType } from './ir.js';
export { summarize, type LayerSummary } from './describe.js';
export { Int8Session, type Int8Tensor } from './int8full/session.js';
export { isInt8Full } from './int8full/params.js';

export interface LoadOptions extends SessionOptions {
  /**
   * Kernels: 'auto' (default) starts the fastest that loads (WebAssembly SIMD, else the reference),
   * 'wasm-simd' or 'reference' insist on one; a KernelBackend object is used as given.
   */
  kernels?: 'auto' | 'wasm-simd' | 'reference' | KernelBackend;
}

/** A loaded model, ready to run: the session plus the file's metadata. */
export interface LoadedModel {
  session: Session;
  model: Model;
  kernels: string;
  /** An int8-full file's integer session (the model's definition); run() goes through it. */
  int8?: Int8Session;
  /** Runs one batch (batch first, f32) and returns the first output. */
  run(x: Tensor): Tensor;
}

/** Reads a .flm (a path, or its bytes) and prepares a session on the chosen kernels. */
export async function load(source: string | Uint8Array, opts: LoadOptions = {}): Promise<LoadedModel> {
  const model = typeof source === 'string' ? await readFlmFile(source) : readFlm(source);
  let backend: KernelBackend;
  const k = opts.kernels ?? 'auto';
  if (typeof k === 'object') backend = k;
  else if (k === 'reference') backend = referenceBackend;
  else if (k === 'wasm-simd') backend = (await selectBackend(['wasm-simd'])).backend;
  else backend = await initKernels();
  const session = Session.create(model, { ...opts, backend });
  if (isInt8Full(model)) {
    const int8 = Int8Session.create(model);
    return { session, model, kernels: 'int8-full reference', int8, run: (x) => int8.runBatch(x) };
  }
  return { session, model, kernels: backend.name, run: (x) => session.runBatch(x) };
}
