// One conformance suite, run against every kernel backend: each case is computed by the backend
// and by the reference kernels (the definition), and must agree within
//   max |got - ref| <= 1e-5 * (1 + max |ref|) * sqrt(K)
// where K is the length of the sum behind each output (the GEMM depth, Cg*KH*KW for a conv, the
// window size for a pool). Max pool and ReLU do no arithmetic and must match exactly.
import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import t, { type Test } from 'tap';
import {
  BackendError, describeSelection, hasWasmRelaxedSimd, hasWasmSimd, referenceBackend, selectBackend, wasmBackend, type KernelBackend,
} from '../../../runtime/kernels/backend.js';
import { readKernelModule } from '../../../runtime/kernels/wasmKernels.js';
import * as ref from '../../../runtime/kernels/reference.js';
import type { Conv2dParams, PoolParams } from '../../../runtime/kernels/reference.js';
import { missing, REPO_ROOT } from '../../support/require.js';
import { depthwiseHrowsConv, depthwisePackedConv, depthwiseS2k3Conv, depthwiseRowsConv, depthwiseValidConv, pointwisePath, winogradConv } from '../../../runtime/cost/steps.js';

/** Deterministic values in [-1, 1) (xorshift32), so a failure can be replayed. */
function rand(n: number, seed: number): Float32Array {
  let s = (seed * 2654435761) >>> 0 || 1;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s ^= s << 13; s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5; s >>>= 0;
    out[i] = s / 2 ** 31 - 1;
  }
  return out;
}

function tolerance(expected: Float32Array, K: number): number {
  let m = 0;
  for (const v of expected) m = Math.max(m, Math.abs(v));
  return 1e-5 * (1 + m) * Math.sqrt(Math.max(K, 1));
}

/** Largest |a - b|, Infinity on a length mismatch or where exactly one side is not finite. */
function maxDiff(a: Float32Array, b: Float32Array): number {
  if (a.length !== b.length) return Infinity;
  let d = 0;
  for (let i = 0; i < a.length; i++) {
    const x = a[i]!;
    const y = b[i]!;
    if (x === y) continue;
    if (!Number.isFinite(x) || !Number.isFinite(y)) return Infinity;
    d = Math.max(d, Math.abs(x - y));
  }
  return d;
}

function close(t: Test, got: Float32Array, want: Float32Array, K: number, what: string): void {
  const d = maxDiff(got, want);
  const tol = tolerance(want, K);
  if (d <= tol) t.pass(what);
  else t.fail(`${what}: max abs diff ${d} > tolerance ${tol}`);
}

const SIZES = [1, 3, 17, 64, 129];

interface ConvCase { x: [number, number, number, number]; w: [number, number, number, number]; p: Conv2dParams; bias: boolean }
const conv = (
  x: ConvCase['x'], w: ConvCase['w'], strides: [number, number] = [1, 1], pads: Conv2dParams['pads'] = [0, 0, 0, 0],
  dilations: [number, number] = [1, 1], group = 1, bias = true,
): ConvCase => ({ x, w, p: { strides, pads, dilations, group }, bias });

interface PathCase { c: ConvCase; path: string }
/**
 * The cases of the wasm kernels' direct paths (conv.c), each with the path its shapes must take
 * there: register-blocked direct conv (in place and padded, overlapping last tile, 4/2/1 output
 * channel remainders, vertical stride, dilation, asymmetric pads, groups), the 1x1 as direct or
 * packed GEMM, the wide depthwise (CP's kh x 1 and 1 x kw stages, DS-CNN's 3x3 on 25 x 5), and
 * shapes the rule sends back to im2col.
 */
const DIRECT_CASES: PathCase[] = [
  // LeNet-5's two convolutions (the second as svd_conv2d's r = 42 stage)
  { c: conv([2, 1, 28, 28], [20, 1, 5, 5]), path: 'direct' },
  { c: conv([1, 20, 12, 12], [42, 20, 5, 5], [1, 1], [0, 0, 0, 0], [1, 1], 1, false), path: 'direct' },
  { c: conv([2, 16, 32, 32], [16, 16, 3, 3], [1, 1], [1, 1, 1, 1]), path: 'winograd' },
  { c: conv([1, 3, 14, 14], [7, 3, 3, 3], [1, 1], [1, 1, 1, 1]), path: 'direct' },
  { c: conv([1, 4, 17, 20], [5, 4, 3, 3], [2, 1], [1, 1, 1, 1]), path: 'direct' },
  { c: conv([1, 2, 15, 20], [3, 2, 3, 3], [1, 1], [2, 2, 2, 2], [2, 2]), path: 'direct' },
  { c: conv([1, 3, 10, 16], [6, 3, 3, 2], [1, 1], [0, 1, 2, 0], [1, 1], 1, false), path: 'direct' },
  { c: conv([2, 8, 9, 12], [12, 2, 3, 3], [1, 1], [1, 1, 1, 1], [1, 1], 4), path: 'direct' },
  { c: conv([1, 2, 8, 8], [4, 2, 3, 3], [1, 1], [0, 0, 2, 2]), path: 'direct' },
  { c: conv([1, 2, 12, 18], [4, 2, 3, 3], [2, 1]), path: 'direct' },
  { c: conv([3, 5, 7, 9], [9, 5, 2, 2], [1, 1], [0, 0, 0, 0], [1, 1], 1, false), path: 'direct' },
  // horizontal stride 2: rows split into even and odd columns (ResNet-8's downsampling 3x3)
  { c: conv([2, 16, 32, 32], [32, 16, 3, 3], [2, 2], [1, 1, 1, 1]), path: 'direct' },
  { c: conv([1, 3, 20, 37], [5, 3, 3, 4], [2, 2], [1, 2, 0, 1], [1, 2]), path: 'direct' },
  // 1x1: direct while the input is cache-sized, else the packed GEMM; narrow maps stay on the GEMM
  { c: conv([2, 17, 9, 7], [33, 17, 1, 1]), path: '1x1 direct' },
  { c: conv([1, 42, 8, 8], [50, 42, 1, 1]), path: '1x1 direct' },
  { c: conv([1, 300, 16, 16], [8, 300, 1, 1]), path: '1x1 gemm' },
  { c: conv([1, 8, 2, 3], [5, 8, 1, 1]), path: '1x1 gemm' },
  // depthwise, both strides 1, rows of 16 outputs or more: computed Wp wide
  { c: conv([2, 8, 16, 16], [8, 1, 3, 3], [1, 1], [1, 1, 1, 1], [1, 1], 8), path: 'depthwise wide' },
  { c: conv([1, 6, 12, 20], [6, 1, 5, 1], [1, 1], [2, 0, 2, 0], [1, 1], 6, false), path: 'depthwise wide' },
  { c: conv([1, 4, 12, 20], [8, 1, 5, 5], [1, 1], [2, 2, 2, 2], [1, 1], 4), path: 'depthwise wide' },
  { c: conv([1, 3, 16, 19], [3, 1, 3, 3], [1, 1], [2, 1, 2, 3], [2, 2], 3), path: 'depthwise wide' },
  { c: conv([1, 4, 7, 20], [4, 1, 1, 11], [1, 1], [0, 5, 0, 5], [1, 1], 4, false), path: 'depthwise wide' },
  // depthwise on rows under 16 outputs or strided, and one input channel to 1..4 outputs:
  // channels in the vector lanes (depthwise.c): channel counts not a multiple of 4 (idle lanes),
  // multipliers, strides, dilations, uneven pads, output counts not a multiple of 8 or of 4, batch
  { c: conv([2, 8, 14, 14], [8, 1, 3, 3], [1, 1], [1, 1, 1, 1], [1, 1], 8), path: 'depthwise packed' },
  { c: conv([1, 64, 25, 5], [64, 1, 3, 3], [1, 1], [1, 1, 1, 1], [1, 1], 64), path: 'depthwise packed' },
  { c: conv([32, 8, 25, 5], [8, 1, 3, 3], [1, 1], [1, 1, 1, 1], [1, 1], 8), path: 'depthwise packed' },
  { c: conv([1, 6, 12, 10], [6, 1, 5, 1], [1, 1], [2, 0, 2, 0], [1, 1], 6, false), path: 'depthwise wide' },
  { c: conv([1, 6, 12, 10], [6, 1, 5, 1], [1, 1], [0, 0, 0, 0], [1, 1], 6, false), path: 'depthwise valid' },
  { c: conv([2, 6, 10, 12], [6, 1, 1, 5], [1, 1], [0, 2, 0, 2], [1, 1], 6, false), path: 'depthwise packed' },
  { c: conv([1, 4, 12, 12], [8, 1, 5, 5], [1, 1], [2, 2, 2, 2], [1, 1], 4), path: 'depthwise packed' },
  { c: conv([1, 3, 16, 15], [3, 1, 3, 3], [1, 1], [2, 1, 2, 3], [2, 2], 3), path: 'depthwise packed' },
  { c: conv([1, 2, 3, 4], [2, 1, 1, 1], [1, 1], [0, 0, 0, 0], [1, 1], 2), path: 'depthwise valid' },
  { c: conv([2, 3, 4, 3], [3, 1, 3, 1], [1, 1], [1, 0, 1, 0], [1, 1], 3), path: 'depthwise wide' },
  { c: conv([1, 2, 2, 2], [2, 1, 1, 1], [1, 1], [0, 0, 0, 0], [1, 1], 2), path: 'depthwise packed' },
  // k x 1 at a vertical stride of 2 or more, rows as wide as the input's (CP's strided vertical
  // stage): whole rows (dwrows.c): 16- and 4-wide tiles with the overlapping last one, taps in the
  // top and bottom padding skipped, dilation, multipliers, batch, a stride past the kernel
  { c: conv([1, 6, 12, 10], [6, 1, 3, 1], [2, 1], [1, 0, 1, 0], [1, 1], 6, false), path: 'depthwise rows' },
  { c: conv([2, 40, 32, 32], [40, 1, 3, 1], [2, 1], [1, 0, 1, 0], [1, 1], 40), path: 'depthwise rows' },
  { c: conv([1, 67, 16, 16], [67, 1, 3, 1], [2, 1], [1, 0, 1, 0], [1, 1], 67), path: 'depthwise rows' },
  { c: conv([3, 3, 11, 5], [6, 1, 5, 1], [3, 1], [2, 0, 3, 0], [2, 1], 3), path: 'depthwise rows' },
  { c: conv([1, 4, 9, 21], [4, 1, 2, 1], [4, 1], [0, 0, 1, 0], [1, 1], 4, false), path: 'depthwise rows' },
  // padded 1 x k at stride 1 on rows of 32 or more (CP's horizontal stage on 32 x 32): one row at a
  // time from a zero-padded copy (dwrows.c): uneven pads, dilation, rows not a multiple of 16 or 4,
  // no right pad, multipliers, batch
  { c: conv([2, 25, 32, 32], [25, 1, 1, 3], [1, 1], [0, 1, 0, 1], [1, 1], 25), path: 'depthwise hrows' },
  { c: conv([1, 3, 3, 37], [6, 1, 1, 5], [1, 1], [0, 3, 0, 1], [1, 2], 3, false), path: 'depthwise hrows' },
  { c: conv([2, 2, 2, 40], [2, 1, 1, 3], [1, 1], [0, 2, 0, 0], [1, 1], 2), path: 'depthwise hrows' },
  // 1 x 3 at horizontal stride 2, left padding 1, last tap inside the row (CP's strided horizontal
  // stage): shuffled load pairs (dwrows.c): ResNet-8's two, an odd row with no right padding, a
  // multiplier with the overlapping last tile; an odd row whose last tap is in the padding is not taken
  { c: conv([2, 40, 16, 32], [40, 1, 1, 3], [1, 2], [0, 1, 0, 1], [1, 1], 40), path: 'depthwise s2k3' },
  { c: conv([1, 67, 8, 16], [67, 1, 1, 3], [1, 2], [0, 1, 0, 1], [1, 1], 67), path: 'depthwise s2k3' },
  { c: conv([1, 3, 5, 9], [3, 1, 1, 3], [1, 2], [0, 1, 0, 0], [1, 1], 3, false), path: 'depthwise s2k3' },
  { c: conv([3, 2, 3, 12], [4, 1, 1, 3], [1, 2], [0, 1, 0, 1], [1, 1], 2), path: 'depthwise s2k3' },
  { c: conv([1, 4, 4, 9], [4, 1, 1, 3], [1, 2], [0, 1, 0, 1], [1, 1], 4), path: 'depthwise packed' },
  { c: conv([2, 5, 13, 17], [10, 1, 3, 3], [2, 2], [1, 1, 1, 1], [1, 1], 5), path: 'depthwise packed' },
  { c: conv([1, 7, 9, 11], [7, 1, 3, 3], [1, 2], [0, 1, 2, 1], [2, 1], 7), path: 'depthwise packed' },
  { c: conv([1, 32, 16, 16], [32, 1, 3, 3], [2, 2], [1, 1, 1, 1], [1, 1], 32), path: 'depthwise packed' },
  { c: conv([1, 9, 8, 8], [9, 1, 7, 7], [1, 1], [3, 3, 3, 3], [1, 1], 9, false), path: 'depthwise packed' },
  { c: conv([1, 1, 49, 10], [1, 1, 10, 4], [2, 2], [5, 1, 5, 1]), path: 'depthwise packed' }, // DS-CNN's first conv at rank 1
  // the lanes of a block are consecutive planes of the batch: 1 to 3 output channels fill them from the next images
  { c: conv([5, 1, 49, 10], [1, 1, 10, 4], [2, 2], [5, 1, 5, 1]), path: 'depthwise packed' },
  { c: conv([3, 1, 12, 9], [2, 1, 3, 3], [1, 1], [1, 1, 1, 1]), path: 'depthwise packed' },
  { c: conv([3, 3, 10, 7], [3, 1, 3, 3], [1, 1], [1, 1, 1, 1], [1, 1], 3), path: 'depthwise packed' },
  { c: conv([2, 1, 12, 9], [3, 1, 3, 3], [1, 1], [1, 1, 1, 1]), path: 'depthwise packed' },
  // k x 3 at horizontal stride 1: runs of neighbouring outputs of a row (4, 5, then 1 to 3)
  { c: conv([1, 4, 10, 3], [4, 1, 3, 3], [1, 1], [1, 1, 1, 1], [1, 1], 4), path: 'depthwise packed' },
  { c: conv([1, 5, 7, 6], [5, 1, 5, 3], [2, 1], [2, 1, 2, 1], [1, 1], 5), path: 'depthwise packed' },
  { c: conv([2, 6, 9, 7], [6, 1, 3, 3], [1, 1], [0, 0, 0, 0], [1, 1], 6), path: 'depthwise packed' },
  { c: conv([1, 4, 8, 3], [4, 1, 3, 3], [1, 1], [1, 0, 1, 0], [1, 1], 4, false), path: 'depthwise packed' },
  { c: conv([1, 4, 8, 4], [4, 1, 3, 3], [1, 1], [1, 0, 1, 0], [1, 1], 4), path: 'depthwise packed' },
  { c: conv([1, 4, 8, 9], [8, 1, 3, 3], [1, 1], [1, 1, 1, 1], [2, 1], 4), path: 'depthwise packed' },
  { c: conv([1, 3, 6, 13], [3, 1, 1, 3], [1, 1], [0, 1, 0, 1], [1, 1], 3), path: 'depthwise packed' },
  // depthwise 1 x k, or k x 1 on rows as wide as the input's, at stride 1 without padding (CP's
  // separable stages of an unpadded conv, LeNet-5's 5 x 1 on 12 x 12 and 1 x 5 on 8 x 12): register
  // tiles straight from the input plane (depthwise.c, depthwise_valid): tiles of 4 rows and single
  // rows, 8- and 4-wide tiles, the overlapping last tile, dilation, multipliers, batch, and a map
  // larger than the output (only its top-left part read)
  { c: conv([2, 6, 12, 12], [6, 1, 5, 1], [1, 1], [0, 0, 0, 0], [1, 1], 6, false), path: 'depthwise valid' },
  { c: conv([2, 6, 8, 12], [6, 1, 1, 5], [1, 1], [0, 0, 0, 0], [1, 1], 6), path: 'depthwise valid' },
  { c: conv([1, 3, 7, 13], [6, 1, 1, 3], [1, 1], [0, 0, 0, 0], [1, 2], 3), path: 'depthwise valid' },
  { c: conv([1, 4, 5, 6], [4, 1, 1, 3], [1, 1], [0, 0, 0, 0], [1, 1], 4), path: 'depthwise valid' },
  { c: conv([3, 5, 9, 3], [5, 1, 3, 1], [1, 1], [0, 0, 0, 0], [2, 1], 5), path: 'depthwise valid' },
  { c: conv([1, 2, 3, 2], [4, 1, 2, 1], [1, 1], [0, 0, 0, 0], [1, 1], 2), path: 'depthwise valid' },
  { c: conv([1, 4, 21, 20], [4, 1, 1, 7], [1, 1], [0, 0, 0, 0], [1, 1], 4), path: 'depthwise valid' },
  { c: conv([1, 4, 11, 9], [4, 1, 3, 1], [1, 1], [0, 0, 0, 0], [1, 1], 4), path: 'depthwise valid' },
  // a padded k x 1 whose rows are as wide as the input's: the copy-free wide kernel, also on narrow maps
  { c: conv([2, 8, 25, 5], [8, 1, 3, 1], [1, 1], [1, 0, 1, 0], [1, 1], 8), path: 'depthwise wide' },
  // the padded plane past 2048 pixels, or fewer than 4 outputs: the plain kernel
  { c: conv([1, 2, 60, 40], [2, 1, 3, 3], [2, 2], [1, 1, 1, 1], [1, 1], 2), path: 'depthwise' },
  { c: conv([1, 3, 1, 3], [3, 1, 1, 1], [1, 1], [0, 0, 0, 0], [1, 1], 3), path: 'depthwise' },
  // back to im2col: horizontal stride 3, rows under 8 (DS-CNN's first conv) or of 9-11, an input
  // past the cache budget, a strided 1x1 on a 3 x 3 output (too few for the direct kernel's tiles)
  { c: conv([1, 3, 17, 40], [5, 3, 5, 5], [1, 3], [2, 2, 2, 2]), path: 'im2col+gemm' },
  { c: conv([1, 3, 17, 19], [5, 3, 5, 5], [1, 2], [2, 2, 2, 2]), path: 'im2col+gemm' },
  { c: conv([1, 1, 49, 10], [64, 1, 10, 4], [2, 2], [5, 1, 5, 1]), path: 'im2col+gemm' },
  // strided 1x1 (the shortcut of a ResNet stage): the sampled pixels, then the direct 1x1 kernel
  { c: conv([1, 16, 32, 32], [32, 16, 1, 1], [2, 2]), path: '1x1 strided' },
  { c: conv([2, 6, 11, 13], [5, 6, 1, 1], [2, 3], [0, 0, 0, 0], [1, 1], 1, false), path: '1x1 strided' },
  { c: conv([1, 8, 10, 17], [6, 4, 1, 1], [2, 2], [0, 0, 0, 0], [1, 1], 2), path: '1x1 strided' },
  { c: conv([1, 16, 5, 5], [8, 16, 1, 1], [2, 2]), path: 'im2col+gemm' },
  // stride 2 whose padded, de-interleaved copy (20 x 24 per channel) would not fit the im2col scratch (6 x 66)
  { c: conv([1, 3, 20, 21], [3, 3, 3, 2], [3, 2], [1, 0, 1, 3], [2, 3]), path: 'im2col+gemm' },
  { c: conv([1, 4, 8, 7], [6, 4, 3, 3], [1, 1], [1, 1, 1, 1]), path: 'im2col+gemm' },
  { c: conv([1, 4, 10, 10], [6, 4, 3, 3], [1, 1], [1, 1, 1, 1]), path: 'im2col+gemm' },
  { c: conv([1, 80, 30, 30], [4, 80, 3, 3], [1, 1], [1, 1, 1, 1]), path: 'winograd' },
  // 3x3 stride 1 with too few channels (C*O < 64) or outputs under 4 wide: not Winograd
  { c: conv([1, 4, 8, 8], [8, 4, 3, 3], [1, 1], [1, 1, 1, 1]), path: 'direct' },
  { c: conv([1, 16, 5, 3], [16, 16, 3, 3], [1, 1], [1, 1, 1, 1]), path: 'im2col+gemm' },
];

/**
 * Winograd F(2,3) (winograd.c): 3x3, stride 1, one group, C*O >= 64. Odd sizes (tiles past the
 * output's last row and column), pads 0 / 1 / 2 / asymmetric, channels not a multiple of 4, batch
 * above 1, with and without bias, more tiles than one chunk (64), output channel counts that
 * the threaded batch-1 split cuts in blocks of 4 (wasmThreaded.ts OC_BLOCK; ResNet-8's 16 -> 16 at 32x32).
 */
const WINO_CASES: ConvCase[] = [
  conv([1, 8, 8, 8], [8, 8, 3, 3], [1, 1], [1, 1, 1, 1]),
  conv([2, 5, 7, 9], [13, 5, 3, 3], [1, 1], [1, 1, 1, 1]),
  conv([3, 7, 13, 11], [10, 7, 3, 3], [1, 1], [0, 0, 0, 0], [1, 1], 1, false),
  conv([1, 6, 10, 15], [11, 6, 3, 3], [1, 1], [2, 2, 2, 2]),
  conv([1, 9, 12, 10], [10, 9, 3, 3], [1, 1], [0, 1, 2, 0], [1, 1], 1, false),
  conv([1, 11, 8, 8], [11, 11, 3, 3], [1, 1], [1, 1, 1, 1]),
  conv([2, 16, 31, 33], [16, 16, 3, 3], [1, 1], [1, 1, 1, 1]),
  conv([1, 64, 8, 8], [64, 64, 3, 3], [1, 1], [1, 1, 1, 1]),
  conv([1, 33, 6, 6], [35, 33, 3, 3], [1, 1], [1, 1, 1, 1]),
  conv([1, 16, 32, 32], [16, 16, 3, 3], [1, 1], [1, 1, 1, 1]),
];

const CONV_CASES: ConvCase[] = [
  conv([1, 1, 5, 5], [1, 1, 3, 3]),
  conv([2, 3, 17, 13], [8, 3, 3, 3], [1, 1], [1, 1, 1, 1]),
  conv([1, 3, 17, 19], [5, 3, 5, 5], [2, 2], [2, 2, 2, 2]),
  conv([1, 4, 16, 16], [6, 4, 3, 3], [2, 1], [0, 1, 2, 0], [1, 1], 1, false),
  conv([1, 2, 15, 15], [4, 2, 3, 3], [1, 1], [2, 2, 2, 2], [2, 2]),
  conv([1, 3, 20, 21], [3, 3, 3, 2], [3, 2], [1, 0, 1, 3], [2, 3]),
  conv([2, 8, 9, 9], [12, 2, 3, 3], [1, 1], [1, 1, 1, 1], [1, 1], 4),
  conv([1, 6, 11, 10], [6, 3, 1, 3], [1, 2], [0, 1, 0, 1], [1, 1], 2, false),
  // depthwise, with and without a channel multiplier, strides and dilations
  conv([2, 8, 14, 14], [8, 1, 3, 3], [1, 1], [1, 1, 1, 1], [1, 1], 8),
  conv([1, 5, 13, 17], [5, 1, 3, 3], [2, 2], [1, 1, 1, 1], [1, 1], 5),
  conv([1, 4, 12, 12], [8, 1, 5, 5], [1, 1], [2, 2, 2, 2], [1, 1], 4, false),
  conv([1, 3, 16, 15], [3, 1, 3, 3], [1, 3], [3, 0, 1, 2], [2, 2], 3),
  conv([1, 16, 7, 129], [16, 1, 3, 3], [1, 1], [1, 1, 1, 1], [1, 1], 16),
  // 1x1: plain (no im2col), strided, padded, grouped
  conv([2, 17, 9, 7], [33, 17, 1, 1]),
  conv([1, 8, 9, 9], [4, 8, 1, 1], [2, 2]),
  conv([1, 8, 5, 5], [4, 8, 1, 1], [1, 1], [1, 1, 1, 1]),
  conv([1, 8, 6, 6], [6, 4, 1, 1], [1, 1], [0, 0, 0, 0], [1, 1], 2),
  // larger: several K blocks of the GEMM (K = 64*3*3 = 576 > 256)
  conv([1, 64, 12, 12], [65, 64, 3, 3], [1, 1], [1, 1, 1, 1]),
  // kernel as large as the padded input: one output pixel
  conv([1, 2, 4, 4], [3, 2, 6, 6], [1, 1], [1, 1, 1, 1]),
  ...DIRECT_CASES.map((d) => d.c),
  // ResNet-8's stride-2 16 -> 32 at batch 1 (direct; the threaded split: 8 blocks of 4 channels)
  conv([1, 16, 32, 32], [32, 16, 3, 3], [2, 2], [1, 1, 1, 1]),
  ...WINO_CASES,
];


interface PoolCase { x: [number, number, number, number]; p: PoolParams }
const pool = (
  x: PoolCase['x'], kernel: [number, number], strides: [number, number], pads: PoolParams['pads'] = [0, 0, 0, 0],
  ceilMode = false, dilations: [number, number] = [1, 1],
): PoolCase => ({ x, p: { kernel, strides, pads, dilations, ceilMode } });
const POOL_CASES: PoolCase[] = [
  pool([1, 1, 4, 4], [2, 2], [2, 2]),
  pool([2, 3, 17, 13], [3, 3], [2, 2]),
  pool([2, 3, 17, 13], [3, 3], [2, 2], [0, 0, 0, 0], true),
  pool([1, 4, 10, 11], [3, 3], [2, 2], [1, 1, 1, 1], true),
  pool([1, 2, 7, 9], [2, 3], [3, 2], [1, 0, 0, 1], true),
  pool([1, 3, 8, 8], [3, 3], [1, 1], [1, 1, 1, 1]),
  pool([1, 2, 9, 9], [2, 2], [2, 2], [0, 0, 1, 1], true),
  pool([1, 2, 5, 6], [5, 6], [1, 1]),
  pool([1, 2, 6, 6], [4, 4], [4, 4], [0, 0, 0, 0], true),
  // one window over the whole map (the wasm kernel sums it as the global pool): DS-CNN's 25 x 5, a map under 4 cells
  pool([2, 64, 25, 5], [25, 5], [1, 1]),
  pool([1, 3, 1, 3], [1, 3], [1, 1]),
  // 2x2 stride 2 (the wasm SIMD path): four outputs at a time, tails, odd sizes
  pool([2, 3, 24, 24], [2, 2], [2, 2]),
  pool([1, 5, 17, 13], [2, 2], [2, 2]),
  pool([1, 2, 8, 30], [2, 2], [2, 2]),
  pool([1, 1, 9, 9], [2, 2], [2, 2], [0, 0, 0, 0], true),
];
// Dilated windows: max pool only (the reference average pool has no dilation).
const DILATED_MAX: PoolCase[] = [
  pool([1, 2, 13, 12], [3, 3], [1, 1], [0, 0, 0, 0], false, [2, 2]),
  pool([1, 2, 13, 12], [2, 3], [2, 2], [1, 2, 1, 2], true, [3, 2]),
];

/** The suite: every assertion compares `b` with the reference. */
function conformance(t: Test, b: KernelBackend): void {
  t.test('gemmNT (x W^T + bias)', async (t) => {
    let seed = 1;
    for (const M of SIZES) for (const N of SIZES) for (const K of SIZES) {
      const a = rand(M * K, seed++);
      const w = rand(N * K, seed++);
      const bias = (M + N + K) % 2 ? rand(N, seed++) : undefined;
      const want = new Float32Array(M * N);
      const got = new Float32Array(M * N).fill(NaN);
      ref.gemmNT(a, w, M, N, K, bias, want);
      b.gemmNT(a, w, M, N, K, bias, got);
      close(t, got, want, K, `M=${M} N=${N} K=${K}${bias ? ' +bias' : ''}`);
    }
  });

  for (const layout of ['gemmNN', 'gemmTN'] as const) {
    t.test(layout, async (t) => {
      let seed = 1000;
      for (const M of SIZES) for (const N of SIZES) for (const K of SIZES) {
        const a = rand(M * K, seed++);
        const bm = rand(K * N, seed++);
        const want = new Float32Array(M * N);
        const got = new Float32Array(M * N).fill(NaN);
        ref[layout](a, bm, M, N, K, want);
        b[layout](a, bm, M, N, K, got);
        close(t, got, want, K, `M=${M} N=${N} K=${K}`);
      }
      // Offsets into larger buffers (batched matmul, conv per image); the rest of `out` is untouched.
      const [M, N, K] = [17, 9, 13];
      const a = rand(3 + M * K, seed++);
      const bm = rand(5 + K * N, seed++);
      const want = rand(7 + M * N + 4, seed);
      const got = want.slice();
      ref[layout](a, bm, M, N, K, want, 3, 5, 7);
      b[layout](a, bm, M, N, K, got, 3, 5, 7);
      close(t, got, want, K, 'with aOffset, bOffset, outOffset');
    });
  }

  t.test('gemm, large (several cache blocks)', async (t) => {
    const [M, N, K] = [200, 2100, 300];
    const a = rand(M * K, 7);
    const w = rand(N * K, 8);
    const want = new Float32Array(M * N);
    const got = new Float32Array(M * N);
    ref.gemmNT(a, w, M, N, K, undefined, want);
    b.gemmNT(a, w, M, N, K, undefined, got);
    close(t, got, want, K, `NT M=${M} N=${N} K=${K}`);
    ref.gemmNN(a, w, M, N, K, want);
    b.gemmNN(a, w, M, N, K, got);
    close(t, got, want, K, `NN M=${M} N=${N} K=${K}`);
  });

  t.test('conv2d: strides, pads, dilations, groups, depthwise, 1x1', async (t) => {
    let seed = 5000;
    for (const c of CONV_CASES) {
      const x = rand(c.x.reduce((u, v) => u * v, 1), seed++);
      const w = rand(c.w.reduce((u, v) => u * v, 1), seed++);
      const bias = c.bias ? rand(c.w[0], seed++) : undefined;
      const want = ref.conv2d(x, c.x, w, c.w, bias, c.p);
      const got = b.conv2d(x, c.x, w, c.w, bias, c.p);
      const what = `x [${c.x}] w [${c.w}] ${JSON.stringify(c.p)}`;
      t.same(got.shape, want.shape, `${what}: shape`);
      close(t, got.data, want.data, c.w[1] * c.w[2] * c.w[3], what);
    }
  });

  t.test('conv1x1', async (t) => {
    let seed = 6000;
    // The last four take conv1x1.c's batch GEMM on the wasm builds (>= 32 input channels, 8 to 64
    // pixels in whole 8-column tiles): LeNet-5's 42 -> 50 on 8x8, and 1, 2 and 3 output channels left after the blocks of 4.
    // Then conv1x1.c's packed kernel (96 pixels or more, or whole blocks of 4 output channels):
    // ResNet-8's CP 16 -> 25 on 32 x 32 (one left after the blocks of 4), 2 and 3 left, maps not a
    // multiple of 8 pixels (the overlapping last tile), several strips, one 8-pixel tile.
    for (const [xs, O] of [[[1, 1, 1, 1], 1], [[2, 17, 5, 3], 9], [[1, 64, 13, 13], 129], [[3, 3, 1, 7], 2],
      [[3, 42, 8, 8], 50], [[2, 64, 4, 4], 13], [[1, 32, 2, 4], 6], [[5, 33, 8, 3], 7],
      [[2, 16, 32, 32], 25], [[1, 25, 16, 16], 18], [[3, 7, 25, 5], 11], [[1, 5, 3, 3], 8], [[2, 3, 2, 4], 4],
      [[1, 1100, 10, 10], 3]] as const) {
      const x = rand(xs.reduce((u, v) => u * v, 1), seed++);
      const w = rand(O * xs[1], seed++);
      for (const bias of [undefined, rand(O, seed++)]) {
        const want = ref.conv1x1(x, xs, w, O, bias);
        const got = b.conv1x1(x, xs, w, O, bias);
        t.same(got.shape, want.shape);
        close(t, got.data, want.data, xs[1], `x [${xs}] O=${O}${bias ? ' +bias' : ''}`);
      }
    }
  });

  t.test('maxPool: pads, ceil_mode, dilations (exact)', async (t) => {
    let seed = 7000;
    for (const c of [...POOL_CASES, ...DILATED_MAX]) {
      const x = rand(c.x.reduce((u, v) => u * v, 1), seed++);
      const want = ref.maxPool(x, c.x, c.p);
      const got = b.maxPool(x, c.x, c.p);
      t.same(got.shape, want.shape, `x [${c.x}] ${JSON.stringify(c.p)}: shape`);
      t.equal(maxDiff(got.data, want.data), 0, `x [${c.x}] ${JSON.stringify(c.p)}`);
    }
  });

  t.test('avgPool: pads, ceil_mode, count_include_pad', async (t) => {
    let seed = 8000;
    for (const c of POOL_CASES) {
      const x = rand(c.x.reduce((u, v) => u * v, 1), seed++);
      for (const includePad of [false, true]) {
        const want = ref.avgPool(x, c.x, c.p, includePad);
        const got = b.avgPool(x, c.x, c.p, includePad);
        const what = `x [${c.x}] ${JSON.stringify(c.p)} count_include_pad=${includePad}`;
        t.same(got.shape, want.shape, `${what}: shape`);
        close(t, got.data, want.data, c.p.kernel[0] * c.p.kernel[1], what);
      }
    }
  });

  t.test('globalAvgPool', async (t) => {
    for (const xs of [[1, 1, 1, 1], [2, 3, 7, 5], [1, 16, 13, 13], [2, 5, 9]]) {
      const x = rand(xs.reduce((u, v) => u * v, 1), xs.length * 31 + xs[1]!);
      const want = ref.globalAvgPool(x, xs);
      const got = b.globalAvgPool(x, xs);
      t.same(got.shape, want.shape);
      close(t, got.data, want.data, xs.slice(2).reduce((u, v) => u * v, 1), `x [${xs}]`);
    }
  });

  t.test('retained weights give the same results', async (t) => {
    const [M, N, K] = [17, 33, 65];
    const a = rand(M * K, 31);
    const w = rand(N * K + 9, 32);
    const bias = rand(N, 33);
    b.retain(w);
    b.retain(bias);
    b.retain(w); // twice is fine
    const want = new Float32Array(M * N);
    const got = new Float32Array(M * N);
    ref.gemmNT(a, w, M, N, K, bias, want);
    b.gemmNT(a, w, M, N, K, bias, got);
    close(t, got, want, K, 'gemmNT, weight and bias retained');
    ref.gemmNN(a, w, M, N, K, want, 0, 9);
    b.gemmNN(a, w, M, N, K, got, 0, 9);
    close(t, got, want, K, 'gemmNN, retained operand at an offset');
    const xs = [2, 5, 9, 9] as const;
    const x = rand(2 * 5 * 81, 34);
    const cw = rand(10 * 5 * 9, 35);
    b.retain(cw);
    const p: Conv2dParams = { strides: [1, 1], pads: [1, 1, 1, 1], dilations: [1, 1], group: 1 };
    close(t, b.conv2d(x, xs, cw, [10, 5, 3, 3], undefined, p).data, ref.conv2d(x, xs, cw, [10, 5, 3, 3], undefined, p).data, 45, 'conv2d, weight retained');
  });

  t.test('relu (exact; NaN and -0 give +0)', async (t) => {
    const x = Float32Array.from([...rand(37, 9), NaN, -0, 0, Infinity, -Infinity, 1e-40, -1e-40]);
    const want = referenceBackend.relu(x);
    t.equal(maxDiff(b.relu(x), want), 0, 'new output');
    t.ok(Object.is(b.relu(Float32Array.of(-0))[0], 0), '-0 gives +0');
    const out = new Float32Array(x.length);
    t.equal(b.relu(x, out), out, 'writes the given output');
    t.equal(maxDiff(out, want), 0, 'given output');
  });

  t.test('add (exact: one rounding per element, as the reference; in place too)', async (t) => {
    for (const n of [1, 3, 4, 17, 64, 1027]) {
      const a = rand(n, n);
      const c = rand(n, n + 1);
      const want = new Float32Array(n);
      for (let i = 0; i < n; i++) want[i] = a[i]! + c[i]!;
      const out = new Float32Array(n);
      b.add(a, c, out);
      t.equal(maxDiff(out, want), 0, `n = ${n}`);
      const inPlace = a.slice();
      b.add(inPlace, c, inPlace);
      t.equal(maxDiff(inPlace, want), 0, `n = ${n}, out is a`);
    }
    const special = Float32Array.of(NaN, Infinity, -Infinity, 1, -0);
    const other = Float32Array.of(1, -Infinity, 2, NaN, -0);
    const got = new Float32Array(5);
    b.add(special, other, got);
    t.ok(Number.isNaN(got[0]) && Number.isNaN(got[1]) && got[2] === -Infinity && Number.isNaN(got[3]) && Object.is(got[4], -0), 'NaN, infinities and -0 as IEEE addition');
  });
}

// The backends under test: the reference, and both builds of the wasm kernels. Node 20 has relaxed
// SIMD behind a V8 flag, set here before any module compiles (Node 22 has it by default). A
// backend that cannot start here is a skip (a failure in CI).
if (!hasWasmRelaxedSimd()) setFlagsFromString('--experimental-wasm-relaxed-simd');
const backends: KernelBackend[] = [referenceBackend];
const wasmBackends: KernelBackend[] = [];
const wasmErrors = new Map<string, string>();
for (const simd of ['simd128', 'relaxed'] as const) {
  try {
    wasmBackends.push(await wasmBackend({ simd }));
  } catch (e) {
    wasmErrors.set(simd, e instanceof Error ? e.message : String(e));
  }
}
backends.push(...wasmBackends);
const wasmError = wasmErrors.get('simd128');
const label = (b: KernelBackend): string => (b.simd ? `${b.name} (${b.simd})` : b.name);

for (const simd of ['simd128', 'relaxed'] as const) {
  t.test(`wasm-simd backend starts (${simd} build)`, async (t) => {
    const err = wasmErrors.get(simd);
    if (err !== undefined) return missing(t, `wasm-simd backend, ${simd} build: ${err}`);
    const b = wasmBackends.find((k) => k.simd === simd);
    t.equal(b?.simd, simd, `loaded the ${simd} build`);
  });
}
// The threaded kernels (kernels-mt.wasm + worker threads, the SIMD128 build), made to split every call that can split
// (minMacsPerThread 0): odd batches, ragged row / column / channel slices, 2 and 3 threads.
const threaded: Array<{ threads: number; backend: KernelBackend }> = [];
let threadsError: string | undefined;
for (const threads of [2, 3]) {
  try {
    threaded.push({ threads, backend: await wasmBackend({ threads, minMacsPerThread: 0, simd: 'simd128' }) });
  } catch (e) {
    threadsError = e instanceof Error ? e.message : String(e);
  }
}
// Threads and relaxed SIMD together (kernels-mt-relaxed.wasm), 2 threads, every call split.
let threadedRelaxed: KernelBackend | undefined;
let threadedRelaxedError: string | undefined;
try {
  threadedRelaxed = await wasmBackend({ threads: 2, minMacsPerThread: 0, simd: 'relaxed' });
} catch (e) {
  threadedRelaxedError = e instanceof Error ? e.message : String(e);
}

t.test('the wasm-simd backend loads the relaxed build by default where the engine has relaxed SIMD', async (t) => {
  if (wasmError !== undefined) return missing(t, `wasm-simd backend: ${wasmError}`);
  const b = await wasmBackend();
  t.equal(b.simd, hasWasmRelaxedSimd() ? 'relaxed' : 'simd128');
});

t.test('wasm-simd threaded backends start (2 and 3 threads)', async (t) => {
  if (threadsError !== undefined) missing(t, `wasm-simd with threads: ${threadsError}`);
  else t.same(threaded.map((b) => b.backend.threads?.maxThreads()), [2, 3]);
});

t.test('wasm-simd threaded backend with relaxed SIMD starts (kernels-mt-relaxed.wasm), and auto picks it where the engine has relaxed SIMD', async (t) => {
  if (threadedRelaxedError !== undefined) return missing(t, `wasm-simd, relaxed, 2 threads: ${threadedRelaxedError}`);
  t.equal(threadedRelaxed?.simd, 'relaxed', 'the relaxed threaded build');
  t.equal(threadedRelaxed?.threads?.maxThreads(), 2, '2 threads');
  const auto = await wasmBackend({ threads: 2 });
  t.equal(auto.simd, hasWasmRelaxedSimd() ? 'relaxed' : 'simd128', 'simd auto with threads');
  await auto.threads!.close();
});

for (const b of backends) t.test(`conformance: ${label(b)}`, async (t) => conformance(t, b));
if (threadedRelaxed) {
  const b = threadedRelaxed;
  t.test(`conformance: ${label(b)}, 2 threads (every splittable call split)`, async (t) => {
    b.threads!.resetThreadsUsed();
    conformance(t, b);
    t.equal(b.threads!.threadsUsed(), 2, 'some call ran on both threads');
  });
  t.teardown(() => b.threads!.close());
}
for (const { threads, backend } of threaded) {
  t.test(`conformance: ${backend.name}, ${threads} threads (every splittable call split)`, async (t) => {
    backend.threads!.resetThreadsUsed();
    conformance(t, backend);
    t.equal(backend.threads!.threadsUsed(), threads, `some call ran on all ${threads} threads`);
  });
}
t.teardown(() => Promise.all(threaded.map((b) => b.backend.threads!.close())));

t.test('selectBackend', async (t) => {
  t.equal(hasWasmSimd(), true, 'Node 20 has WebAssembly SIMD');
  const def = await selectBackend();
  t.equal(def.backend.name, process.env['FACTORLITE_KERNELS'] ? def.backend.name : 'wasm-simd', 'wasm-simd first by default');
  t.same(def.tried, [{ name: def.backend.name }]);

  const noSimd = async (): Promise<KernelBackend> => {
    throw new Error('this JavaScript engine has WebAssembly but not WebAssembly SIMD (v128)');
  };
  const fell = await selectBackend(['wasm-simd', 'reference'], { loaders: { 'wasm-simd': noSimd } });
  t.equal(fell.backend, referenceBackend, 'falls back to the reference');
  t.equal(fell.tried.length, 2);
  t.match(fell.tried[0]!.error, /not WebAssembly SIMD/, 'says why wasm-simd was skipped');
  t.match(describeSelection(fell.tried), /kernels: reference \(fell back: wasm-simd: .*SIMD/);

  const err = await selectBackend(['wasm-simd', 'gpu'], { loaders: { 'wasm-simd': noSimd } }).catch((e: unknown) => e);
  t.ok(err instanceof BackendError, 'BackendError when nothing starts');
  t.equal((err as BackendError).code, 'NO_KERNEL_BACKEND');
  t.match((err as BackendError).message, /wasm-simd \(.*SIMD.*\); gpu \(unknown backend/, 'lists every failure');
});

t.test('wasm-simd runs an op too big for its arena on the reference kernels', async (t) => {
  if (wasmError !== undefined) return missing(t, `wasm-simd backend: ${wasmError}`);
  const b = await wasmBackend({ arenaLimitBytes: 64 * 1024 });
  const [M, N, K] = [64, 64, 64]; // 3 x 16 KiB operands fit; 129^2 floats do not
  for (const [m, n, k] of [[M, N, K], [129, 129, 3]] as const) {
    const a = rand(m * k, m);
    const w = rand(n * k, n);
    const want = new Float32Array(m * n);
    const got = new Float32Array(m * n);
    ref.gemmNT(a, w, m, n, k, undefined, want);
    b.gemmNT(a, w, m, n, k, undefined, got);
    close(t, got, want, k, `gemmNT ${m}x${n}x${k}`);
  }
  const x = rand(5 * 64 * 64, 3);
  t.equal(maxDiff(b.relu(x), referenceBackend.relu(x)), 0, 'relu of 80 KiB');
});

/**
 * A conv case laid out as a session would: the output and exactly conv2dGeometry().cols of scratch
 * in one arena of b, a guard of 12345s after each; random x, w and bias (if the case has one) with
 * seeds from nextSeed. intact(): nothing was written past the output or the scratch.
 */
function inArena(b: KernelBackend, c: ConvCase, nextSeed: () => number) {
  const g = ref.conv2dGeometry(c.x, c.w, c.p);
  const nOut = g.shape.reduce((u, v) => u * v, 1);
  const GUARD = 16;
  const arena = b.allocArena((nOut + g.cols + 2 * GUARD) * 4);
  const all = new Float32Array(arena.buffer(), arena.byteOffset, nOut + g.cols + 2 * GUARD).fill(12345);
  const out = all.subarray(0, nOut);
  const cols = all.subarray(nOut + GUARD, nOut + GUARD + g.cols);
  const x = rand(c.x.reduce((u, v) => u * v, 1), nextSeed());
  const w = rand(c.w.reduce((u, v) => u * v, 1), nextSeed());
  const bias = c.bias ? rand(c.w[0], nextSeed()) : undefined;
  const intact = () => [...all.subarray(nOut, nOut + GUARD), ...all.subarray(nOut + GUARD + g.cols)].every((v) => v === 12345);
  return { g, arena, out, cols, x, w, bias, intact };
}

for (const b of wasmBackends) t.test(`${label(b)} conv2d: each direct case takes its path, stays inside its scratch, and matches the reference`, async (t) => {
  let seed = 9000;
  for (const { c, path } of DIRECT_CASES) {
    const what = `x [${c.x}] w [${c.w}] ${JSON.stringify(c.p)}`;
    t.equal(b.convPath?.(c.x, c.w, c.p), path, `${what}: path`);
    const { arena, out, cols, x, w, bias, intact } = inArena(b, c, () => seed++);
    b.conv2dInto(x, c.x, w, c.w, bias, c.p, out, cols);
    const want = ref.conv2d(x, c.x, w, c.w, bias, c.p);
    close(t, out, want.data, c.w[1] * c.w[2] * c.w[3], `${what}: in an arena`);
    t.ok(intact(), `${what}: nothing written past the output or the scratch`);
    if (c.w[2] === 1 && c.w[3] === 1 && c.p.group === 1 && (path === '1x1 direct' || path === '1x1 gemm')) {
      const o = b.conv1x1(x, c.x, w, c.w[0], bias);
      close(t, o.data, want.data, c.w[1], `${what}: conv1x1`);
    }
    arena.release();
  }
});

/**
 * conv1x1 where it runs as one GEMM over the batch (conv1x1.c: at least 32 input channels, 8 to 64
 * pixels a multiple of 8) or as the packed kernel (the last four shapes, conv1x1.c:
 * pointwise_packed) adds each output's products in the same order as conv2d's direct 1x1
 * kernel (which conv2d keeps for 1x1 weights), so the two agree bit for bit on every wasm build,
 * threaded (batch and output-channel slices) included; and both agree with the reference.
 */
t.test('conv1x1 over the batch and packed equals conv2d\'s direct 1x1 kernel bit for bit, and the reference', async (t) => {
  const all = [...wasmBackends, ...threaded.map((b) => b.backend), ...(threadedRelaxed ? [threadedRelaxed] : [])];
  if (all.length === 0) return missing(t, `wasm-simd: ${wasmError}`);
  const p1: Conv2dParams = { strides: [1, 1], pads: [0, 0, 0, 0], dilations: [1, 1], group: 1 };
  let seed = 9500;
  for (const b of all) {
    for (const [xs, O] of [[[32, 42, 8, 8], 50], [[1, 64, 8, 8], 64], [[3, 32, 4, 4], 33], [[2, 40, 1, 16], 18],
      [[2, 16, 32, 32], 25], [[3, 25, 16, 16], 14], [[2, 18, 8, 8], 64], [[1, 64, 25, 5], 64]] as const) {
      const x = rand(xs.reduce((u, v) => u * v, 1), seed++);
      const w = rand(O * xs[1], seed++);
      const bias = rand(O, seed++);
      const what = `${label(b)}${b.threads ? `, ${b.threads.maxThreads()} threads` : ''}: x [${xs}] O=${O}`;
      t.equal(b.convPath?.(xs, [O, xs[1], 1, 1], p1), '1x1 direct', `${what}: conv2d runs the direct 1x1 kernel`);
      const got = b.conv1x1(x, xs, w, O, bias);
      const direct = b.conv2d(x, xs, w, [O, xs[1], 1, 1], bias, p1);
      t.ok(got.data.every((v, i) => Object.is(v, direct.data[i])), `${what}: bit-equal to conv2d`);
      close(t, got.data, ref.conv1x1(x, xs, w, O, bias).data, xs[1], `${what}: the reference`);
    }
  }
});

/**
 * The wide depthwise path's copy-free variant (output rows as wide as the input's: taps read the
 * input plane under a mask), and the lane-packed kernel (depthwise.c) that takes the same shapes
 * on rows under 16 outputs. Each case: its path and whether it runs copy-free, then the reference
 * on random values, and again with every other input plane NaN or infinite: a tap in the padding
 * reads the row before or after (the plane next door at the edges), which the mask must zero; the
 * packed kernel must not mix the channels of one block.
 */
const FLAT_CASES: Array<{ c: ConvCase; copyFree: boolean; path?: string }> = [
  { c: conv([1, 64, 25, 5], [64, 1, 3, 3], [1, 1], [1, 1, 1, 1], [1, 1], 64), copyFree: true }, // DS-CNN, 125 outputs
  { c: conv([32, 8, 25, 5], [8, 1, 3, 3], [1, 1], [1, 1, 1, 1], [1, 1], 8), copyFree: true },
  { c: conv([2, 8, 16, 16], [8, 1, 3, 1], [1, 1], [1, 0, 1, 0], [1, 1], 8, false), copyFree: true }, // CP k x 1
  { c: conv([2, 6, 10, 12], [6, 1, 1, 5], [1, 1], [0, 2, 0, 2], [1, 1], 6), copyFree: true }, // CP 1 x k
  { c: conv([1, 6, 12, 10], [6, 1, 5, 1], [1, 1], [0, 0, 0, 0], [1, 1], 6), copyFree: true, path: 'depthwise valid' },
  { c: conv([1, 4, 12, 12], [8, 1, 5, 5], [1, 1], [2, 2, 2, 2], [1, 1], 4), copyFree: true }, // multiplier 2, 25 taps
  { c: conv([1, 3, 16, 15], [3, 1, 3, 3], [1, 1], [2, 1, 2, 3], [2, 2], 3), copyFree: true }, // dilation, uneven pads
  { c: conv([1, 4, 7, 20], [4, 1, 1, 11], [1, 1], [0, 5, 0, 5], [1, 1], 4, false), copyFree: true },
  { c: conv([1, 4, 9, 1], [4, 1, 3, 1], [1, 1], [1, 0, 1, 0], [1, 1], 4), copyFree: true, path: 'depthwise wide' }, // width 1
  { c: conv([2, 5, 6, 2], [5, 1, 3, 3], [1, 1], [1, 1, 1, 1], [1, 1], 5), copyFree: true }, // width 2
  { c: conv([2, 3, 4, 3], [3, 1, 3, 1], [1, 1], [1, 0, 1, 0], [1, 1], 3), copyFree: true, path: 'depthwise wide' }, // width 3
  { c: conv([1, 3, 2, 7], [3, 1, 5, 3], [1, 1], [2, 1, 2, 1], [1, 1], 3), copyFree: true }, // taller kernel than image
  { c: conv([1, 4, 5, 6], [4, 1, 3, 3], [1, 1], [3, 1, 0, 1], [1, 1], 4), copyFree: true }, // rows wholly in padding
  { c: conv([1, 4, 9, 8], [4, 1, 3, 3], [1, 1], [0, 1, 2, 1], [1, 1], 4), copyFree: true },
  { c: conv([1, 2, 3, 4], [2, 1, 1, 1], [1, 1], [0, 0, 0, 0], [1, 1], 2), copyFree: true, path: 'depthwise valid' },
  { c: conv([1, 8, 10, 10], [8, 1, 3, 3], [1, 1], [0, 0, 0, 0], [1, 1], 8), copyFree: false }, // narrower output: padded copy
  { c: conv([1, 4, 9, 9], [4, 1, 3, 3], [1, 1], [1, 0, 1, 2], [1, 1], 4), copyFree: true }, // all width padding on the right
  { c: conv([1, 4, 9, 9], [4, 1, 3, 3], [1, 1], [1, 1, 1, 0], [1, 1], 4), copyFree: false },
  // rows of 16 outputs or more (the wide kernel's)
  { c: conv([1, 5, 12, 17], [5, 1, 3, 3], [1, 1], [1, 1, 1, 1], [1, 1], 5), copyFree: true },
  { c: conv([2, 4, 9, 18], [4, 1, 3, 3], [1, 1], [1, 0, 1, 2], [1, 1], 4), copyFree: true },
  { c: conv([1, 4, 9, 18], [8, 1, 3, 3], [1, 1], [1, 1, 1, 0], [1, 1], 4), copyFree: false },
  { c: conv([1, 4, 6, 16], [4, 1, 1, 1], [1, 1], [0, 0, 0, 0], [1, 1], 4), copyFree: true, path: 'depthwise valid' },
  // lanes across images (2 and 3 channels, batch 3): a NaN plane must not reach the other lanes of its block
  { c: conv([3, 2, 8, 5], [2, 1, 3, 3], [1, 1], [1, 1, 1, 1], [1, 1], 2), copyFree: true },
  { c: conv([3, 3, 9, 6], [3, 1, 3, 3], [1, 1], [1, 1, 1, 1], [1, 1], 3), copyFree: true },
];

const flatBackends = (): KernelBackend[] => [...wasmBackends, ...threaded.map((b) => b.backend), ...(threadedRelaxed ? [threadedRelaxed] : [])];
t.test('depthwise wide (copy-free or not) and packed: which shapes, every edge, NaN and infinities next door', async (t) => {
  if (wasmBackends.length === 0) return missing(t, `wasm-simd: ${wasmError}`);
  let seed = 7000;
  for (const b of flatBackends()) {
    for (const { c, copyFree, path } of FLAT_CASES) {
      const what = `${label(b)}${b.threads ? ` ${b.threads.maxThreads()} threads` : ''} x [${c.x}] w [${c.w}] ${JSON.stringify(c.p)}`;
      const OW = ref.conv2dGeometry(c.x, c.w, c.p).shape[3]!;
      // Rows under 16 outputs: lane-packed, unless the case names its path (k x 1 and valid stages).
      const wantPath = path ?? (OW < 16 ? 'depthwise packed' : 'depthwise wide');
      const flat = copyFree && wantPath === 'depthwise wide';
      t.equal(b.convPath?.(c.x, c.w, c.p), wantPath, `${what}: path`);
      t.equal(b.convCopyFree?.(c.x, c.w, c.p), flat, `${what}: copy-free ${flat}`);
      const { g, arena, out, cols, x, w, bias, intact } = inArena(b, c, () => seed++);
      const K = c.w[2] * c.w[3];
      b.conv2dInto(x, c.x, w, c.w, bias, c.p, out, cols);
      close(t, out, ref.conv2d(x, c.x, w, c.w, bias, c.p).data, K, `${what}: matches the reference`);
      t.ok(intact(), `${what}: nothing written past the output or the scratch`);
      // Odd input planes NaN / +Inf / -Inf: the even planes' outputs must not see them.
      const [N, C, H, W] = c.x;
      const hw = H * W;
      const specials = [NaN, Infinity, -Infinity];
      for (let pl = 1; pl < N * C; pl += 2) x.fill(specials[pl % 3]!, pl * hw, (pl + 1) * hw);
      b.conv2dInto(x, c.x, w, c.w, bias, c.p, out, cols);
      const want = ref.conv2d(x, c.x, w, c.w, bias, c.p).data;
      const O = c.w[0], mult = O / C, P = g.shape[2]! * g.shape[3]!;
      let worst = 0;
      let finite = true;
      for (let n = 0; n < N; n++)
        for (let o = 0; o < O; o++) {
          if ((n * C + Math.floor(o / mult)) % 2 === 1) continue;
          const base = (n * O + o) * P;
          const d = maxDiff(out.subarray(base, base + P), want.subarray(base, base + P));
          worst = Math.max(worst, d);
          finite &&= out.subarray(base, base + P).every(Number.isFinite);
        }
      t.ok(finite && worst <= tolerance(want.filter(Number.isFinite), K), `${what}: planes next to NaN / infinite planes stay exact (max diff ${worst})`);
      arena.release();
    }
  }
});

/**
 * The error bound of Winograd F(2,3) for each output. The kernel computes
 *   y = A^T [ sum_c (G g_c G^T) .* (B^T d_c B) ] A + bias
 * and every coefficient of A, B and G is 0, +-1 or +-1/2 (halving is exact), so to first order
 * each rounding adds at most u = 2^-24 times the same expression taken in absolute values,
 *   Y = |A^T| [ sum_c (|G| |g_c| |G^T|) .* (|B^T| |d_c| |B|) ] |A| + |bias|,
 * once per step an operand passes through: 2 (B^T d B) + 2 (G g G^T, two levels of sums of 3)
 * + 1 (product) + C - 1 (the sum over c) + 4 (A^T M A) + 1 (bias), so |y~ - y| <= (C + 9) u Y.
 * The reference (sums in double, one rounding to float32) adds u |y| <= u Y. Y is at least the
 * direct sum of |w| |x| over the 9 taps and can be several times larger: the transform's error
 * growth. Checked: |got - ref| <= 2 (C + 10) u Y (twice the first-order bound).
 */
function winogradBound(x: Float32Array, c: ConvCase, w: Float32Array, bias: Float32Array | undefined): Float64Array {
  const [N, C, H, W] = c.x;
  const O = c.w[0];
  const [pt, pl] = c.p.pads;
  const g = ref.conv2dGeometry(c.x, c.w, c.p);
  const [OH, OW] = [g.shape[2]!, g.shape[3]!];
  const GA = [[1, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0.5], [0, 0, 1]];
  const BA = [[1, 0, 1, 0], [0, 1, 1, 0], [0, 1, 1, 0], [0, 1, 0, 1]]; // |B^T|
  const AA = [[1, 1, 1, 0], [0, 1, 1, 1]]; // |A^T|
  // |G| |g| |G^T| of every (o, c), 16 values each.
  const ug = new Float64Array(O * C * 16);
  for (let o = 0; o < O; o++)
    for (let ci = 0; ci < C; ci++)
      for (let i = 0; i < 4; i++)
        for (let j = 0; j < 4; j++) {
          let s = 0;
          for (let k = 0; k < 3; k++) for (let l = 0; l < 3; l++) s += GA[i]![k]! * Math.abs(w[((o * C + ci) * 3 + k) * 3 + l]!) * GA[j]![l]!;
          ug[(o * C + ci) * 16 + i * 4 + j] = s;
        }
  const bound = new Float64Array(N * O * OH * OW);
  const vd = new Float64Array(C * 16);
  const m = new Float64Array(16);
  for (let n = 0; n < N; n++)
    for (let ty = 0; ty < OH; ty += 2)
      for (let tx = 0; tx < OW; tx += 2) {
        for (let ci = 0; ci < C; ci++)
          for (let i = 0; i < 4; i++)
            for (let j = 0; j < 4; j++) {
              let s = 0;
              for (let r = 0; r < 4; r++)
                for (let q = 0; q < 4; q++) {
                  const iy = ty + r - pt, ix = tx + q - pl;
                  if (iy >= 0 && iy < H && ix >= 0 && ix < W) s += BA[i]![r]! * Math.abs(x[((n * C + ci) * H + iy) * W + ix]!) * BA[j]![q]!;
                }
              vd[ci * 16 + i * 4 + j] = s;
            }
        for (let o = 0; o < O; o++) {
          m.fill(0);
          for (let ci = 0; ci < C; ci++) for (let e = 0; e < 16; e++) m[e]! += ug[(o * C + ci) * 16 + e]! * vd[ci * 16 + e]!;
          for (let a = 0; a < 2 && ty + a < OH; a++)
            for (let b2 = 0; b2 < 2 && tx + b2 < OW; b2++) {
              let s = bias ? Math.abs(bias[o]!) : 0;
              for (let i = 0; i < 4; i++) for (let j = 0; j < 4; j++) s += AA[a]![i]! * m[i * 4 + j]! * AA[b2]![j]!;
              bound[((n * O + o) * OH + ty + a) * OW + tx + b2] = s;
            }
        }
      }
  return bound;
}

/** Every output within 2 (C + 10) 2^-24 times its bound (winogradBound); reports the worst ratio. */
function winogradClose(t: Test, got: Float32Array, want: Float32Array, bound: Float64Array, C: number, what: string): void {
  const gamma = 2 * (C + 10) * 2 ** -24;
  let worst = 0;
  let bad = -1;
  for (let i = 0; i < want.length; i++) {
    const d = Math.abs(got[i]! - want[i]!);
    const r = d / (gamma * bound[i]! || Number.MIN_VALUE);
    if (!(d <= gamma * bound[i]!) && bad < 0) bad = i;
    if (r > worst) worst = r;
  }
  if (bad < 0 && got.length === want.length) t.pass(`${what} (worst error ${worst.toFixed(3)} of the bound)`);
  else t.fail(`${what}: output ${bad}: ${got[bad]} vs ${want[bad]}, bound ${gamma * bound[bad]!}`);
}

t.test('the cost model prices as Winograd exactly the convs the kernels run as Winograd', async (t) => {
  const b = wasmBackends[0];
  if (!b) return missing(t, `wasm-simd backend: ${wasmError}`);
  let n = 0;
  for (const [C, O] of [[3, 16], [4, 4], [4, 16], [7, 9], [8, 8], [16, 16], [2, 64]])
    for (const k of [1, 3, 5])
      for (const s of [1, 2])
        for (const d of [1, 2])
          for (const [H, W] of [[3, 8], [5, 5], [8, 8], [32, 32]])
            for (const G of C % 2 === 0 && O % 2 === 0 ? [1, 2] : [1]) {
              const c = conv([1, C, H, W], [O, C / G, k, k], [s, s], [1, 1, 1, 1], [d, d], G);
              const g = ref.conv2dGeometry(c.x, c.w, c.p);
              if (g.shape[2]! < 1 || g.shape[3]! < 1) continue;
              const kernels = b.convPath?.(c.x, c.w, c.p) === 'winograd';
              if (kernels !== winogradConv(C, O, k, k, G, c.p.strides, c.p.dilations, g.shape[2]!, g.shape[3]!)) t.fail(`x [${c.x}] w [${c.w}] ${JSON.stringify(c.p)}`);
              n++;
            }
  t.pass(`${n} shapes agree`);
});

t.test('the cost model prices as lane-packed (as valid, as rows) depthwise exactly the convs the kernels run so', async (t) => {
  const b = wasmBackends[0];
  if (!b) return missing(t, `wasm-simd backend: ${wasmError}`);
  let n = 0;
  let packed = 0;
  let valid = 0;
  let rows = 0;
  let hrows = 0;
  let s2k3 = 0;
  for (const [C, mult] of [[1, 1], [1, 3], [1, 4], [1, 5], [3, 1], [8, 1], [8, 2], [64, 1]])
    for (const [kh, kw] of [[1, 1], [3, 3], [3, 1], [1, 5], [9, 9], [1, 3]])
      for (const [s, s2] of [[1, 1], [2, 2], [2, 1], [3, 1], [1, 2]])
        for (const d of [1, 2])
          for (const pads of [[1, 1, 1, 1], [0, 0, 0, 0], [1, 0, 1, 0], [0, 1, 0, 1]] as Array<Conv2dParams['pads']>)
            for (const [H, W] of [[1, 3], [2, 2], [25, 5], [16, 15], [16, 16], [8, 40], [49, 10], [70, 30], [4, 33]]) {
              const O = C * mult;
              const c = conv([1, C, H, W], [O, 1, kh, kw], [s, s2] as [number, number], pads, [d, d], C);
              const g = ref.conv2dGeometry(c.x, c.w, c.p);
              if (g.shape[2]! < 1 || g.shape[3]! < 1) continue;
              const path = b.convPath?.(c.x, c.w, c.p);
              const kernels = path === 'depthwise packed';
              const model = depthwisePackedConv(C, H, W, O, kh, kw, C, c.p.strides, c.p.dilations, g.shape[2]!, g.shape[3]!, c.p.pads);
              if (kernels !== model) t.fail(`x [${c.x}] w [${c.w}] ${JSON.stringify(c.p)}: kernels ${kernels}, cost model ${model}`);
              const validModel = depthwiseValidConv(C, H, W, O, kh, kw, C, c.p.strides, c.p.dilations, c.p.pads, g.shape[2]!, g.shape[3]!);
              if ((path === 'depthwise valid') !== validModel) t.fail(`x [${c.x}] w [${c.w}] ${JSON.stringify(c.p)}: kernels ${path}, cost model valid ${validModel}`);
              const rowsModel = depthwiseRowsConv(C, W, O, kh, kw, C, c.p.strides, c.p.pads, g.shape[3]!);
              if ((path === 'depthwise rows') !== rowsModel) t.fail(`x [${c.x}] w [${c.w}] ${JSON.stringify(c.p)}: kernels ${path}, cost model rows ${rowsModel}`);
              if (rowsModel) rows++;
              const hrowsModel = depthwiseHrowsConv(C, H, W, O, kh, kw, C, c.p.strides, c.p.dilations, c.p.pads, g.shape[2]!, g.shape[3]!);
              if ((path === 'depthwise hrows') !== hrowsModel) t.fail(`x [${c.x}] w [${c.w}] ${JSON.stringify(c.p)}: kernels ${path}, cost model hrows ${hrowsModel}`);
              if (hrowsModel) hrows++;
              const s2k3Model = depthwiseS2k3Conv(C, H, W, O, kh, kw, C, c.p.strides, c.p.dilations, c.p.pads, g.shape[2]!, g.shape[3]!);
              if ((path === 'depthwise s2k3') !== s2k3Model) t.fail(`x [${c.x}] w [${c.w}] ${JSON.stringify(c.p)}: kernels ${path}, cost model s2k3 ${s2k3Model}`);
              if (s2k3Model) s2k3++;
              n++;
              if (kernels) packed++;
              if (validModel) valid++;
            }
  t.ok(valid > 20, `'depthwise valid' occurs (${valid} of ${n})`);
  t.ok(rows > 10, `'depthwise rows' occurs (${rows} of ${n})`);
  t.ok(hrows > 10, `'depthwise hrows' occurs (${hrows} of ${n})`);
  t.ok(s2k3 > 5, `'depthwise s2k3' occurs (${s2k3} of ${n})`);
  t.ok(packed > 50 && packed < n - 50, `both answers occur (${packed} of ${n} packed)`);
  t.pass(`${n} shapes agree`);
});

{
  const runs: Array<{ name: string; b: KernelBackend }> = [
    ...wasmBackends.map((b) => ({ name: label(b), b })),
    ...threaded.filter((r) => r.threads === 2).map((r) => ({ name: `${label(r.backend)}, 2 threads`, b: r.backend })),
    ...(threadedRelaxed ? [{ name: `${label(threadedRelaxed)}, 2 threads`, b: threadedRelaxed }] : []),
  ];
  for (const { name, b } of runs) t.test(`${name} conv2d: Winograd F(2,3) within its error bound, weights prepared once or per call, inside its scratch`, async (t) => {
    if (b.threads) b.threads.resetThreadsUsed();
    let seed = 7000;
    const live0 = b.held!().liveBytes;
    for (const c of WINO_CASES) {
      const what = `x [${c.x}] w [${c.w}] pads [${c.p.pads}]${c.bias ? '' : ' no bias'}`;
      t.equal(b.convPath?.(c.x, c.w, c.p), 'winograd', `${what}: path`);
      const { arena, out, cols, x, w, bias, intact } = inArena(b, c, () => seed++);
      const want = ref.conv2d(x, c.x, w, c.w, bias, c.p).data;
      const bound = winogradBound(x, c, w, bias);
      // Not prepared: transformed per call in the scratch (or, without room, the direct path).
      b.conv2dInto(x, c.x, w, c.w, bias, c.p, out, cols);
      winogradClose(t, out, want, bound, c.x[1], `${what}: per call`);
      t.ok(intact(), `${what}: nothing written past the output or the scratch`);
      // Prepared: retained, transformed once (the views are made again: preparing may grow the memory).
      b.retain(w);
      b.prepareConv?.(w, c.w, c.p);
      const g = ref.conv2dGeometry(c.x, c.w, c.p);
      const nOut = g.shape.reduce((u, v) => u * v, 1);
      const all = new Float32Array(arena.buffer(), arena.byteOffset, nOut + g.cols + 32);
      const out2 = all.subarray(0, nOut).fill(0);
      b.conv2dInto(x, c.x, w, c.w, bias, c.p, out2, all.subarray(nOut + 16, nOut + 16 + g.cols));
      winogradClose(t, out2, want, bound, c.x[1], `${what}: prepared`);
      t.ok([...all.subarray(nOut, nOut + 16), ...all.subarray(nOut + 16 + g.cols)].every((v) => v === 12345), `${what}: prepared, inside its scratch`);
      b.unretain(w);
      arena.release();
    }
    t.equal(b.held!().liveBytes, live0, 'the transformed weights are freed with the retained ones');
    if (b.threads) t.equal(b.threads.threadsUsed(), 2, 'some call ran on both threads');
  });
}

/**
 * CP's two depthwise stages in one pass (dwrows.c, cp_separable) against the reference's two
 * convolutions (k_h x 1 with the vertical stride, pads and dilation, then 1 x k_w with the
 * horizontal ones) on every wasm build, threaded included: ResNet-8's stages on 32 x 32, 16 x 16 and
 * 8 x 8, a vertical stride of 2 and 3, dilation, uneven pads, rows under 16 and under 4 wide; a
 * horizontal stride of 2 is refused (false) and leaves the output alone, as are batches above 1 on
 * the threaded builds (their two conv2d calls split over the threads).
 */
t.test('cpSeparableInto equals the two depthwise convolutions of the reference', async (t) => {
  const all = [...wasmBackends, ...threaded.map((b) => b.backend), ...(threadedRelaxed ? [threadedRelaxed] : [])];
  if (all.length === 0) return missing(t, `wasm-simd: ${wasmError}`);
  const cases: Array<{ x: [number, number, number, number]; kh: number; kw: number; v: Conv2dParams; h: Conv2dParams; taken: boolean }> = [];
  const step = (sh: number, sw: number, pt: number, pb: number, pl: number, pr: number, dh = 1, dw = 1) => ({
    v: { strides: [sh, 1] as [number, number], pads: [pt, 0, pb, 0] as Conv2dParams['pads'], dilations: [dh, 1] as [number, number], group: 0 },
    h: { strides: [1, sw] as [number, number], pads: [0, pl, 0, pr] as Conv2dParams['pads'], dilations: [1, dw] as [number, number], group: 0 },
  });
  const add = (x: [number, number, number, number], kh: number, kw: number, s: ReturnType<typeof step>, taken = true) =>
    cases.push({ x, kh, kw, v: { ...s.v, group: x[1] }, h: { ...s.h, group: x[1] }, taken });
  add([2, 25, 32, 32], 3, 3, step(1, 1, 1, 1, 1, 1));
  add([1, 52, 16, 16], 3, 3, step(1, 1, 1, 1, 1, 1));
  add([3, 18, 8, 8], 3, 3, step(1, 1, 1, 1, 1, 1));
  add([2, 4, 11, 20], 3, 3, step(2, 1, 1, 1, 1, 1));
  add([1, 3, 13, 5], 5, 3, step(3, 1, 2, 0, 2, 1, 2, 2));
  add([1, 2, 6, 7], 2, 4, step(1, 1, 0, 1, 3, 0));
  add([1, 40, 32, 32], 3, 3, step(2, 2, 1, 1, 1, 1), false);
  let seed = 9800;
  for (const b of all) {
    if (!b.cpSeparableInto) {
      t.fail(`${label(b)}: no cpSeparableInto`);
      continue;
    }
    for (const c of cases) {
      const R = c.x[1];
      const x = rand(c.x.reduce((u, v) => u * v, 1), seed++);
      const kH = rand(R * c.kh, seed++);
      const kW = rand(R * c.kw, seed++);
      const v = ref.conv2d(x, c.x, kH, [R, 1, c.kh, 1], undefined, c.v);
      const want = ref.conv2d(v.data, v.shape, kW, [R, 1, 1, c.kw], undefined, c.h);
      const out = new Float32Array(want.data.length).fill(12345);
      const what = `${label(b)}${b.threads ? `, ${b.threads.maxThreads()} threads` : ''}: x [${c.x}] ${c.kh}x1 ${JSON.stringify(c.v)} then 1x${c.kw} ${JSON.stringify(c.h)}`;
      const ran = b.cpSeparableInto(x, c.x, kH, kW, c.kh, c.kw, c.v, c.h, out);
      t.equal(ran, c.taken && !(b.threads && c.x[0] > 1), `${what}: taken (threaded: batch 1 only)`);
      if (ran) close(t, out, want.data, c.kh * c.kw, what);
      else t.ok(out.every((u) => u === 12345), `${what}: output untouched`);
    }
  }
});

t.test('the cost model\'s pointwisePath names the kernel conv1x1 runs (conv1x1.c: conv1x1_path)', async (t) => {
  if (!hasWasmSimd()) return missing(t, 'WebAssembly SIMD unavailable');
  const m = (await WebAssembly.instantiate(readKernelModule())).instance.exports as { conv1x1_path(C: number, HW: number, O: number): number };
  const names = ['direct', 'batch', 'packed'];
  const seen = new Set<string>();
  let n = 0;
  for (const C of [1, 3, 16, 25, 32, 64, 1024, 1025])
    for (const HW of [1, 7, 8, 16, 25, 64, 72, 95, 96, 125, 256, 1024])
      for (const O of [1, 3, 4, 16, 18, 25, 64]) {
        const kernels = names[m.conv1x1_path(C, HW, O)];
        const model = pointwisePath(C, HW, O);
        if (kernels !== model) t.fail(`C ${C} HW ${HW} O ${O}: kernels ${kernels}, cost model ${model}`);
        seen.add(model);
        n++;
      }
  t.same([...seen].sort(), ['batch', 'direct', 'packed'], 'all three occur');
  t.pass(`${n} shapes agree`);
});

t.test('committed kernels.wasm, kernels-relaxed.wasm, kernels-mt.wasm and kernels-mt-relaxed.wasm equal a fresh build', async (t) => {
  const have = (cmd: string): boolean => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
  for (const tool of ['clang', 'wasm-ld', 'clang-16']) {
    if (!have(tool)) return missing(t, `${tool} not installed (Debian packages clang, lld, clang-16 and lld-16)`);
  }
  const r = spawnSync('bash', [resolve(REPO_ROOT, 'scripts/build-wasm.sh'), '--check'], { encoding: 'utf8' });
  t.equal(r.status, 0, `scripts/build-wasm.sh --check: ${r.stdout}${r.stderr}`);
});

t.test('maxPool 2x2 stride 2 keeps the reference order on NaN, -0 and infinities (bit for bit)', async (t) => {
  if (!hasWasmSimd()) return missing(t, 'WebAssembly SIMD unavailable');
  const b = await wasmBackend();
  const specials = [NaN, -0, 0, Infinity, -Infinity, 1, -1, 3.5];
  const shape = [1, 2, 10, 18];
  const n = shape.reduce((u, v) => u * v, 1);
  const x = new Float32Array(n);
  let s = 12345;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    x[i] = specials[s % specials.length]!;
  }
  const p: PoolParams = { kernel: [2, 2], strides: [2, 2], pads: [0, 0, 0, 0], dilations: [1, 1], ceilMode: false };
  const want = ref.maxPool(x, shape, p).data;
  const got = b.maxPool(x, shape, p).data;
  let same = got.length === want.length;
  for (let i = 0; same && i < want.length; i++) same = Object.is(got[i], want[i]);
  t.ok(same, 'every output is the reference value (Object.is)');
});
