// The value type of the training engine: a row-major f32 tensor that remembers how it was made.
// Each op (converter/train/ops/*) builds its output Var with the parents it read and a closure that,
// given out.grad, adds the parents' gradients. backward() runs those closures in reverse
// topological order. Only the converter trains; the runtime never imports this folder.
import { numel } from '../../runtime/ir.js';

let gradEnabled = true;

export class Var {
  /** Gradient of the loss with respect to `data`, allocated on first accumulation. */
  grad: Float32Array | null = null;
  /** Set by the op that made this Var; reads this.grad, accumulates into the parents. */
  backwardFn: (() => void) | null = null;
  parents: readonly Var[] = [];
  /**
   * Per-element factors on the optimiser's step (absent: 1). For Adam this is the same as training
   * the parameter in rescaled units: a layer whose parameters differ in scale by construction (a
   * flexact branch's coefficient of z^d) sets them so that one step moves its output alike.
   */
  lrScale: Float32Array | null = null;

  constructor(
    public data: Float32Array,
    readonly shape: readonly number[],
    /** Leaves that are trained (parameters) or that a test differentiates. */
    public requiresGrad = false,
    public name = '',
  ) {
    if (data.length !== numel(shape)) {
      throw new Error(`train: Var ${name || '(unnamed)'} has ${data.length} values for shape [${shape}]`);
    }
  }

  get size(): number {
    return this.data.length;
  }

  /** The gradient buffer, zero-filled on first use. */
  gradBuffer(): Float32Array {
    if (!this.grad) this.grad = new Float32Array(this.data.length);
    return this.grad;
  }

  zeroGrad(): void {
    if (this.grad) this.grad.fill(0);
  }
}

/** A trainable leaf. */
export function param(data: Float32Array, shape: readonly number[], name = ''): Var {
  return new Var(data, shape, true, name);
}

/** A leaf that no gradient flows into (inputs, labels turned into tensors, teacher outputs). */
export function constant(data: Float32Array, shape: readonly number[], name = ''): Var {
  return new Var(data, shape, false, name);
}

export function zeros(shape: readonly number[], requiresGrad = false): Var {
  return new Var(new Float32Array(numel(shape)), shape, requiresGrad);
}

export function isGradEnabled(): boolean {
  return gradEnabled;
}

/** Runs `fn` without recording a graph (evaluation, teacher forward passes). */
export function noGrad<T>(fn: () => T): T {
  const prev = gradEnabled;
  gradEnabled = false;
  try {
    return fn();
  } finally {
    gradEnabled = prev;
  }
}

/**
 * The output Var of an op. It joins the graph only when grad mode is on and some parent needs a
 * gradient; `backward` then receives out.grad (never null when called).
 */
export function result(
  data: Float32Array, shape: readonly number[], parents: readonly Var[],
  backward: (gOut: Float32Array) => void,
): Var {
  const out = new Var(data, shape);
  if (gradEnabled && parents.some((p) => p.requiresGrad)) {
    out.requiresGrad = true;
    out.parents = parents;
    out.backwardFn = () => backward(out.grad!);
  }
  return out;
}

/** Parents' gradient buffer if that parent wants one, else null (ops skip the work). */
export function gradOf(v: Var): Float32Array | null {
  return v.requiresGrad ? v.gradBuffer() : null;
}

/** Reverse-mode sweep from `root`. A scalar root is seeded with 1 unless `seed` is given. */
export function backward(root: Var, seed?: Float32Array): void {
  if (!root.requiresGrad) throw new Error('train: backward() on a Var that does not depend on any parameter');
  if (seed) {
    if (seed.length !== root.size) throw new Error(`train: seed has ${seed.length} values, root has ${root.size}`);
    root.gradBuffer().set(seed);
  } else {
    if (root.size !== 1) throw new Error(`train: backward() from a non-scalar [${root.shape}] needs a seed`);
    root.gradBuffer()[0] = 1;
  }
  // Iterative DFS post-order: deep chains (long training graphs) must not overflow the stack.
  const order: Var[] = [];
  const seen = new Set<Var>();
  const stack: Array<[Var, number]> = [[root, 0]];
  seen.add(root);
  while (stack.length > 0) {
    const top = stack[stack.length - 1]!;
    const [v, i] = top;
    if (i < v.parents.length) {
      top[1] = i + 1;
      const p = v.parents[i]!;
      if (p.requiresGrad && !seen.has(p)) {
        seen.add(p);
        stack.push([p, 0]);
      }
    } else {
      stack.pop();
      order.push(v);
    }
  }
  for (let k = order.length - 1; k >= 0; k--) {
    const v = order[k]!;
    if (v.backwardFn) {
      v.backwardFn();
      // Interior gradients are not needed again; free them and the closure (and what it holds).
      v.backwardFn = null;
      v.parents = [];
      v.grad = null;
    }
  }
}
