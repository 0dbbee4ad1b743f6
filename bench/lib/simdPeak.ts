// The WebAssembly SIMD peak of one core, measured: bench/peak/simdpeak.wasm runs independent
// f32x4.mul and f32x4.add chains in registers (bench/peak/simdpeak.c says how), and, where the
// engine validates relaxed SIMD, bench/peak/simdpeak-relaxed.wasm runs f32x4.relaxed_madd chains.
// The time of a call is then the rate at which the engine's code issues those operations, which
// is what a GEMM built from the same operations can reach at most.
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { hasWasmRelaxedSimd } from '../../runtime/kernels/wasmKernels.js';

const PEAK_DIR = join(dirname(dirname(fileURLToPath(import.meta.url))), 'peak');

/** Vectors each export writes to `out`: its number of chains (each advances one step a round). */
export const CHAINS = { mulAdd: 12, mulOnly: 12, addOnly: 12, madd: 10 } as const;
export type PeakKernel = keyof typeof CHAINS;
/** f32x4 operations per chain step: mul_add multiplies then adds. */
const OPS_PER_STEP: Record<PeakKernel, number> = { mulAdd: 2, mulOnly: 1, addOnly: 1, madd: 1 };
/** Floating-point operations per round: 4 lanes per f32x4 operation, 2 per lane for a madd. */
export const FLOP_PER_ROUND: Record<PeakKernel, number> = {
  mulAdd: CHAINS.mulAdd * OPS_PER_STEP.mulAdd * 4,
  mulOnly: CHAINS.mulOnly * 4,
  addOnly: CHAINS.addOnly * 4,
  madd: CHAINS.madd * 8,
};
/** f32x4 instructions per round (for a rate in instructions per second). */
export const OPS_PER_ROUND: Record<PeakKernel, number> = {
  mulAdd: CHAINS.mulAdd * 2, mulOnly: CHAINS.mulOnly, addOnly: CHAINS.addOnly, madd: CHAINS.madd,
};

interface Exports {
  memory: WebAssembly.Memory;
  mul_add(rounds: number, m: number, d: number, out: number): void;
  mul_only(rounds: number, m: number, out: number): void;
  add_only(rounds: number, d: number, out: number): void;
  madd?(rounds: number, m: number, d: number, out: number): void;
}

/**
 * Multiplier and addend of the timed chains: with these, no chain overflows or goes denormal in
 * the few 10^8 steps of a timed call (the CPU's time for a multiply or an add does not depend on
 * the value otherwise).
 */
export const TIMED_M = 1 - 2 ** -24;
export const TIMED_D = 2 ** -20;

export interface SimdPeak {
  /** True when simdpeak-relaxed.wasm validated and loaded (this engine has relaxed SIMD). */
  readonly relaxed: boolean;
  /** Runs `rounds` rounds of one kernel; returns every chain's final lanes (CHAINS[kind] x 4 floats). */
  run(kind: PeakKernel, rounds: number, m?: number, d?: number): Float32Array;
}

/** Loads the peak modules (the relaxed one only where the engine validates relaxed SIMD). */
export function loadSimdPeak(): SimdPeak {
  const relaxed = hasWasmRelaxedSimd();
  const bytes = readFileSync(join(PEAK_DIR, relaxed ? 'simdpeak-relaxed.wasm' : 'simdpeak.wasm'));
  const x = new WebAssembly.Instance(new WebAssembly.Module(bytes), {}).exports as unknown as Exports;
  if (relaxed && typeof x.madd !== 'function') throw new Error('simdpeak-relaxed.wasm has no madd export');
  const OUT = 1024; // below the stack (wasm-ld puts the stack first, 64 KiB) and 16-aligned
  return {
    relaxed,
    run(kind, rounds, m = TIMED_M, d = TIMED_D) {
      if (!Number.isInteger(rounds) || rounds < 0) throw new Error(`simd peak: rounds must be a non-negative integer, got ${rounds}`);
      if (kind === 'mulAdd') x.mul_add(rounds, m, d, OUT);
      else if (kind === 'mulOnly') x.mul_only(rounds, m, OUT);
      else if (kind === 'addOnly') x.add_only(rounds, d, OUT);
      else if (x.madd) x.madd(rounds, m, d, OUT);
      else throw new Error('simd peak: madd needs relaxed SIMD (Node 22+, or Node 20 with --experimental-wasm-relaxed-simd)');
      return new Float32Array(x.memory.buffer, OUT, CHAINS[kind] * 4).slice();
    },
  };
}

/** The lanes a chain starts from in simdpeak.c (lane_seed). */
export function laneSeed(i: number): number[] {
  const b = Math.fround(1 + i * 0.0625);
  return [b, b + 0.25, b + 0.5, b + 0.75].map(Math.fround);
}
