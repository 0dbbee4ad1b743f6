// cp_conv2d (CPAC-Conv): a_in [R, I], k_h [R, kh], k_w [R, kw], a_out [O, R]. Everything the runtime knows of the kind.
import { conv1x1Step, convStep as convCost, shapeOf } from '../cost/steps.js';
import { checkRange, need, RebuildError, sumFlops, type Rebuilder, type RebuildWork, type WeightLookup } from '../exec/rebuilder.js';
import { bindRebuild, rebuildScratchFloats, rebuilderFor } from '../exec/strategy.js';
import { conv as convAttrs } from '../format/attrSpec.js';
import type { GraphNode } from '../ir.js';
import type { KernelBackend } from '../kernels/backend.js';
import type { Conv2dParams } from '../kernels/reference.js';
import { conv2dGeometry } from '../kernels/reference.js';
import { checkNchw, convGeometry, convParams, convStep, size } from './convAttrs.js';
import { carve, checkOutput, expectShape, firstInput, LayerError, type FactorPart, type LayerKind } from './kind.js';
import { convShape } from './shapeRules.js';

function steps(p: Conv2dParams, R: number): { vertical: Conv2dParams; horizontal: Conv2dParams } {
  return {
    vertical: { strides: [p.strides[0], 1], pads: [p.pads[0], 0, p.pads[2], 0], dilations: [p.dilations[0], 1], group: R },
    horizontal: { strides: [1, p.strides[1]], pads: [0, p.pads[1], 0, p.pads[3]], dilations: [1, p.dilations[1]], group: R },
  };
}

/**
 * Floats of the three R-channel maps a batch may hold at once (1 MiB). A batch whose maps would
 * be larger runs through the chain a chunk of images at a time (ResNet-8's first CP convs: 300 KB
 * of maps per 32 x 32 image, 9.8 MB at batch 32, which was most of the session's arena).
 */
export const CP_CHUNK_FLOATS = 1 << 18;

/**
 * Most images the chain runs at once for a batch of N (all N where the maps fit CP_CHUNK_FLOATS).
 * Chunks are split evenly (cpChunks), so each has more than half of this. The depthwise kernel
 * fills the lanes of a layer of fewer than 4 channels from the next images (depthwise.c), so there
 * a chunk keeps at least 4 images, else 2 (on the threaded kernels a batch of one image takes
 * another path, wasmKernels cpSeparableInto, which need not round the same). Every kernel of the
 * chain computes each image on its own, so the chunks give the same floats as one call over the
 * batch (test/runtime/layers/cpChunks.test.ts).
 */
export function cpChunkImages(N: number, R: number, perImageFloats: number): number {
  const least = R >= 4 ? 2 : 4;
  const c = Math.max(2 * least, Math.floor(CP_CHUNK_FLOATS / Math.max(1, perImageFloats)));
  return Math.min(N, c);
}

/** [start, end) images of each chunk: ceil(N / c) chunks whose sizes differ by at most one. */
export function cpChunks(N: number, c: number): Array<[number, number]> {
  const k = Math.max(1, Math.ceil(N / Math.max(1, c)));
  const out: Array<[number, number]> = [];
  for (let i = 0; i < k; i++) out.push([Math.floor((i * N) / k), Math.floor(((i + 1) * N) / k)]);
  return out;
}

/**
 * Scratch of one chunk: the three R-channel maps for `chunk` images (shapes with the chunk as batch),
 * then the larger depthwise step's im2col columns (per image, not per batch).
 */
function cpScratch(xShape: readonly number[], R: number, kh: number, kw: number, p: Conv2dParams) {
  const { vertical, horizontal } = steps(p, R);
  const N = xShape[0]!;
  const one = [1, R, xShape[2]!, xShape[3]!];
  const gv1 = conv2dGeometry(one, [R, 1, kh, 1], vertical);
  const gh1 = conv2dGeometry(gv1.shape, [R, 1, 1, kw], horizontal);
  const chunk = cpChunkImages(N, R, size(one) + size(gv1.shape) + size(gh1.shape));
  const aShape = [chunk, R, xShape[2]!, xShape[3]!];
  const gv = conv2dGeometry(aShape, [R, 1, kh, 1], vertical);
  const gh = conv2dGeometry(gv.shape, [R, 1, 1, kw], horizontal);
  return { chunk, aShape, vShape: gv.shape, hShape: gh.shape, cols: Math.max(gv.cols, gh.cols), vertical, horizontal };
}

/**
 * W[o, i, y, x] = sum_r a_out[o, r] a_in[r, i] k_h[r, y] k_w[r, x]. k_h k_w is formed once
 * (hw [R, kh * kw]); each row scales a_in by a_out[o] (A [R, I]) and is A^T hw, one GEMM.
 */
function cpRebuilder(node: GraphNode, weight: WeightLookup, k: KernelBackend): Rebuilder {
  const aIn = need(node, weight, 'a_in', 2);
  const kH = need(node, weight, 'k_h', 2);
  const kW = need(node, weight, 'k_w', 2);
  const aOut = need(node, weight, 'a_out', 2);
  const [R, I] = aIn.shape as [number, number];
  const kh = kH.shape[1]!;
  const kw = kW.shape[1]!;
  const O = aOut.shape[0]!;
  if (kH.shape[0] !== R || kW.shape[0] !== R || aOut.shape[1] !== R) throw new RebuildError(node, 'CP factors disagree on the rank');
  const S = kh * kw;
  const hw = new Float32Array(R * S);
  for (let r = 0; r < R; r++) for (let y = 0; y < kh; y++) for (let x = 0; x < kw; x++) hw[r * S + y * kw + x] = kH.data[r * kh + y]! * kW.data[r * kw + x]!;
  k.retain(hw);
  const A = new Float32Array(R * I);
  const cols = I * S;
  const work = (a: number, b: number): RebuildWork[] => [
    { what: 'a_out * a_in', flops: (b - a) * R * I, calls: 0, m: 0 },
    { what: 'A^T hw', flops: 2 * (b - a) * I * S * R, calls: b - a, m: I },
  ];
  return {
    op: node.op, rows: O, cols, scratchFloats: hw.length + A.length, work,
    flops: (a, b) => sumFlops(work(a, b)),
    rowsInto(ra, rb, out, off = 0) {
      checkRange(this, ra, rb, out, off, cols);
      for (let o = ra; o < rb; o++) {
        for (let r = 0; r < R; r++) {
          const c = aOut.data[o * R + r]!;
          for (let i = 0; i < I; i++) A[r * I + i] = c * aIn.data[r * I + i]!;
        }
        k.gemmTN(A, hw, I, S, R, out, 0, 0, off + (o - ra) * cols);
      }
    },
  };
}

const factor: FactorPart = {
  ranks: (_node, w) => [w('a_in')![0]!],
  kernel(w) {
    const kh = w('k_h');
    const kw = w('k_w');
    return kh && kw ? [kh[1]!, kw[1]!] : undefined;
  },
  contract(node, shapes, B, sample) {
    const [R, I] = shapeOf(node, shapes, 'a_in', 2) as [number, number];
    const kh = shapeOf(node, shapes, 'k_h', 2)[1]!;
    const kw = shapeOf(node, shapes, 'k_w', 2)[1]!;
    const O = shapeOf(node, shapes, 'a_out', 2)[0]!;
    const [, H, W] = sample as [number, number, number];
    const { OH, OW } = convGeometry(node, H, W, kh, kw);
    const p = convParams(node);
    return {
      steps: [
        conv1x1Step('1x1 a_in', B, I, H * W, R),
        convCost('depthwise k_h', B, R, H, W, R, R, kh, 1, OH, W, { strides: [p.strides[0], 1], dilations: [p.dilations[0], 1], pads: [p.pads[0], 0, p.pads[2], 0] }),
        convCost('depthwise k_w', B, R, OH, W, R, R, 1, kw, OH, OW, { strides: [1, p.strides[1]], dilations: [1, p.dilations[1]], pads: [0, p.pads[1], 0, p.pads[3]] }),
        conv1x1Step('1x1 a_out', B, R, OH * OW, O),
      ],
    };
  },
  rebuild: cpRebuilder,
};

/**
 * CPAC-Conv: the CP kernel applied as a chain of small convolutions,
 * 1x1 (I -> R), depthwise kh x 1, depthwise 1 x kw, 1x1 (R -> O).
 * The vertical step carries the vertical stride/pad/dilation, the horizontal step the horizontal ones.
 */
export const cpConv2d: LayerKind = {
  ops: ['cp_conv2d'],
  attrs: convAttrs,
  outputShape: (node, ins, w) => convShape(node, ins[0]!, w('a_out')[0]!, w('k_h')[1]!, w('k_w')[1]!),
  prepare(node, ctx) {
    const p = convParams(node);
    if (p.group !== 1) throw new LayerError(node, 'grouped conv cannot be CP factorised');
    const aIn = ctx.weight('a_in');
    const kH = ctx.weight('k_h');
    const kW = ctx.weight('k_w');
    const aOut = ctx.weight('a_out');
    if ([aIn, kH, kW, aOut].some((w) => w.shape.length !== 2)) throw new LayerError(node, 'CP factors must be 2-D');
    const [R, I] = aIn.shape as [number, number];
    expectShape(node, 'k_h', kH, [R, -1]);
    expectShape(node, 'k_w', kW, [R, -1]);
    expectShape(node, 'a_out', aOut, [-1, R]);
    const kh = kH.shape[1]!;
    const kw = kW.shape[1]!;
    const O = aOut.shape[0]!;
    const b = ctx.optionalWeight('bias');
    if (b) expectShape(node, 'bias', b, [O]);
    const khShape = [R, 1, kh, 1];
    const kwShape = [R, 1, 1, kw];
    const rebuilder = rebuilderFor(node, ctx, factor);
    return {
      prepareStrategy(strategy) {
        if (strategy.use === 'rebuild') rebuilder();
      },
      bind(inputs, output, scratch, strategy) {
        const x = firstInput(node, inputs);
        checkNchw(node, x.shape, I);
        const s = cpScratch(x.shape, R, kh, kw, p);
        convStep(node, s.vShape, kwShape, s.horizontal);
        if (!(s.vShape[2]! >= 1)) throw new LayerError(node, `output would be empty for input [${x.shape}]`);
        const N = x.shape[0]!;
        checkOutput(node, output, [N, O, s.hShape[2]!, s.hShape[3]!]);
        const rebuild = bindRebuild(node, ctx, rebuilder, [kh, kw], strategy, x, output, scratch);
        if (rebuild) return rebuild;
        const [a, v, h, cols] = carve(node, scratch, size(s.aShape), size(s.vShape), size(s.hShape), s.cols) as Float32Array[] as [Float32Array, Float32Array, Float32Array, Float32Array];
        const { vertical, horizontal } = s;
        const xd = x.data;
        const y = output.data;
        const bias = b?.data;
        const [, , H, W] = x.shape as [number, number, number, number];
        const [, , VH, VW] = s.vShape as [number, number, number, number];
        const [, , OH, OW] = s.hShape as [number, number, number, number];
        // One image's floats in x, a, v, h and y.
        const xImg = I * H * W, aImg = R * H * W, vImg = R * VH * VW, hImg = R * OH * OW, yImg = O * OH * OW;
        // Per chunk: its shapes and its views of the input, the maps and the output (made once here).
        const runs = cpChunks(N, s.chunk).map(([n0, n1]) => {
          const n = n1 - n0;
          return {
            xs: [n, I, H, W], aShape: [n, R, H, W], vShape: [n, R, VH, VW], hShape: [n, R, OH, OW],
            x: xd.subarray(n0 * xImg, n1 * xImg), a: a.subarray(0, n * aImg), v: v.subarray(0, n * vImg),
            h: h.subarray(0, n * hImg), y: y.subarray(n0 * yImg, n1 * yImg),
          };
        });
        // wasm-simd runs the two depthwise stages in one pass where it takes the shapes (no v map).
        const separable = ctx.kernels.cpSeparableInto;
        return () => {
          for (const c of runs) {
            ctx.kernels.conv1x1Into(c.x, c.xs, aIn.data, R, undefined, c.a);
            if (!separable?.(c.a, c.aShape, kH.data, kW.data, kh, kw, vertical, horizontal, c.h)) {
              ctx.kernels.conv2dInto(c.a, c.aShape, kH.data, khShape, undefined, vertical, c.v, cols);
              ctx.kernels.conv2dInto(c.v, c.vShape, kW.data, kwShape, undefined, horizontal, c.h, cols);
            }
            ctx.kernels.conv1x1Into(c.h, c.hShape, aOut.data, O, bias, c.y);
          }
        };
      },
    };
  },
  scratchFloats(node, inputShapes, outputShape, weightShape, strategy) {
    if (strategy?.use === 'rebuild') return rebuildScratchFloats(node, factor, inputShapes, outputShape, weightShape, strategy);
    const aIn = weightShape('a_in');
    const kH = weightShape('k_h');
    const kW = weightShape('k_w');
    const x = inputShapes[0];
    if (!aIn || !kH || !kW || !x || x.length !== 4) return 0;
    const s = cpScratch(x, aIn[0]!, kH[1]!, kW[1]!, convParams(node));
    return size(s.aShape) + size(s.vShape) + size(s.hShape) + s.cols;
  },
  mcu: {
    scratchFloats(_node, ins, out, w) {
      const x = ins[0] ?? [];
      const R = w('a_in')[0]!;
      const hw = x[2]! * x[3]!;
      const ohw = out[2]! * out[3]!;
      // 1x1 projection [R, H, W] (reused for the horizontal pass [R, OH, OW]) + vertical pass [R, OH, W]
      return R * Math.max(hw, ohw) + R * out[2]! * x[3]!;
    },
    produces: 'conv-pool',
  },
  factor,
};
