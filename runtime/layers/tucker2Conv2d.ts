import { checkNchw, convParams } from './convAttrs.js';
import { expectShape, firstInput, LayerError, type LayerKind } from './kind.js';

/** Tucker-2 conv: 1x1 (I -> r1), core conv (r1 -> r2, carries stride/pad/dilation), 1x1 (r2 -> O). */
export const tucker2Conv2d: LayerKind = {
  ops: ['tucker2_conv2d'],
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
    return (inputs) => {
      const x = firstInput(node, inputs);
      checkNchw(node, x.shape, I);
      const a = ctx.kernels.conv1x1(x.data, x.shape, uIn.data, r1, undefined);
      const c = ctx.kernels.conv2d(a.data, a.shape, core.data, core.shape, undefined, p);
      return ctx.kernels.conv1x1(c.data, c.shape, uOut.data, O, b?.data);
    };
  },
};
