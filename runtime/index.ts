// The runtime's public API, for applications on a Pi or a Jetson (and the `factorlite-runtime`
// package built from this folder): load a .flm, pick kernels, run batches.
import { readFlm, readFlmFile } from './format/reader.js';
import type { Model, Tensor } from './ir.js';
import { initKernels, referenceBackend, selectBackend, type KernelBackend } from './kernels/backend.js';
import { Session, type SessionOptions } from './session.js';

export { Session, SessionError, type SessionOptions, type ArenaInfo } from './session.js';
export { readFlm, readFlmFile } from './format/reader.js';
export { FlmError, isFlmError, type FlmErrorCode } from './format/errors.js';
export {
  initKernels, selectBackend, hasWasmSimd, referenceBackend, describeSelection, BackendError, type KernelBackend,
} from './kernels/backend.js';
export type { Model, Tensor, Graph, GraphNode, StoredTensor, DType } from './ir.js';
export { summarize, type LayerSummary } from './describe.js';

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
  return { session, model, kernels: backend.name, run: (x) => session.runBatch(x) };
}
