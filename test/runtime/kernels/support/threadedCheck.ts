// A small part of the conformance suite for the threaded kernels, runnable as plain JavaScript
// (compiled by tsc) under another Node, e.g. the arm64 build under QEMU (threadsArm64.test.ts):
// GEMM in the three layouts and conv2d / conv1x1 with every call split (minMacsPerThread 0) on 2
// and 3 threads, odd batches and ragged slices, each against the reference kernels with the
// suite's tolerance 1e-5 * (1 + max |ref|) * sqrt(K). Prints one JSON line:
//   { arch, node, cases, failures: [...], threadsUsed: { "2": n, "3": n } }
import { referenceBackend, wasmBackend, type KernelBackend } from '../../../../runtime/kernels/backend.js';
import type { Conv2dParams } from '../../../../runtime/kernels/reference.js';

function rand(n: number, seed: number): Float32Array {
  let s = (seed * 2654435761) >>> 0 || 1;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0;
    out[i] = s / 2 ** 31 - 1;
  }
  return out;
}

function check(got: Float32Array, want: Float32Array, K: number): number | undefined {
  let m = 0, d = 0;
  for (const v of want) m = Math.max(m, Math.abs(v));
  for (let i = 0; i < want.length; i++) {
    const e = Math.abs(got[i]! - want[i]!);
    if (!(e <= d)) d = Number.isFinite(e) ? e : Infinity;
  }
  return d <= 1e-5 * (1 + m) * Math.sqrt(Math.max(K, 1)) ? undefined : d;
}

const p = (strides: [number, number], pads: Conv2dParams['pads'], group: number): Conv2dParams => ({ strides, pads, dilations: [1, 1], group });

export async function threadedCheck(): Promise<{ arch: string; node: string; cases: number; failures: string[]; threadsUsed: Record<string, number> }> {
  const failures: string[] = [];
  const threadsUsed: Record<string, number> = {};
  let cases = 0;
  for (const threads of [2, 3]) {
    const b: KernelBackend = await wasmBackend({ threads, minMacsPerThread: 0 });
    b.threads!.resetThreadsUsed();
    const r = referenceBackend;
    for (const [M, N, K] of [[1, 37, 19], [3, 50, 8], [5, 17, 33], [9, 70, 21], [37, 45, 64]] as const) {
      const a = rand(M * K, M + N), w = rand(N * K, K), bias = rand(N, 3);
      const got = new Float32Array(M * N), want = new Float32Array(M * N);
      const cmp = (what: string) => {
        cases++;
        const d = check(got, want, K);
        if (d !== undefined) failures.push(`${threads} threads ${what} ${M}x${N}x${K}: max abs diff ${d}`);
      };
      b.gemmNT(a, w, M, N, K, bias, got); r.gemmNT(a, w, M, N, K, bias, want); cmp('gemmNT');
      b.gemmNN(a, w, M, N, K, got); r.gemmNN(a, w, M, N, K, want); cmp('gemmNN');
      b.gemmTN(a, w, M, N, K, got); r.gemmTN(a, w, M, N, K, want); cmp('gemmTN');
    }
    const convs: Array<[number[], number[], Conv2dParams]> = [
      [[3, 4, 9, 9], [8, 4, 3, 3], p([1, 1], [1, 1, 1, 1], 1)], // batch split, odd batch
      [[1, 4, 9, 9], [40, 4, 3, 3], p([1, 1], [1, 1, 1, 1], 1)], // channel blocks of 16: 16, 16, 8
      [[1, 6, 11, 7], [9, 2, 3, 3], p([2, 1], [1, 0, 1, 0], 3)], // groups
      [[1, 5, 8, 8], [5, 1, 3, 3], p([1, 1], [1, 1, 1, 1], 5)], // depthwise
      [[5, 3, 6, 6], [4, 3, 1, 1], p([1, 1], [0, 0, 0, 0], 1)], // 1x1, batch 5
    ];
    for (const [xs, ws, cp] of convs) {
      const x = rand(xs.reduce((u, v) => u * v, 1), 7), w = rand(ws.reduce((u, v) => u * v, 1), 8), bias = rand(ws[0]!, 9);
      const got = b.conv2d(x, xs, w, ws, bias, cp), want = r.conv2d(x, xs, w, ws, bias, cp);
      cases++;
      const d = check(got.data, want.data, ws[1]! * ws[2]! * ws[3]!);
      if (d !== undefined) failures.push(`${threads} threads conv2d x [${xs}] w [${ws}]: max abs diff ${d}`);
    }
    for (const [xs, O] of [[[1, 8, 5, 5], 35], [[3, 8, 4, 4], 6]] as Array<[number[], number]>) {
      const x = rand(xs.reduce((u, v) => u * v, 1), 5), w = rand(O * xs[1]!, 6);
      const got = b.conv1x1(x, xs, w, O, undefined), want = r.conv1x1(x, xs, w, O, undefined);
      cases++;
      const d = check(got.data, want.data, xs[1]!);
      if (d !== undefined) failures.push(`${threads} threads conv1x1 x [${xs}] O ${O}: max abs diff ${d}`);
    }
    threadsUsed[String(threads)] = b.threads!.threadsUsed();
    await b.threads!.close();
  }
  return { arch: process.arch, node: process.version, cases, failures, threadsUsed };
}

if (process.argv[1] && /threadedCheck\.[jt]s$/.test(process.argv[1])) {
  process.stdout.write(`${JSON.stringify(await threadedCheck())}\n`);
}
