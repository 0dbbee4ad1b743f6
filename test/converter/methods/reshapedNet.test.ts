// The reshaped tensorial methods, converter side: the trainable layers' gradients (every factor,
// the bias and the input) against central finite differences, for dense and conv2d with stride,
// padding and dilation; the kernel they contract equals the decomposition's own reconstruction;
// random initialisation hits the target variance; and the rank ladder reaches the ratios asked.
import t from 'tap';
import { reconstructRcp, reconstructRtk, reconstructRtr, reconstructRtt, rcp, rtk, rtr, rtt } from '../../../converter/decompose/tensorial.js';
import { methodOf } from '../../../converter/methods/index.js';
import { factorShapes, kernelFromFactors, layoutOf, reshapedLayer } from '../../../converter/methods/reshapedNet.js';
import type { Target } from '../../../converter/rank/target.js';
import { noGrad, param, type Var } from '../../../converter/train/tensor.js';
import { numel } from '../../../runtime/ir.js';
import { gradCheck, maxRelDiff, randn } from '../train/gradcheck.js';

type Method = 'rcp' | 'rtk' | 'rtt' | 'rtr';
const METHODS: Method[] = ['rcp', 'rtk', 'rtt', 'rtr'];
const RANKS: Record<Method, { dense: number[]; conv: number[] }> = {
  rcp: { dense: [3], conv: [4] },
  rtk: { dense: [1, 2, 3], conv: [2, 2, 3] },
  rtt: { dense: [2, 1], conv: [3, 2] },
  rtr: { dense: [2, 2, 2], conv: [2, 3, 2] },
};

for (const method of METHODS) {
  t.test(`${method}: gradients of the trainable layer against finite differences`, async (t) => {
    for (const conv of [false, true]) {
      const layout = conv ? { tModes: [3, 2], sModes: [2, 2], kh: 3, kw: 2 } : { tModes: [3, 4], sModes: [2, 3], kh: 1, kw: 1 };
      const ranks = conv ? RANKS[method].conv : RANKS[method].dense;
      const layer = reshapedLayer(method, layout, ranks, conv ? { strides: [2, 1], pads: [1, 0, 1, 1], dilations: [1, 2] } : undefined, { seed: 3 });
      // bias away from zero so that its gradient is exercised with the rest
      const b = layer.params['bias']!;
      b.data.set(randn(b.size, 9, 0.3));
      const x = param(randn(conv ? 2 * 4 * 7 * 6 : 2 * 6, 5), conv ? [2, 4, 7, 6] : [2, 6]);
      const inputs: Var[] = [...Object.values(layer.params), x];
      const worst = gradCheck(t, `${method} ${conv ? 'conv2d' : 'dense'}`, () => layer.forward(x), inputs, { eps: 1e-2, tol: 2e-2, maxPerInput: 24 });
      t.ok(worst < 2e-2, `${method} ${conv ? 'conv2d' : 'dense'}: worst relative gradient error ${worst.toExponential(2)}`);
    }
  });
}

t.test('the kernel contracted by the trainable form = the decomposition reconstruction', async (t) => {
  const layout = { tModes: [3, 4], sModes: [2, 3], kh: 3, kw: 2 };
  const w = randn(12 * 6 * 6, 21);
  const fits = {
    rcp: () => { const r = rcp(w, layout, 5, { restarts: 1, iters: 20 }); return { r, rebuilt: reconstructRcp(r.factors, layout, r.ranks[0]!) }; },
    rtk: () => { const r = rtk(w, layout, [3, 2, 3]); return { r, rebuilt: reconstructRtk(r.factors, r.core!, layout, r.ranks) }; },
    rtt: () => { const r = rtt(w, layout, { ranks: [3, 4] }); return { r, rebuilt: reconstructRtt(r.factors, layout, r.ranks) }; },
    rtr: () => { const r = rtr(w, layout, { ranks: [2, 3, 2], alsSweeps: 5, restarts: 0 }); return { r, rebuilt: reconstructRtr(r.factors, layout, r.ranks) }; },
  };
  for (const method of METHODS) {
    const { r, rebuilt } = fits[method]();
    const vars = new Map<string, Var>();
    r.factors.forEach((f, m) => vars.set(`factor.${m}`, param(f, r.shapes[m]!)));
    if (r.core) vars.set('core', param(r.core, r.ranks));
    const shapes = factorShapes(method, layout, r.ranks);
    for (const [role, s] of shapes) t.same(vars.get(role)!.shape, s, `${method} ${role}: the decomposition's shape`);
    const k = noGrad(() => kernelFromFactors(method, layout, vars));
    t.same(k.shape, [12, 6, 3, 2]);
    t.ok(maxRelDiff(k.data, Float32Array.from(rebuilt)) < 1e-5, `${method}: contracted kernel = reconstruction`);
  }
});

t.test('random initialisation: the contracted kernel has about the target variance (He: 2 / fan-in)', async (t) => {
  const layout = { tModes: [4, 4], sModes: [4, 5], kh: 3, kw: 3 };
  for (const method of METHODS) {
    const ranks = { rcp: [6], rtk: [3, 4, 4], rtt: [4, 5], rtr: [3, 4, 4] }[method];
    let sum = 0;
    let n = 0;
    for (let seed = 0; seed < 40; seed++) {
      const layer = reshapedLayer(method, layout, ranks, {}, { seed });
      const vars = new Map(Object.entries(layer.params).filter(([r]) => r !== 'bias'));
      const k = noGrad(() => kernelFromFactors(method, layout, vars));
      for (const v of k.data) sum += v * v;
      n += k.size;
    }
    const ratio = sum / n / (2 / (20 * 9));
    t.ok(ratio > 0.7 && ratio < 1.3, `${method}: variance / target = ${ratio.toFixed(3)}`);
  }
});

t.test('the rank ladder spans the ratios, and --ranks forms are refused when malformed', async (t) => {
  const shape = { kind: 'dense' as const, out: 120, in: 84 };
  const weight = randn(120 * 84, 4);
  const tg: Target = { node: { name: 'l', op: 'dense', inputs: [], outputs: [], attrs: {}, weights: {} }, shape, weight, bias: 120, denseParams: 120 * 84 + 120 };
  t.same(layoutOf(shape).tModes.reduce((a, b) => a * b, 1), 120);
  for (const method of METHODS) {
    const m = methodOf(method);
    const c = m.candidates(tg);
    t.ok(c.some((x) => x.params * 10 <= tg.denseParams), `${method}: a rung at 10x or more`);
    t.ok(c.every((x) => x.err >= 0 && x.err <= 1), `${method}: errors in [0, 1]`);
    const errs = c.map((x) => x.err);
    t.ok(errs[0]! >= errs[errs.length - 1]!, `${method}: the largest rung is the most accurate`);
    t.match(m.fromRanks(tg, [2, 2, 2, 2, 2, 2, 2, 2, 2]), /expected 1 or/, `${method}: a wrong rank count is named`);
  }
  t.equal(numel([2, 3]), 6);
});
