// dwlr_conv2d on the int8-full path (runtime/int8full/params.ts dwlrKernelInt8, session.ts,
// converter/int8Full.ts): the integer output of one node against an oracle written from the
// definition (per output, sum over the taps inside of (q - zp) sum_j u[c, j] v[j, t], in BigInt,
// then TFLite's requantisation in BigInt), the dequantised outputs against the f32 session on the
// source model, the converter's balancing of the factors (the same kernels u v), and what the
// reader and the converter refuse: v with a scale per row, kernels that could overflow int32.
import t from 'tap';
import type { GraphNode, Model, StoredTensor } from '../../../runtime/ir.js';
import { balanceDwlr, INT8_KINDS, int8FullRefusals, quantizeInt8Full } from '../../../converter/int8Full.js';
import { Int8Session } from '../../../runtime/int8full/session.js';
import { INT8_FULL_KEY, readInt8Full, type Int8Full } from '../../../runtime/int8full/params.js';
import { Session } from '../../../runtime/session.js';
import { dwlrKernel } from '../../../runtime/layers/dwlrConv2d.js';
import { tensorToFloat32 } from '../../../runtime/format/dtype.js';

function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0;
    return s / 4294967296 * 2 - 1;
  };
}
const rnd = rng(77);
const f32 = (name: string, shape: number[], scale = 0.5, fill?: number): StoredTensor =>
  ({ name, dtype: 'f32', shape, data: Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => fill ?? rnd() * scale) });

interface Conv { strides: number[]; pads: number[]; dilations: number[] }
const C = 5;
const IN = [C, 9, 8];
const PER = IN.reduce((a, b) => a * b, 1);

/** x -> dwlr (attrs, kernel kh x kw of rank r, bias) [-> relu -> global_avg_pool -> flatten -> dense]. */
function model(p: Conv, r: number, kh: number, kw: number, tail: boolean, fill?: number): Model {
  const dw: GraphNode = { name: 'd', op: 'dwlr_conv2d', inputs: ['x'], outputs: ['d.out'], attrs: { ...p, group: C }, weights: { u: 'd.u', v: 'd.v', bias: 'd.b' } };
  const nodes: GraphNode[] = [dw];
  const tensors = [f32('d.u', [C, r], 0.6, fill), f32('d.v', [r, kh, kw], 0.6, fill), f32('d.b', [C], 0.3)];
  if (tail) {
    nodes.push(
      { name: 'r', op: 'relu', inputs: ['d.out'], outputs: ['r.out'], attrs: {}, weights: {} },
      { name: 'g', op: 'global_avg_pool', inputs: ['r.out'], outputs: ['g.out'], attrs: {}, weights: {} },
      { name: 'f', op: 'flatten', inputs: ['g.out'], outputs: ['f.out'], attrs: { axis: 1 }, weights: {} },
      { name: 'fc', op: 'dense', inputs: ['f.out'], outputs: ['fc.out'], attrs: {}, weights: { weight: 'fc.w', bias: 'fc.b' } },
    );
    tensors.push(f32('fc.w', [4, C]), f32('fc.b', [4], 0.1));
  }
  return { graph: { inputs: [{ name: 'x', shape: [-1, ...IN] }], outputs: [nodes[nodes.length - 1]!.outputs[0]!], nodes }, tensors: new Map(tensors.map((x) => [x.name, x])), metadata: {} };
}

const inputs = (n: number, scale = 1) => ({ shape: [n, ...IN], data: Float32Array.from({ length: n * PER }, () => rnd() * scale) });

// TFLite's requantisation in BigInt (gemmlowp SaturatingRoundingDoublingHighMul, RoundingDivideByPOT).
function mbqmBig(x: bigint, m: number, s: number): bigint {
  const a = BigInt.asIntN(32, x << BigInt(s > 0 ? s : 0));
  const ab = a * BigInt(m);
  const hi = (ab + (ab >= 0n ? 1n << 30n : 1n - (1n << 30n))) / (1n << 31n);
  const e = BigInt(s > 0 ? 0 : -s);
  if (e === 0n) return hi;
  const mask = (1n << e) - 1n;
  return (hi >> e) + ((hi & mask) > (mask >> 1n) + (hi < 0n ? 1n : 0n) ? 1n : 0n);
}

const ATTRS: Conv[] = [
  { strides: [1, 1], pads: [1, 1, 1, 1], dilations: [1, 1] },
  { strides: [2, 1], pads: [0, 1, 1, 0], dilations: [1, 2] },
];

t.test('one dwlr node: the integer path = the definition, computed in BigInt', async (t) => {
  ATTRS.forEach((p, ai) => {
    const src = model(p, 2, 3, 3, false);
    const q = quantizeInt8Full(src, inputs(32));
    const st = (q.metadata[INT8_FULL_KEY] as Int8Full).nodes['d']![0]!;
    const u = q.tensors.get('d.u')!;
    const v = q.tensors.get('d.v')!;
    t.equal(v.dtype, 'i8', 'v is int8');
    t.equal(v.quant?.scale.length, 1, 'v has one scale');
    t.equal(u.quant?.scale.length, C, 'u has a scale per channel');
    const s = Int8Session.create(q);
    const x = s.quantizeInput(inputs(2, 1.5));
    const y = s.runInt8(x)['d.out']!;
    const [, , H, W] = x.shape as [number, number, number, number];
    const [, , OH, OW] = y.shape as [number, number, number, number];
    const zp = BigInt(st.in[1]);
    let same = 0;
    let clamped = 0;
    for (let n = 0; n < 2; n++) {
      for (let c = 0; c < C; c++) {
        for (let oy = 0; oy < OH; oy++) {
          for (let ox = 0; ox < OW; ox++) {
            let acc = BigInt(st.bias![c]!);
            for (let ky = 0; ky < 3; ky++) {
              for (let kx = 0; kx < 3; kx++) {
                const iy = oy * p.strides[0]! - p.pads[0]! + ky * p.dilations[0]!;
                const ix = ox * p.strides[1]! - p.pads[1]! + kx * p.dilations[1]!;
                if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
                let k = 0n;
                for (let j = 0; j < 2; j++) k += BigInt(u.data[c * 2 + j]!) * BigInt(v.data[j * 9 + ky * 3 + kx]!);
                acc += (BigInt(x.data[((n * C + c) * H + iy) * W + ix]!) - zp) * k;
              }
            }
            let o = Number(mbqmBig(acc, st.mult[c]!, st.shift[c]!)) + st.out[1];
            if (o < st.min || o > st.max) clamped++;
            o = Math.max(st.min, Math.min(st.max, o));
            if (y.data[((n * C + c) * OH + oy) * OW + ox] === o) same++;
          }
        }
      }
    }
    t.equal(same, y.data.length, `attrs ${ai}: all ${y.data.length} outputs are the definition's (${clamped} clamped)`);
  });
});

t.test('dwlr -> relu -> pool -> dense: the integer path close to the f32 model, the factors balanced', async (t) => {
  const src = model(ATTRS[0]!, 3, 3, 3, true);
  t.same(int8FullRefusals(src), [], 'the integer path takes dwlr_conv2d');
  t.ok(INT8_KINDS.has('dwlr_conv2d'), 'auto may pick dwlr_conv2d with --quant int8-full');
  const bal = balanceDwlr(src);
  const k0 = dwlrKernel(tensorToFloat32(src.tensors.get('d.u')!), tensorToFloat32(src.tensors.get('d.v')!), C, 3, 9);
  const k1 = dwlrKernel(tensorToFloat32(bal.tensors.get('d.u')!), tensorToFloat32(bal.tensors.get('d.v')!), C, 3, 9);
  t.ok(k0.every((k, i) => Math.abs(k - k1[i]!) <= 1e-6 * Math.max(1, Math.abs(k))), 'balancing keeps the kernels u v');
  const v = tensorToFloat32(bal.tensors.get('d.v')!);
  for (let j = 0; j < 3; j++) t.equal(Math.round(1e6 * Math.max(...Array.from(v.subarray(j * 9, j * 9 + 9), Math.abs))) / 1e6, 1, `row ${j} of v has max |v| = 1`);
  const q = quantizeInt8Full(src, inputs(64));
  t.doesNotThrow(() => readInt8Full(q), 'the reader takes the file');
  const xs = inputs(16);
  const want = Session.create(src).runBatch(xs).data;
  const got = Int8Session.create(q).runBatch(xs).data;
  let worst = 0;
  for (let i = 0; i < want.length; i++) worst = Math.max(worst, Math.abs(got[i]! - want[i]!));
  const range = Math.max(...want) - Math.min(...want);
  t.ok(worst <= 0.03 * range, `max |int8-full - f32| ${worst.toExponential(2)} <= 3% of the outputs' range ${range.toExponential(2)}`);
  t.ok(got.some((g, i) => g !== want[i]), 'the integer path is not the f32 one');
});

t.test('the reader refuses a dwlr whose v has a scale per row, or whose kernels could overflow int32', async (t) => {
  const q = quantizeInt8Full(model(ATTRS[0]!, 2, 3, 3, false), inputs(16));
  const v = q.tensors.get('d.v')!;
  const perRow = new Map(q.tensors);
  perRow.set('d.v', { ...v, quant: { scale: Float32Array.of(v.quant!.scale[0]!, v.quant!.scale[0]!), axis: 0 } });
  t.throws(() => readInt8Full({ ...q, tensors: perRow }), /v is not an int8 tensor with one scale/);
  const meta = structuredClone(q.metadata[INT8_FULL_KEY]) as Int8Full;
  meta.nodes['d']![0]!.bias![1] = 2147483000;
  t.throws(() => readInt8Full({ ...q, metadata: { ...q.metadata, [INT8_FULL_KEY]: meta } }), /channel 1's kernel u v could overflow/);
});

t.test('the converter refuses a dwlr whose int8 kernels could overflow the int32 accumulator', async (t) => {
  // 7x7 of rank 16, every factor 1: K = 16 * 127^2 per tap, 256 * 49 K > 2^31.
  const src = model({ strides: [1, 1], pads: [3, 3, 3, 3], dilations: [1, 1] }, 16, 7, 7, false, 1);
  t.throws(() => quantizeInt8Full(src, inputs(8)), /node d \(dwlr_conv2d\): channel 0's kernel u v could overflow/);
});
