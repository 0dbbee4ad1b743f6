import { checkOutput, expectShape, firstInput, LayerError, type LayerKind } from './kind.js';
import { denseShape } from './shapeRules.js';

/** Dense kept dense: y = x W^T + b over the last axis. */
export const dense: LayerKind = {
  ops: ['dense'],
  attrs: {},
  outputShape(node, ins, w) {
    const s = w('weight');
    return denseShape(node, ins[0]!, s[1]!, s[0]!);
  },
  mcu: { produces: 'dense', consumes: 'dense' },
  prepare(node, ctx) {
    const w = ctx.weight('weight');
    if (w.shape.length !== 2) throw new LayerError(node, `weight must be 2-D, got [${w.shape}]`);
    const [out, inF] = w.shape as [number, number];
    const b = ctx.optionalWeight('bias');
    if (b) expectShape(node, 'bias', b, [out]);
    return {
      bind(inputs, output) {
        const x = firstInput(node, inputs);
        if (x.shape[x.shape.length - 1] !== inF) throw new LayerError(node, `input [${x.shape}] does not end in ${inF}`);
        checkOutput(node, output, [...x.shape.slice(0, -1), out]);
        const rows = x.data.length / inF;
        const xd = x.data;
        const y = output.data;
        const bias = b?.data;
        return () => ctx.kernels.gemmNT(xd, w.data, rows, out, inF, bias, y);
      },
    };
  },
};
