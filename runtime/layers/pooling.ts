import { attrInts, attrNum, type GraphNode } from '../ir.js';
import { poolShape, type PoolParams } from '../kernels/reference.js';
import { dilations, flag, kernel, pads, strides } from '../format/attrSpec.js';
import { checkOutput, firstInput, LayerError, type LayerKind } from './kind.js';
import { poolShapeOf, shapeFail } from './shapeRules.js';

export function poolParams(node: GraphNode): PoolParams {
  const k = attrInts(node, 'kernel');
  const s = attrInts(node, 'strides', [1, 1]);
  const p = attrInts(node, 'pads', [0, 0, 0, 0]);
  const d = attrInts(node, 'dilations', [1, 1]);
  if (k.length !== 2 || s.length !== 2 || p.length !== 4 || d.length !== 2) throw new LayerError(node, 'pooling attributes must be 2-D');
  return {
    kernel: [k[0]!, k[1]!],
    strides: [s[0]!, s[1]!],
    pads: [p[0]!, p[1]!, p[2]!, p[3]!],
    dilations: [d[0]!, d[1]!],
    ceilMode: attrNum(node, 'ceil_mode', 0) !== 0,
  };
}

function check4d(node: GraphNode, shape: readonly number[]): void {
  if (shape.length !== 4) throw new LayerError(node, `input shape [${shape}] is not [N, C, H, W]`);
}

export const maxPool: LayerKind = {
  ops: ['max_pool'],
  attrs: { kernel, strides, pads, dilations, ceil_mode: flag },
  outputShape: (node, ins) => poolShapeOf(node, ins[0]!),
  mcu: { consumes: 'conv-pool' },
  prepare(node, ctx) {
    const p = poolParams(node);
    return {
      bind(inputs, output) {
        const x = firstInput(node, inputs);
        check4d(node, x.shape);
        checkOutput(node, output, poolShape(x.shape, p));
        const xd = x.data;
        const xs = x.shape;
        const y = output.data;
        return () => ctx.kernels.maxPoolInto(xd, xs, p, y);
      },
    };
  },
};

export const avgPool: LayerKind = {
  ops: ['avg_pool'],
  attrs: { kernel, strides, pads, ceil_mode: flag, count_include_pad: flag },
  outputShape: (node, ins) => poolShapeOf(node, ins[0]!),
  mcu: { consumes: 'conv-pool' },
  prepare(node, ctx) {
    const p = poolParams(node);
    const includePad = attrNum(node, 'count_include_pad', 0) !== 0;
    return {
      bind(inputs, output) {
        const x = firstInput(node, inputs);
        check4d(node, x.shape);
        checkOutput(node, output, poolShape(x.shape, p, false));
        const xd = x.data;
        const xs = x.shape;
        const y = output.data;
        return () => ctx.kernels.avgPoolInto(xd, xs, p, includePad, y);
      },
    };
  },
};

export const globalAvgPool: LayerKind = {
  ops: ['global_avg_pool'],
  attrs: {},
  outputShape(node, ins) {
    const x = ins[0]!;
    if (x.length < 3) shapeFail(node, `input [${x}] has no spatial axes`);
    return [x[0]!, x[1]!, ...x.slice(2).map(() => 1)];
  },
  mcu: {},
  prepare: (node, ctx) => ({
    bind(inputs, output) {
      const x = firstInput(node, inputs);
      if (x.shape.length < 3) throw new LayerError(node, `input shape [${x.shape}] has no spatial axes`);
      checkOutput(node, output, [x.shape[0]!, x.shape[1]!, ...x.shape.slice(2).map(() => 1)]);
      const xd = x.data;
      const xs = x.shape;
      const y = output.data;
      return () => ctx.kernels.globalAvgPoolInto(xd, xs, y);
    },
  }),
};
