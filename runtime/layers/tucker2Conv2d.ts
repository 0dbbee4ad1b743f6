// tucker2_conv2d: u_in [r1, I], core [r2, r1, kh, kw], u_out [O, r2]. Everything the runtime knows of the kind.
import { conv1x1Step, convStep as convCost, shapeOf } from '../cost/steps.js';
import { checkRange, need, RebuildError, sumFlops, type Rebuilder, type RebuildWork, type WeightLookup } from '../exec/rebuilder.js';
import { bindRebuild, rebuildScratchFloats, rebuilderFor } from '../exec/strategy.js';
import { conv as convAttrs } from '../format/attrSpec.js';
import type { GraphNode } from '../ir.js';
import type { KernelBackend } from '../kernels/backend.js';
import { conv2dGeometry } from '../kernels/reference.js';
import { checkNchw, convGeometry, convParams, convStep, size } from './convAttrs.js';
import { carve, checkOutput, expectShape, firstInput, LayerError, type FactorPart, type LayerKind } from './kind.js';
import { convShape } from './shapeRules.js';

/**
 * W[o, i, y, x] = sum_b u_out[o, b] sum_a core[b, a, y, x] u_in[a, i]. A chunk of rows first gives
 * T = u_out[chunk] core ([rows, r1 * kh * kw], one GEMM), then each row is u_in^T T[o] ([I, kh * kw]).
 */
function tucker2Rebuilder(node: GraphNode, weight: WeightLookup, k: KernelBackend): Rebuilder {
  const uIn = need(node, weight, 'u_in', 2);
  const core = need(node, weight, 'core', 4);
  const uOut = need(node, weight, 'u_out', 2);
  const [r1, I] = uIn.shape as [number, number];
  const [r2, c1, kh, kw] = core.shape as [number, number, number, number];
  const [O, c2] = uOut.shape as [number, number];
  if (c1 !== r1 || c2 !== r2) throw new RebuildError(node, `core [${core.shape}] does not match u_in [${uIn.shape}] and u_out [${uOut.shape}]`);
  const S = kh * kw;
  const cols = I * S;
  // T for a chunk of rows, at most 4096 floats (16 KiB).
  const chunk = Math.max(1, Math.min(O, Math.floor(4096 / (r1 * S))));
  const t = new Float32Array(chunk * r1 * S);
  const work = (a: number, b: number): RebuildWork[] => {
    const n = b - a;
    return [
      { what: 'u_out core', flops: 2 * n * r2 * r1 * S, calls: Math.ceil(n / chunk), m: Math.min(chunk, n) },
      { what: 'u_in^T t', flops: 2 * n * I * r1 * S, calls: n, m: I },
    ];
  };
  return {
    op: node.op, rows: O, cols, scratchFloats: t.length, work,
    flops: (a, b) => sumFlops(work(a, b)),
    rowsInto(ra, rb, out, off = 0) {
      checkRange(this, ra, rb, out, off, cols);
      for (let c0 = ra; c0 < rb; c0 += chunk) {
        const c1 = Math.min(rb, c0 + chunk);
        k.gemmNN(uOut.data, core.data, c1 - c0, r1 * S, r2, t, c0 * r2, 0, 0);
        for (let o = c0; o < c1; o++) k.gemmTN(uIn.data, t, I, S, r1, out, 0, (o - c0) * r1 * S, off + (o - ra) * cols);
      }
    },
  };
}

const factor: FactorPart = {
  ranks: (_node, w) => [w('core')![0]!, w('core')![1]!],
  kernel(w) {
    const c = w('core');
    return c ? [c[2]!, c[3]!] : undefined;
  },
  contract(node, shapes, B, sample) {
    const [r1, I] = shapeOf(node, shapes, 'u_in', 2) as [number, number];
    const [r2, , kh, kw] = shapeOf(node, shapes, 'core', 4) as [number, number, number, number];
    const O = shapeOf(node, shapes, 'u_out', 2)[0]!;
    const [, H, W] = sample as [number, number, number];
    const { OH, OW } = convGeometry(node, H, W, kh, kw);
    const p = convParams(node);
    return {
      steps: [
        conv1x1Step('1x1 u_in', B, I, H * W, r1),
        convCost('core conv', B, r1, H, W, r2, 1, kh, kw, OH, OW, { strides: p.strides, dilations: p.dilations }),
        conv1x1Step('1x1 u_out', B, r2, OH * OW, O),
      ],
    };
  },
  rebuild: tucker2Rebuilder,
};


/**
 * Tucker-2 conv: 1x1 (I -> r1), core conv (r1 -> r2, carries stride/pad/dilation), 1x1 (r2 -> O).
 * Scratch: the r1-channel map, the r2-channel map, the core conv's im2col columns.
 */
export const tucker2Conv2d: LayerKind = {
  ops: ['tucker2_conv2d'],
  attrs: convAttrs,
  outputShape(node, ins, w) {
    const c = w('core');
    return convShape(node, ins[0]!, w('u_out')[0]!, c[2]!, c[3]!);
  },
  prepare(node, ctx) {
    const p = convParams(node);
    if (p.group !== 1) throw new LayerError(node, 'grouped conv cannot be Tucker-2 factorised');
    const uIn = ctx.weight('u_in');
    const core = ctx.weight('core');
    const uOut = ctx.weight('u_out');
    if (uIn.shape.length !== 2 || core.shape.length !== 4 || uOut.shape.length !== 2) {
      throw new LayerError(node, 'u_in, u_out must be 2-D and core 4-D');
    }
    const [r1, I] = uIn.shape as [number, number];
    const r2 = core.shape[0]!;
    expectShape(node, 'core', core, [r2, r1, -1, -1]);
    expectShape(node, 'u_out', uOut, [-1, r2]);
    const O = uOut.shape[0]!;
    const b = ctx.optionalWeight('bias');
    if (b) expectShape(node, 'bias', b, [O]);
    ctx.kernels.prepareConv?.(core.data, core.shape, p);
    const rebuilder = rebuilderFor(node, ctx, factor);
    return {
      prepareStrategy(strategy) {
        if (strategy.use === 'rebuild') rebuilder();
      },
      bind(inputs, output, scratch, strategy) {
        const x = firstInput(node, inputs);
        checkNchw(node, x.shape, I);
        const aShape = [x.shape[0]!, r1, x.shape[2]!, x.shape[3]!];
        const g = convStep(node, aShape, core.shape, p);
        const cShape = g.shape;
        checkOutput(node, output, [cShape[0]!, O, cShape[2]!, cShape[3]!]);
        const rebuild = bindRebuild(node, ctx, rebuilder, [core.shape[2]!, core.shape[3]!], strategy, x, output, scratch);
        if (rebuild) return rebuild;
        const [a, c, cols] = carve(node, scratch, size(aShape), size(cShape), g.cols) as [Float32Array, Float32Array, Float32Array];
        const xd = x.data;
        const xs = x.shape;
        const y = output.data;
        const bias = b?.data;
        return () => {
          ctx.kernels.conv1x1Into(xd, xs, uIn.data, r1, undefined, a);
          ctx.kernels.conv2dInto(a, aShape, core.data, core.shape, undefined, p, c, cols);
          ctx.kernels.conv1x1Into(c, cShape, uOut.data, O, bias, y);
        };
      },
    };
  },
  scratchFloats(node, inputShapes, outputShape, weightShape, strategy) {
    if (strategy?.use === 'rebuild') return rebuildScratchFloats(node, factor, inputShapes, outputShape, weightShape, strategy);
    const core = weightShape('core');
    const x = inputShapes[0];
    if (!core || !x || core.length !== 4 || x.length !== 4) return 0;
    const aShape = [x[0]!, core[1]!, x[2]!, x[3]!];
    const g = conv2dGeometry(aShape, core, convParams(node));
    return size(aShape) + size(g.shape) + g.cols;
  },
  mcu: {
    scratchFloats(_node, ins, out, w) {
      const x = ins[0] ?? [];
      return w('u_in')[0]! * x[2]! * x[3]! + w('core')[0]! * out[2]! * out[3]!;
    },
    produces: 'conv-pool',
  },
  factor,
};
