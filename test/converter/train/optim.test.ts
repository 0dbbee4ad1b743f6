// Optimiser updates against values worked out by hand (one or two steps of SGD with momentum,
// Nesterov, Adam, AdamW, weight decay), learning-rate schedules, state round trip, and five steps
// of each optimiser against torch.optim on the same numbers (skipped without python3-torch).
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import t, { type Test } from 'tap';
import { Optimizer, scheduledLr, type OptimizerOptions } from '../../../converter/train/optim.js';
import { param, type Var } from '../../../converter/train/tensor.js';
import { missing, PYTHON } from '../../support/require.js';

const close = (t: Test, got: ArrayLike<number>, want: number[], tol: number, what: string) => {
  const d = Math.max(...want.map((w, i) => Math.abs(got[i]! - w)));
  t.ok(d <= tol, `${what}: [${Array.from(got).map((x) => x.toFixed(7))}] vs [${want.map((x) => x.toFixed(7))}] (max diff ${d.toExponential(1)})`);
};

/** One parameter p = [1, -2] with gradient `g` set before each step. */
function stepper(o: OptimizerOptions): { p: Var; step: (g: number[], lr?: number) => Float32Array; opt: Optimizer } {
  const p = param(Float32Array.of(1, -2), [2], 'p');
  const opt = new Optimizer({ p }, o);
  return {
    p, opt,
    step(g, lr) {
      opt.zeroGrad();
      p.gradBuffer().set(g);
      opt.step(lr);
      return p.data;
    },
  };
}

t.test('SGD with momentum: two steps by hand', async (t) => {
  const s = stepper({ kind: 'sgd', lr: 0.1, momentum: 0.9 });
  // Step 1: b = g = [0.5, 0.1]; p -= 0.1 b.
  close(t, s.step([0.5, 0.1]), [0.95, -2.01], 1e-7, 'step 1');
  // Step 2: b = 0.9 [0.5, 0.1] + [0.2, -0.3] = [0.65, -0.21]; p -= 0.1 b.
  close(t, s.step([0.2, -0.3]), [0.885, -1.989], 1e-7, 'step 2');
  t.equal(s.opt.steps, 2);
});

t.test('SGD: Nesterov, no momentum, L2 weight decay', async (t) => {
  // Nesterov: b = g, d = g + 0.9 b = 1.9 g.
  close(t, stepper({ kind: 'sgd', lr: 0.1, momentum: 0.9, nesterov: true }).step([0.5, 0.1]), [1 - 0.095, -2 - 0.019], 1e-7, 'nesterov');
  close(t, stepper({ kind: 'sgd', lr: 0.1, momentum: 0 }).step([0.5, 0.1]), [0.95, -2.01], 1e-7, 'plain');
  // d = g + 0.1 p = [0.6, -0.1].
  close(t, stepper({ kind: 'sgd', lr: 0.1, momentum: 0, weightDecay: 0.1 }).step([0.5, 0.1]), [0.94, -1.99], 1e-7, 'weight decay');
  t.throws(() => new Optimizer({}, { kind: 'adam', lr: 0.1, nesterov: true }), /Nesterov/);
  t.throws(() => new Optimizer({}, { kind: 'sgd', lr: 0 }), /positive/);
});

t.test('Adam: two steps by hand; AdamW decouples the decay', async (t) => {
  const s = stepper({ kind: 'adam', lr: 0.01 });
  // Step 1: m = 0.1 g, v = 0.001 g^2; bias-corrected m / sqrt(v) = sign(g).
  close(t, s.step([0.5, 0.1]), [1 - (0.01 * 0.5) / (0.5 + 1e-8), -2 - (0.01 * 0.1) / (0.1 + 1e-8)], 1e-7, 'step 1');
  // Step 2 with g = [0.2, -0.3].
  const m = [0.9 * 0.05 + 0.1 * 0.2, 0.9 * 0.01 + 0.1 * -0.3];
  const v = [0.999 * 0.00025 + 0.001 * 0.04, 0.999 * 0.00001 + 0.001 * 0.09];
  const upd = (i: number) => (0.01 * (m[i]! / 0.19)) / (Math.sqrt(v[i]! / (1 - 0.999 ** 2)) + 1e-8);
  close(t, s.step([0.2, -0.3]), [0.99 - upd(0), -2.01 - upd(1)], 2e-7, 'step 2');

  // Adam's weight decay is L2: g + 0.5 p = [1, -0.9], still a sign step on the first step.
  close(t, stepper({ kind: 'adam', lr: 0.01, weightDecay: 0.5 }).step([0.5, 0.1]), [0.99, -1.99], 1e-7, 'adam L2');
  // AdamW: p (1 - lr wd) first, then the Adam step on the raw gradient.
  const shrink = 1 - 0.01 * 0.5;
  close(t, stepper({ kind: 'adamw', lr: 0.01, weightDecay: 0.5 }).step([0.5, 0.1]), [shrink - 0.01, -2 * shrink - 0.01], 1e-7, 'adamw');
  // A step-specific rate overrides the base rate.
  close(t, stepper({ kind: 'adam', lr: 0.01 }).step([0.5, 0.1], 0.001), [0.999, -2.001], 1e-7, 'lr override');
});

t.test('parameters without a gradient are left alone', async (t) => {
  const a = param(Float32Array.of(1), [1]);
  const b = param(Float32Array.of(2), [1]);
  const opt = new Optimizer({ a, b }, { kind: 'adam', lr: 0.1 });
  a.gradBuffer()[0] = 1;
  opt.step();
  t.equal(b.data[0], 2);
  t.not(a.data[0], 1);
});

t.test('state round trip continues identically', async (t) => {
  for (const kind of ['sgd', 'adam', 'adamw'] as const) {
    const grads = [[0.5, 0.1], [0.2, -0.3], [-0.4, 0.7], [0.1, 0.1]];
    const a = stepper({ kind, lr: 0.05 });
    grads.forEach((g) => a.step(g));
    const b = stepper({ kind, lr: 0.05 });
    grads.slice(0, 2).forEach((g) => b.step(g));
    const c = stepper({ kind, lr: 0.05 });
    c.p.data.set(b.p.data);
    c.opt.loadState(b.opt.state());
    grads.slice(2).forEach((g) => c.step(g));
    t.same(Array.from(c.p.data), Array.from(a.p.data), `${kind}: resumed after 2 of 4 steps`);
  }
  const s = stepper({ kind: 'sgd', lr: 0.1 });
  t.throws(() => s.opt.loadState({ ...stepper({ kind: 'adam', lr: 0.1 }).opt.state() }), /state is for adam/);
});

t.test('learning-rate schedules', async (t) => {
  t.equal(scheduledLr({ kind: 'constant' }, 0.1, 50, 100), 0.1);
  t.equal(scheduledLr({ kind: 'constant', warmup: 4 }, 0.1, 0, 100), 0.025);
  t.equal(scheduledLr({ kind: 'constant', warmup: 4 }, 0.1, 3, 100), 0.1);
  t.equal(scheduledLr({ kind: 'step', every: 10, gamma: 0.5 }, 0.1, 25, 100), 0.025);
  t.equal(scheduledLr({ kind: 'cosine' }, 0.1, 0, 100), 0.1);
  t.ok(Math.abs(scheduledLr({ kind: 'cosine' }, 0.1, 50, 100) - 0.05) < 1e-12, 'cosine half way');
  // Warm-up 10, then cosine over the remaining 90 steps: half way at step 55.
  t.ok(Math.abs(scheduledLr({ kind: 'cosine', warmup: 10 }, 0.1, 55, 100) - 0.05) < 1e-12, 'cosine after warm-up');
  t.ok(Math.abs(scheduledLr({ kind: 'cosine', minFactor: 0.1 }, 0.1, 100, 100) - 0.01) < 1e-12, 'cosine floor');
});

// Five steps of each optimiser in float64 torch on the same parameters and gradients.
const TORCH = `
import json, sys, torch
case = json.loads(sys.stdin.read())
out = {}
for name, c in case.items():
    p = torch.nn.Parameter(torch.tensor(c['p'], dtype=torch.float64))
    k = c['opt']
    if k['kind'] == 'sgd':
        opt = torch.optim.SGD([p], lr=k['lr'], momentum=k['momentum'], nesterov=k['nesterov'], weight_decay=k['wd'])
    elif k['kind'] == 'adam':
        opt = torch.optim.Adam([p], lr=k['lr'], weight_decay=k['wd'])
    else:
        opt = torch.optim.AdamW([p], lr=k['lr'], weight_decay=k['wd'])
    for g in c['grads']:
        opt.zero_grad()
        p.grad = torch.tensor(g, dtype=torch.float64)
        opt.step()
    out[name] = p.detach().tolist()
print(json.dumps(out))
`;

t.test('five steps against torch.optim', async (t) => {
  if (!existsSync(PYTHON)) return void missing(t, `${PYTHON} not found`);
  const grads = [[0.5, 0.1], [0.2, -0.3], [-0.4, 0.7], [0.1, 0.1], [0.3, -0.2]];
  const cases: Record<string, OptimizerOptions & { wd: number }> = {
    sgd: { kind: 'sgd', lr: 0.1, momentum: 0.9, wd: 0.01 },
    nesterov: { kind: 'sgd', lr: 0.1, momentum: 0.9, nesterov: true, wd: 0 },
    adam: { kind: 'adam', lr: 0.01, wd: 0.1 },
    adamw: { kind: 'adamw', lr: 0.01, wd: 0.1 },
  };
  const payload = Object.fromEntries(Object.entries(cases).map(([n, c]) => [n, {
    p: [1, -2], grads, opt: { kind: c.kind, lr: c.lr, momentum: c.momentum ?? 0, nesterov: c.nesterov ?? false, wd: c.wd },
  }]));
  const r = spawnSync(PYTHON, ['-c', TORCH], { input: JSON.stringify(payload), encoding: 'utf8' });
  if (r.status !== 0) return void missing(t, `${PYTHON} cannot run torch.optim (Debian python3-torch): ${r.stderr.split('\n').filter(Boolean).pop()}`);
  const want = JSON.parse(r.stdout) as Record<string, number[]>;
  for (const [name, c] of Object.entries(cases)) {
    const s = stepper({ ...c, weightDecay: c.wd });
    grads.forEach((g) => s.step(g));
    close(t, s.p.data, want[name]!, 2e-6, `${name} vs torch`);
  }
});

t.test('lrScale: Adam with per-element step factors s on p steps as Adam on q = p / s would', async (t) => {
  const s = Float32Array.from([1, 0.5, 0.01, 4]);
  const target = [0.1, 0.1, -0.3, 2];
  const p = param(Float32Array.from([0.3, -0.2, 0.05, 1.5]), [4]);
  p.lrScale = s;
  const q = param(Float32Array.from([0.3, -0.2, 0.05, 1.5].map((x, i) => x / s[i]!)), [4]);
  const op = new Optimizer({ p }, { kind: 'adam', lr: 0.01, eps: 1e-12 });
  const oq = new Optimizer({ q }, { kind: 'adam', lr: 0.01, eps: 1e-12 });
  for (let k = 0; k < 6; k++) {
    // loss ½ Σ (p_i − target_i)²: ∂/∂p = p − target, ∂/∂q = s (s q − target)
    const gp = p.gradBuffer();
    const gq = q.gradBuffer();
    for (let i = 0; i < 4; i++) {
      gp[i] = p.data[i]! - target[i]!;
      gq[i] = s[i]! * (s[i]! * q.data[i]! - target[i]!);
    }
    op.step();
    oq.step();
  }
  for (let i = 0; i < 4; i++) t.ok(Math.abs(p.data[i]! - s[i]! * q.data[i]!) < 1e-5, `p[${i}] ${p.data[i]} = s q ${s[i]! * q.data[i]!}`);
  // and a step without lrScale is unchanged: the factor 1 everywhere
  const a = param(Float32Array.from([0.5]), [1]);
  const b = param(Float32Array.from([0.5]), [1]);
  b.lrScale = Float32Array.from([1]);
  const oa = new Optimizer({ a }, { kind: 'sgd', lr: 0.1 });
  const ob = new Optimizer({ b }, { kind: 'sgd', lr: 0.1 });
  a.gradBuffer()[0] = 0.7;
  b.gradBuffer()[0] = 0.7;
  oa.step();
  ob.step();
  t.equal(a.data[0], b.data[0]);
});
