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

/** Scratch floats: the three R-channel maps, then the larger depthwise step's im2col columns. */
function cpScratch(xShape: readonly number[], R: number, kh: number, kw: number, p: Conv2dParams) {
  const { vertical, horizontal } = steps(p, R);
  const aShape = [xShape[0]!, R, xShape[2]!, xShape[3]!];
  const gv = conv2dGeometry(aShape, [R, 1, kh, 1], vertical);
  const gh = conv2dGeometry(gv.shape, [R, 1, 1, kw], horizontal);
  return { aShape, vShape: gv.shape, hShape: gh.shape, cols: Math.max(gv.cols, gh.cols), vertical, horizontal };
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
        checkOutput(node, output, [s.hShape[0]!, O, s.hShape[2]!, s.hShape[3]!]);
        const rebuild = bindRebuild(node, ctx, rebuilder, [kh, kw], strategy, x, output, scratch);
        if (rebuild) return rebuild;
        const [a, v, h, cols] = carve(node, scratch, size(s.aShape), size(s.vShape), size(s.hShape), s.cols) as Float32Array[] as [Float32Array, Float32Array, Float32Array, Float32Array];
        const { aShape, vShape, hShape, vertical, horizontal } = s;
        const xd = x.data;
        const xs = x.shape;
        const y = output.data;
        const bias = b?.data;
        // wasm-simd runs the two depthwise stages in one pass where it takes the shapes (no v map).
        const separable = ctx.kernels.cpSeparableInto;
        return () => {
          ctx.kernels.conv1x1Into(xd, xs, aIn.data, R, undefined, a);
          if (!separable?.(a, aShape, kH.data, kW.data, kh, kw, vertical, horizontal, h)) {
            ctx.kernels.conv2dInto(a, aShape, kH.data, khShape, undefined, vertical, v, cols);
            ctx.kernels.conv2dInto(v, vShape, kW.data, kwShape, undefined, horizontal, h, cols);
          }
          ctx.kernels.conv1x1Into(h, hShape, aOut.data, O, bias, y);
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
