// Every decomposition's factors, run by the runtime's own layer kind, must give the same output as
// the dense (or conv2d) layer with the reconstructed weight: the two teams agree on ir.ts layouts.
import t, { type Test } from 'tap';
import type { GraphNode, OpName, Tensor } from '../../../runtime/ir.js';
import { referenceBackend } from '../../../runtime/kernels/backend.js';
import { runLayer, type Weight } from '../../../runtime/layers/index.js';
import {
  cpConv, mulberry32, normalSource, randomNormal, reconstructCp, reconstructSvd, reconstructTr, reconstructTt,
  reconstructTtl, reconstructTucker2, relativeError, tensorRing, truncatedSvd, ttSvd, tucker2Conv, tuckerTensorLayer,
} from '../../../converter/decompose/index.js';

const normal = normalSource(mulberry32(99));

function run(op: OpName, weights: Record<string, Weight>, attrs: GraphNode['attrs'], x: Tensor): Tensor {
  const node: GraphNode = { name: op, op, inputs: ['x'], outputs: ['y'], attrs, weights: {} };
  const ctx = {
    weight: (role: string) => {
      const w = weights[role];
      if (!w) throw new Error(`test: no weight ${role}`);
      return w;
    },
    optionalWeight: (role: string) => weights[role],
    kernels: referenceBackend,
  };
  return runLayer(node, ctx, [x]);
}

const f32 = (data: ArrayLike<number>, shape: number[]): Weight => ({ data: Float32Array.from(data), shape });
const input = (shape: number[]): Tensor => ({ shape, data: Float32Array.from(randomNormal(normal, shape.reduce((a, b) => a * b, 1))) });

function agree(t: Test, got: Tensor, want: Tensor, what: string): void {
  t.same(got.shape, want.shape, `${what}: shape`);
  t.ok(relativeError(want.data, got.data) < 1e-4, `${what}: ${relativeError(want.data, got.data)}`);
}

t.test('dense-shaped kinds: svd_dense, tt_dense, tr_dense, ttl_dense', async (t) => {
  const [out, inF] = [12, 8];
  const w = randomNormal(normal, out * inF);
  const x = input([3, inF]);
  const m = [3, 4];
  const n = [2, 4];
  const dense = (weight: Float64Array) => run('dense', { weight: f32(weight, [out, inF]) }, {}, x);

  const s = truncatedSvd(w, out, inF, 3);
  agree(t, run('svd_dense', { u: f32(s.u, [out, s.rank]), v: f32(s.v, [s.rank, inF]) }, {}, x), dense(reconstructSvd(s.u, s.v, out, inF)), 'svd_dense');

  const modes = { out_modes: m, in_modes: n };
  const tt = ttSvd(w, m, n, { maxRank: 3 });
  const ttCores = Object.fromEntries(tt.cores.map((c, k) => [`core.${k}`, f32(c, [tt.ranks[k]!, m[k]!, n[k]!, tt.ranks[k + 1]!])]));
  agree(t, run('tt_dense', ttCores, modes, x), dense(reconstructTt(tt.cores, m, n, tt.ranks)), 'tt_dense');

  const tr = tensorRing(w, m, n, { maxRank: 2 });
  t.ok(tr.ranks[0]! > 1, 'a real ring');
  const trCores = Object.fromEntries(tr.cores.map((c, k) => [`core.${k}`, f32(c, [tr.ranks[k]!, m[k]!, n[k]!, tr.ranks[k + 1]!])]));
  agree(t, run('tr_dense', trCores, modes, x), dense(reconstructTr(tr.cores, m, n, tr.ranks)), 'tr_dense');

  const ttl = tuckerTensorLayer(w, m, n, [2, 3, 2, 2]);
  const dims = [...m, ...n];
  const ttlW: Record<string, Weight> = { core: f32(ttl.core, ttl.ranks) };
  ttl.factors.forEach((f, k) => (ttlW[`factor.${k}`] = f32(f, [dims[k]!, ttl.ranks[k]!])));
  agree(t, run('ttl_dense', ttlW, modes, x), dense(reconstructTtl(ttl, m, n)), 'ttl_dense');
});

t.test('conv-shaped kinds: svd_conv2d, tucker2_conv2d, cp_conv2d', async (t) => {
  const shape: [number, number, number, number] = [6, 4, 3, 3];
  const [O, I, kh, kw] = shape;
  const w = randomNormal(normal, O * I * kh * kw);
  const x = input([2, I, 5, 5]);
  const attrs = { pads: [1, 1, 1, 1] };
  const conv = (weight: Float64Array) => run('conv2d', { weight: f32(weight, [O, I, kh, kw]) }, attrs, x);

  const s = truncatedSvd(w, O, I * kh * kw, 3);
  agree(t, run('svd_conv2d', { v: f32(s.v, [s.rank, I, kh, kw]), u: f32(s.u, [O, s.rank]) }, attrs, x), conv(reconstructSvd(s.u, s.v, O, I * kh * kw)), 'svd_conv2d');

  const tk = tucker2Conv(w, shape, [3, 2]);
  const [r2, r1] = tk.ranks;
  const tkW = { u_in: f32(tk.uIn, [r1, I]), core: f32(tk.core, [r2, r1, kh, kw]), u_out: f32(tk.uOut, [O, r2]) };
  agree(t, run('tucker2_conv2d', tkW, attrs, x), conv(reconstructTucker2(tk, shape)), 'tucker2_conv2d');

  const R = 4;
  const cp = cpConv(w, shape, R, { iters: 50 });
  const cpW = { a_in: f32(cp.aIn, [R, I]), k_h: f32(cp.kH, [R, kh]), k_w: f32(cp.kW, [R, kw]), a_out: f32(cp.aOut, [O, R]) };
  agree(t, run('cp_conv2d', cpW, attrs, x), conv(reconstructCp(cp, shape)), 'cp_conv2d');
});
