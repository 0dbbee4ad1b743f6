// What every trainable layer is: parameters under the runtime's weight role names, the node
// attributes of its runtime layer kind, and a forward pass that computes exactly what that kind
// computes from the same factors. Exporting a trained layer is then a copy of `params` and `attrs`.
import type { AttrValue, OpName } from '../../../runtime/ir.js';
import { numel } from '../../../runtime/ir.js';
import { mulberry32, normalSource } from '../../decompose/prng.js';
import { param, type Var } from '../tensor.js';

export interface TrainLayer {
  readonly op: OpName;
  readonly attrs: Record<string, AttrValue>;
  /** Runtime weight role (runtime/ir.ts: 'weight', 'u', 'core.0', 'factor.3', 'bias', ...) -> parameter. */
  readonly params: Record<string, Var>;
  forward(x: Var): Var;
}

export interface InitOptions {
  /** Seed of the factor initialisation (default 0). */
  seed?: number;
  /** Target variance of the reconstructed weight is gain / fan_in: 2 is He (default), 1 LeCun. */
  gain?: number;
  /** Learn a bias (default true); it starts at zero. */
  bias?: boolean;
  /** Start from these values (e.g. a decomposition) instead of random ones, by role. */
  weights?: Record<string, Float32Array>;
}

/** Builds the parameters of one layer: random normal with a given std, or the given start values. */
export class ParamMaker {
  private readonly normal: () => number;
  readonly params: Record<string, Var> = {};
  constructor(private readonly opts: InitOptions) {
    this.normal = normalSource(mulberry32(opts.seed ?? 0));
  }

  /** The variance the reconstructed weight should have. */
  target(fanIn: number): number {
    return (this.opts.gain ?? 2) / fanIn;
  }

  normalParam(role: string, shape: readonly number[], std: number): Var {
    const n = numel(shape);
    const given = this.opts.weights?.[role];
    let data: Float32Array;
    if (given) {
      if (given.length !== n) throw new Error(`train: start value for ${role} has ${given.length} values, shape [${shape}] needs ${n}`);
      data = Float32Array.from(given);
    } else {
      data = new Float32Array(n);
      for (let i = 0; i < n; i++) data[i] = this.normal() * std;
    }
    const v = param(data, shape, role);
    this.params[role] = v;
    return v;
  }

  /** A zero-initialised bias of `size`, unless bias is off. */
  bias(size: number): Var | undefined {
    if (this.opts.bias === false) return undefined;
    const given = this.opts.weights?.['bias'];
    const v = param(given ? Float32Array.from(given) : new Float32Array(size), [size], 'bias');
    if (v.size !== size) throw new Error(`train: start value for bias has ${v.size} values, needs ${size}`);
    this.params['bias'] = v;
    return v;
  }
}

/** Input flattened to [B, in] rows and the leading shape to restore. */
export function leadOf(x: Var, inF: number, what: string): number[] {
  if (x.shape[x.shape.length - 1] !== inF) throw new Error(`train: ${what} input [${x.shape}] does not end in ${inF}`);
  return x.shape.slice(0, -1) as number[];
}
