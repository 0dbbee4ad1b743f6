// Emitters for the activations PyTorch exports as single ONNX ops that factorlite runs as short
// chains of its own element-wise ops (relu, clip, exp, log, abs, reciprocal, add, mul): Elu, Selu,
// Celu, Softplus (and with it nn.Mish, exported as x * tanh(softplus(x)) before opset 18) and
// Softsign. Every op of the chains is in the runtime, the firmware and export already, so these
// models run everywhere without an op of their own.
import { attrFloat } from './attributes.js';
import type { Importer } from './importer.js';
import { type EmitContext, type Emitter, activation, onlyFirstOutput } from './layers.js';
import type { Dim } from './shapes.js';
import type onnxProto from 'onnx-proto';

type INodeProto = onnxProto.onnx.INodeProto;

/** Emits the chain's nodes under the ONNX node's name: step(op, inputs, [constant]) -> value. */
function chain(imp: Importer, ctx: EmitContext, shape: Dim[]) {
  let k = 0;
  return {
    /** A new intermediate value computed by `op` from `inputs`. */
    step(op: 'relu' | 'clip' | 'exp' | 'log' | 'abs' | 'reciprocal' | 'add' | 'mul', inputs: string[], attrs: Record<string, number> = {}, out?: string): string {
      const v = out ?? imp.freshValue(`${ctx.name}/${op}${k}`);
      imp.emit(op, `${ctx.name}/${op}${k++}`, inputs, v, shape, attrs);
      return v;
    },
    scalar(role: string, v: number): string {
      return imp.storeDerived(`${ctx.name}.${role}`, [1], new Float32Array([v]), new Set());
    },
  };
}

/**
 * gamma * (max(0, x) + alpha * (exp(min(x, 0) / s) - 1)): Elu (gamma 1, s 1), Selu (its alpha and
 * gamma, s 1) and Celu (gamma 1, s alpha). Written as gamma relu(x) + gamma alpha exp(min(x, 0) / s)
 * - gamma alpha: the exponential never sees a positive argument, so it cannot overflow.
 */
function eluFamily(imp: Importer, n: INodeProto, ctx: EmitContext, alpha: number, gamma: number, s: number): void {
  const x = activation(imp, n, 0, ctx);
  const out = onlyFirstOutput(imp, n, ctx);
  const c = chain(imp, ctx, x.shape);
  let pos = c.step('relu', [x.v]);
  if (gamma !== 1) pos = c.step('mul', [pos, c.scalar('gamma', gamma)]);
  let neg = c.step('clip', [x.v], { min: -3.4028234663852886e38, max: 0 });
  if (s !== 1) neg = c.step('mul', [neg, c.scalar('inv_alpha', 1 / s)]);
  neg = c.step('exp', [neg]);
  neg = c.step('mul', [neg, c.scalar('ga', gamma * alpha)]);
  neg = c.step('add', [neg, c.scalar('minus_ga', -gamma * alpha)]);
  c.step('add', [pos, neg], {}, out);
}

const elu: Emitter = (imp, n, ctx) => eluFamily(imp, n, ctx, attrFloat(n, 'alpha', 1), 1, 1);
const selu: Emitter = (imp, n, ctx) =>
  eluFamily(imp, n, ctx, attrFloat(n, 'alpha', 1.67326319217681884765625), attrFloat(n, 'gamma', 1.05070102214813232421875), 1);
const celu: Emitter = (imp, n, ctx) => {
  const alpha = attrFloat(n, 'alpha', 1);
  eluFamily(imp, n, ctx, alpha, 1, alpha);
};

/** log(1 + exp(x)) as max(0, x) + log(1 + exp(-|x|)): exact in f32 for any x, no overflow. */
const softplus: Emitter = (imp, n, ctx) => {
  const x = activation(imp, n, 0, ctx);
  const out = onlyFirstOutput(imp, n, ctx);
  const c = chain(imp, ctx, x.shape);
  const a = c.step('abs', [x.v]);
  const na = c.step('mul', [a, c.scalar('minus_one', -1)]);
  const e = c.step('exp', [na]);
  const l = c.step('log', [c.step('add', [e, c.scalar('one', 1)])]);
  c.step('add', [c.step('relu', [x.v]), l], {}, out);
};

/** x / (1 + |x|). */
const softsign: Emitter = (imp, n, ctx) => {
  const x = activation(imp, n, 0, ctx);
  const out = onlyFirstOutput(imp, n, ctx);
  const c = chain(imp, ctx, x.shape);
  const d = c.step('reciprocal', [c.step('add', [c.step('abs', [x.v]), c.scalar('one', 1)])]);
  c.step('mul', [x.v, d], {}, out);
};

export const COMPOSITE_EMITTERS: Record<string, Emitter> = {
  Elu: elu,
  Selu: selu,
  Celu: celu,
  Softplus: softplus,
  Softsign: softsign,
};
