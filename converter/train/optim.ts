// Optimisers that update parameters in place: SGD with (Nesterov) momentum, Adam and AdamW, with
// L2 or decoupled weight decay, and the learning-rate schedules the trainer steps through.
// Conventions follow PyTorch (torch.optim) so that runs can be compared number for number.
import type { Var } from './tensor.js';

export type OptimizerKind = 'sgd' | 'adam' | 'adamw';
export const OPTIMIZER_KINDS: readonly OptimizerKind[] = ['sgd', 'adam', 'adamw'];

export interface OptimizerOptions {
  kind: OptimizerKind;
  /** Base learning rate; a schedule scales it per step (step(lr) overrides). */
  lr: number;
  /** SGD momentum mu (default 0.9): b = mu b + g. */
  momentum?: number;
  /** SGD: g + mu b instead of b (default false). */
  nesterov?: boolean;
  /** Adam betas (defaults 0.9, 0.999) and epsilon (1e-8). */
  beta1?: number;
  beta2?: number;
  eps?: number;
  /**
   * sgd, adam: L2 penalty added to the gradient (g += wd p). adamw: decoupled, p *= 1 - lr wd.
   * Default 0 for sgd/adam, 0.01 for adamw (PyTorch's defaults).
   */
  weightDecay?: number;
}

/** What a checkpoint needs to continue an optimiser exactly: the step count and every moment buffer. */
export interface OptimizerState {
  kind: OptimizerKind;
  /** Steps taken (Adam's bias correction uses it). */
  t: number;
  /** Parameter name -> its moment buffers (sgd: [momentum], adam/adamw: [m, v]). */
  moments: Record<string, Float32Array[]>;
}

export class Optimizer {
  readonly kind: OptimizerKind;
  readonly lr: number;
  private readonly params: Array<[string, Var]>;
  private readonly moments = new Map<string, Float32Array[]>();
  private t = 0;
  private readonly mu: number;
  private readonly nesterov: boolean;
  private readonly b1: number;
  private readonly b2: number;
  private readonly eps: number;
  private readonly wd: number;

  constructor(params: Record<string, Var>, o: OptimizerOptions) {
    if (!OPTIMIZER_KINDS.includes(o.kind)) throw new Error(`optim: unknown optimiser ${String(o.kind)} (allowed: ${OPTIMIZER_KINDS.join(', ')})`);
    if (!(o.lr > 0) || !Number.isFinite(o.lr)) throw new Error(`optim: learning rate ${o.lr} must be a positive number`);
    this.kind = o.kind;
    this.lr = o.lr;
    this.params = Object.entries(params);
    this.mu = o.momentum ?? 0.9;
    this.nesterov = o.nesterov ?? false;
    this.b1 = o.beta1 ?? 0.9;
    this.b2 = o.beta2 ?? 0.999;
    this.eps = o.eps ?? 1e-8;
    this.wd = o.weightDecay ?? (o.kind === 'adamw' ? 0.01 : 0);
    if (this.nesterov && (o.kind !== 'sgd' || this.mu <= 0)) throw new Error('optim: Nesterov needs sgd with momentum > 0');
    const buffers = o.kind === 'sgd' ? (this.mu > 0 ? 1 : 0) : 2;
    for (const [name, v] of this.params) {
      this.moments.set(name, Array.from({ length: buffers }, () => new Float32Array(v.size)));
    }
  }

  get steps(): number {
    return this.t;
  }

  zeroGrad(): void {
    for (const [, v] of this.params) v.zeroGrad();
  }

  /** One update of every parameter that has a gradient, at learning rate `lr` (default: the base rate). */
  step(lr = this.lr): void {
    this.t++;
    for (const [name, v] of this.params) {
      const g = v.grad;
      if (!g) continue;
      const m = this.moments.get(name)!;
      if (this.kind === 'sgd') this.sgd(v.data, g, m[0], lr, v.lrScale);
      else this.adam(v.data, g, m[0]!, m[1]!, lr, v.lrScale);
    }
  }

  private sgd(p: Float32Array, g: Float32Array, b: Float32Array | undefined, lr: number, scale: Float32Array | null): void {
    const { mu, wd, nesterov } = this;
    for (let i = 0; i < p.length; i++) {
      let d = g[i]! + wd * p[i]!;
      if (b) {
        const bi = mu * b[i]! + d;
        b[i] = bi;
        d = nesterov ? d + mu * bi : bi;
      }
      p[i]! -= (scale ? lr * scale[i]! : lr) * d;
    }
  }

  private adam(p: Float32Array, g: Float32Array, m: Float32Array, v: Float32Array, lr: number, scale: Float32Array | null): void {
    const { b1, b2, eps, wd } = this;
    const decoupled = this.kind === 'adamw';
    const c1 = 1 - b1 ** this.t;
    const c2 = 1 - b2 ** this.t;
    const step = lr / c1;
    const sc2 = Math.sqrt(c2);
    const shrink = decoupled ? 1 - lr * wd : 1;
    const l2 = decoupled ? 0 : wd;
    for (let i = 0; i < p.length; i++) {
      const gi = g[i]! + l2 * p[i]!;
      const mi = b1 * m[i]! + (1 - b1) * gi;
      const vi = b2 * v[i]! + (1 - b2) * gi * gi;
      m[i] = mi;
      v[i] = vi;
      // PyTorch: p -= lr / c1 * m / (sqrt(v) / sqrt(c2) + eps)
      p[i] = p[i]! * shrink - ((scale ? step * scale[i]! : step) * mi) / (Math.sqrt(vi) / sc2 + eps);
    }
  }

  state(): OptimizerState {
    const moments: Record<string, Float32Array[]> = {};
    for (const [name, bufs] of this.moments) moments[name] = bufs.map((b) => Float32Array.from(b));
    return { kind: this.kind, t: this.t, moments };
  }

  loadState(s: OptimizerState): void {
    if (s.kind !== this.kind) throw new Error(`optim: state is for ${s.kind}, this optimiser is ${this.kind}`);
    if (!Number.isInteger(s.t) || s.t < 0) throw new Error(`optim: bad step count ${s.t}`);
    for (const [name, bufs] of this.moments) {
      const got = s.moments[name];
      if (!got || got.length !== bufs.length) throw new Error(`optim: state has no moments for ${name}`);
      got.forEach((b, k) => {
        if (b.length !== bufs[k]!.length) throw new Error(`optim: moment ${k} of ${name} has ${b.length} values, expected ${bufs[k]!.length}`);
        bufs[k]!.set(b);
      });
    }
    this.t = s.t;
  }
}

export type ScheduleKind = 'constant' | 'step' | 'cosine';
export const SCHEDULE_KINDS: readonly ScheduleKind[] = ['constant', 'step', 'cosine'];

export interface Schedule {
  kind: ScheduleKind;
  /** Linear warm-up from lr / warmup to lr over the first `warmup` steps (any kind; default 0). */
  warmup?: number;
  /** step: multiply by `gamma` (default 0.1) every `every` steps. */
  every?: number;
  gamma?: number;
  /** cosine: the floor as a fraction of the base rate (default 0). */
  minFactor?: number;
}

/** Learning rate at 0-based optimiser step `step` of `total`. */
export function scheduledLr(s: Schedule, base: number, step: number, total: number): number {
  const warm = s.warmup ?? 0;
  if (step < warm) return (base * (step + 1)) / warm;
  switch (s.kind) {
    case 'constant':
      return base;
    case 'step': {
      const every = s.every ?? Math.max(1, Math.floor(total / 3));
      return base * (s.gamma ?? 0.1) ** Math.floor(step / every);
    }
    case 'cosine': {
      const span = Math.max(1, total - warm);
      const f = Math.min(1, (step - warm) / span);
      const floor = s.minFactor ?? 0;
      return base * (floor + (1 - floor) * 0.5 * (1 + Math.cos(Math.PI * f)));
    }
    default:
      throw new Error(`optim: unknown schedule ${String((s as { kind: unknown }).kind)}`);
  }
}
