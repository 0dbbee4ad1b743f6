// The memory a session's activation arena lives in: a plain ArrayBuffer (reference backend) or a
// block of the WebAssembly kernels' linear memory (runtime/kernels/wasmKernels.ts).

/** A block of memory holding one arena. */
export interface ArenaMemory {
  /** The buffer holding the arena now: it changes when the backend's memory grows, so views made on the old one must be made again. */
  buffer(): ArrayBuffer;
  readonly byteOffset: number;
  readonly bytes: number;
  /** Gives the block back (idempotent); views on it must not be used afterwards. */
  release(): void;
  /**
   * True for a plain heap buffer: the garbage collector frees it with the last reference, and
   * release() has nothing to give back, so a session need not (and must not) keep it for release.
   */
  readonly collected?: boolean;
}
