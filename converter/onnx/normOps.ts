// Emitters for GELU, Erf and LayerNormalization (standard ops, and the nodes patterns.ts makes
// from PyTorch's decompositions of F.gelu and nn.LayerNorm).
import { attrFloat, attrInt, attrString } from './attributes.js';
import type { Importer } from './import.js';
import { type EmitContext, type Emitter, activation, badModel, constInput, onlyFirstOutput, unsupported } from './layers.js';
import { isNum, normAxis } from './shapes.js';
import { type Const, constFloats } from './tensors.js';

const gelu: Emitter = (imp, n, ctx) => {
  const x = activation(imp, n, 0, ctx);
  const approximate = attrString(n, 'approximate', 'none');
  if (approximate !== 'none' && approximate !== 'tanh') unsupported(ctx.where, `approximate=${approximate}`);
  imp.emit('gelu', ctx.name, [x.v], onlyFirstOutput(imp, n, ctx), x.shape, { approximate });
};

const erf: Emitter = (imp, n, ctx) => {
  const x = activation(imp, n, 0, ctx);
  imp.emit('erf', ctx.name, [x.v], onlyFirstOutput(imp, n, ctx), x.shape);
};

/** A constant broadcast to the trailing dims `tail` and flattened (row-major) to their product. */
function expandTo(c: Const, tail: number[], ctx: EmitContext, role: string): Float32Array {
  const src = constFloats(c, ctx.where);
  const dims = c.dims;
  if (dims.length > tail.length || dims.some((d, i) => d !== 1 && d !== tail[tail.length - dims.length + i])) {
    unsupported(ctx.where, `${role} of shape [${dims.join(', ')}] does not broadcast to the normalised dims [${tail.join(', ')}]`);
  }
  const D = tail.reduce((a, b) => a * b, 1);
  const outData = new Float32Array(D);
  const full = [...new Array<number>(tail.length - dims.length).fill(1), ...dims];
  for (let i = 0; i < D; i++) {
    let rest = i;
    let at = 0;
    let stride = 1;
    for (let a = tail.length - 1; a >= 0; a--) {
      const idx = rest % tail[a]!;
      rest = Math.floor(rest / tail[a]!);
      if (full[a] !== 1) at += idx * stride;
      stride *= full[a]!;
    }
    outData[i] = src[at]!;
  }
  return outData;
}

const layerNormalization: Emitter = (imp: Importer, n, ctx) => {
  const x = activation(imp, n, 0, ctx);
  const r = x.shape.length;
  const axis = normAxis(attrInt(n, 'axis', -1), r);
  if (axis < 0 || axis >= r) badModel(ctx.where, `axis out of range for rank ${r}`);
  const tail = x.shape.slice(axis);
  if (!tail.every(isNum)) unsupported(ctx.where, `normalising over axis ${axis}, whose size is free`);
  const epsilon = attrFloat(n, 'epsilon', 1e-5);
  if ((n.output ?? []).slice(1).some((o) => o && imp.isUsed(o))) unsupported(ctx.where, 'the Mean and InvStdDev outputs');
  const weights: Record<string, string> = {};
  for (const [i, role] of [[1, 'scale'], [2, 'bias']] as const) {
    const c = constInput(imp, n, i, ctx, role);
    if (c) weights[role] = imp.storeDerived(`${ctx.name}.${role}`, [tail.reduce((a, b) => a * b, 1)], expandTo(c, tail, ctx, role), c.src);
  }
  imp.emit('layer_norm', ctx.name, [x.v], onlyFirstOutput(imp, n, ctx), x.shape, { axis: axis - r, epsilon }, weights);
};

export const NORM_EMITTERS: Record<string, Emitter> = {
  Gelu: gelu,
  Erf: erf,
  LayerNormalization: layerNormalization,
};
