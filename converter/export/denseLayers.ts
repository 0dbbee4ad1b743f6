// Dense-shaped kinds as ONNX: Gemm / MatMul chains that contract the input through the factors.
// No dense weight of a factorised layer is ever formed; every initializer is a factor (or a
// permutation of one).
import { attrInts, numel } from '../../runtime/ir.js';
import {
  asRows, expect2d, fail, initializer, linear, reshapedInitializer, type EmitContext, type Emitter, type ExportWeight,
} from './context.js';

export const dense: Emitter = (ctx) => {
  const w = ctx.weight('weight');
  expect2d(ctx, 'weight', w, -1, -1);
  const rank = ctx.ranks[0]!;
  linear(ctx, ctx.inputs[0]!, rank, w, ctx.optionalWeight('bias'), ctx.node.name, ctx.output);
  return rank;
};

/** y = (x v^T) u^T + b: two Gemms through the rank-r bottleneck. */
export const svdDense: Emitter = (ctx) => {
  const u = ctx.weight('u');
  const v = ctx.weight('v');
  expect2d(ctx, 'u', u, -1, -1);
  expect2d(ctx, 'v', v, u.shape[1]!, -1);
  const rank = ctx.ranks[0]!;
  const t = linear(ctx, ctx.inputs[0]!, rank, v, undefined, `${ctx.node.name}/v`);
  linear(ctx, t, rank, u, ctx.optionalWeight('bias'), `${ctx.node.name}/u`, ctx.output);
  return rank;
};

function chainModes(ctx: EmitContext): { outModes: number[]; inModes: number[]; cores: ExportWeight[]; ranks: number[] } {
  const outModes = attrInts(ctx.node, 'out_modes');
  const inModes = attrInts(ctx.node, 'in_modes');
  const d = outModes.length;
  if (d < 1 || inModes.length !== d) fail(ctx, 'out_modes and in_modes must have the same length ≥ 1');
  const cores: ExportWeight[] = [];
  const ranks: number[] = [];
  for (let k = 0; k < d; k++) {
    const c = ctx.weight(`core.${k}`);
    const [ra, m, n, rb] = c.shape;
    if (c.shape.length !== 4 || m !== outModes[k] || n !== inModes[k]) fail(ctx, `core.${k} has shape [${c.shape}], expected [?, ${outModes[k]}, ${inModes[k]}, ?]`);
    if (k === 0) ranks.push(ra!);
    else if (ra !== ranks[k]) fail(ctx, `core.${k} rank ${ra} does not match ${ranks[k]}`);
    ranks.push(rb!);
    cores.push(c);
  }
  if (ranks[d] !== ranks[0]) fail(ctx, `first and last ranks differ (${ranks[0]} vs ${ranks[d]})`);
  return { outModes, inModes, cores, ranks };
}

/**
 * A core G[r_a, m, n, r_b] as the left operand of a MatMul that contracts (r_a, n):
 * [(m r_b), (r_a n)]. For the first core of a ring, r_a joins the output side instead:
 * [(r_a m r_b), n], so r_0 rides along as a batch-like axis until the trace.
 */
function coreOperand(ctx: EmitContext, core: ExportWeight, ringFirst: boolean): string {
  const [ra, m, n, rb] = core.shape as [number, number, number, number];
  const rows = ringFirst ? ra * m * rb : m * rb;
  const cols = ringFirst ? n : ra * n;
  const g = new Float32Array(rows * cols);
  for (let a = 0; a < ra; a++) {
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) {
        for (let b = 0; b < rb; b++) {
          const v = core.data[((a * m + i) * n + j) * rb + b]!;
          if (ringFirst) g[((a * m + i) * rb + b) * cols + j] = v;
          else g[(i * rb + b) * cols + a * n + j] = v;
        }
      }
    }
  }
  return ctx.b.float(`${core.tensor.name}:lhs`, [rows, cols], g, `${core.tensor.name}\u0000lhs${ringFirst ? 'ring' : ''}`);
}

/**
 * TT / TR matrix layers, contracted core by core (as runtime/layers/ttDense.ts does):
 * state Z [P, (r_k n_k), Q_k] with P = N (r_0) m_0..m_{k-1}, Q_k = n_{k+1}..n_{d-1};
 * MatMul(G_k as [(m_k r_{k+1}), (r_k n_k)], Z) -> [P, (m_k r_{k+1}), Q_k], which is already
 * [P m_k, (r_{k+1} n_{k+1}), Q_{k+1}] in memory: a Reshape, no Transpose, between steps.
 * A ring ends at [N, r_0, out, r_d]; the trace over r_0 = r_d is a Transpose to
 * [N, out, (r_0 r_d)] and a MatMul with vec(I) [(R R), 1], exact (products by 0 and 1).
 */
function chain(ring: boolean): Emitter {
  return (ctx) => {
    const { outModes, inModes, cores, ranks } = chainModes(ctx);
    const d = cores.length;
    const R = ranks[0]!;
    if (!ring && R !== 1) fail(ctx, 'a tensor train has boundary ranks 1');
    const out = numel(outModes);
    const inF = numel(inModes);
    const bias = ctx.optionalWeight('bias');
    if (bias && (bias.shape.length !== 1 || bias.shape[0] !== out)) fail(ctx, `bias has shape [${bias.shape}], expected [${out}]`);
    const rank = ctx.ranks[0]!;
    const name = ctx.node.name;
    const { rows, finish } = asRows(ctx, ctx.inputs[0]!, rank, inF);
    let z = ctx.b.node('Reshape', [rows, ctx.b.int64('shape', [-1, inModes[0]!, inF / inModes[0]!])], `${name}/z0`);
    for (let k = 0; k < d; k++) {
      const g = coreOperand(ctx, cores[k]!, ring && k === 0);
      z = ctx.b.node('MatMul', [g, z], `${name}/core${k}`);
      if (k + 1 < d) {
        const q = numel(inModes.slice(k + 2));
        z = ctx.b.node('Reshape', [z, ctx.b.int64('shape', [-1, ranks[k + 1]! * inModes[k + 1]!, q])], `${name}/z${k + 1}`);
      }
    }
    if (ring) {
      z = ctx.b.node('Reshape', [z, ctx.b.int64('shape', [-1, R, out, R])], `${name}/ring`);
      z = ctx.b.node('Transpose', [z], `${name}/ringT`, { perm: [0, 2, 1, 3] });
      z = ctx.b.node('Reshape', [z, ctx.b.int64('shape', [-1, out, R * R])], `${name}/pairs`);
      const eye = new Float32Array(R * R);
      for (let a = 0; a < R; a++) eye[a * R + a] = 1;
      z = ctx.b.node('MatMul', [z, ctx.b.float(`${name}/trace_mask`, [R * R, 1], eye)], `${name}/trace`);
    }
    finish(z, out, bias);
    return rank;
  };
}

export const ttDense = chain(false);
export const trDense = chain(true);

/**
 * Tucker tensor layer: for each input mode k, Reshape to [-1, n_k, post] and MatMul(F_k^T, .)
 * (mode product, -> s_k); the core as a Gemm [N, S] x [R, S]^T; then each output mode by
 * MatMul(F_k, .) (r_k -> m_k); the bias last.
 */
export const ttlDense: Emitter = (ctx) => {
  const outModes = attrInts(ctx.node, 'out_modes');
  const inModes = attrInts(ctx.node, 'in_modes');
  const p = outModes.length;
  const q = inModes.length;
  const core = ctx.weight('core');
  if (core.shape.length !== p + q) fail(ctx, `core must have ${p + q} modes, got [${core.shape}]`);
  const dims = [...outModes, ...inModes];
  const factors = dims.map((dim, k) => {
    const f = ctx.weight(`factor.${k}`);
    expect2d(ctx, `factor.${k}`, f, dim, core.shape[k]!);
    return f;
  });
  const rOut = core.shape.slice(0, p);
  const sIn = core.shape.slice(p);
  const out = numel(outModes);
  const inF = numel(inModes);
  const bias = ctx.optionalWeight('bias');
  if (bias && (bias.shape.length !== 1 || bias.shape[0] !== out)) fail(ctx, `bias has shape [${bias.shape}], expected [${out}]`);
  const rank = ctx.ranks[0]!;
  const name = ctx.node.name;
  const { rows, finish } = asRows(ctx, ctx.inputs[0]!, rank, inF);
  let z = rows;
  for (let k = 0; k < q; k++) {
    const f = factors[p + k]!;
    const post = numel(inModes.slice(k + 1));
    z = ctx.b.node('Reshape', [z, ctx.b.int64('shape', [-1, inModes[k]!, post])], `${name}/in${k}`);
    // F_k is [n_k, s_k]; the left operand contracts n_k, so it goes in transposed.
    const ft = new Float32Array(f.data.length);
    for (let a = 0; a < inModes[k]!; a++) for (let s = 0; s < sIn[k]!; s++) ft[s * inModes[k]! + a] = f.data[a * sIn[k]! + s]!;
    z = ctx.b.node('MatMul', [ctx.b.float(`${f.tensor.name}:T`, [sIn[k]!, inModes[k]!], ft, `${f.tensor.name}\u0000T`), z], `${name}/mode${p + k}`);
  }
  z = ctx.b.node('Reshape', [z, ctx.b.int64('shape', [-1, numel(sIn)])], `${name}/s`);
  const coreMat = { ...core, shape: [numel(rOut), numel(sIn)] };
  z = ctx.b.node('Gemm', [z, reshapedInitializer(ctx, coreMat, coreMat.shape, 'unfolded')], `${name}/core`, { transB: 1 });
  for (let k = 0; k < p; k++) {
    const post = numel(rOut.slice(k + 1));
    z = ctx.b.node('Reshape', [z, ctx.b.int64('shape', [-1, rOut[k]!, post])], `${name}/out${k}`);
    z = ctx.b.node('MatMul', [initializer(ctx, factors[k]!), z], `${name}/mode${k}`);
  }
  finish(z, out, bias);
  return rank;
};
