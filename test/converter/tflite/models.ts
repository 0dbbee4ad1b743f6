// Small seeded models that use every kind the TFLite exporter writes: NCHW with several channels
// (so a layout slip shows), SAME and explicit pads, strides, depthwise, constants, pools.
import type { Model, StoredTensor } from '../../../runtime/ir.js';
import { chainModel, stored } from '../export/harness.js';

/** conv (SAME) + relu, max pool, svd_conv2d, tucker2_conv2d, cp_conv2d (stride 2, PAD), flatten, svd_dense, dense, softmax. */
export function factorChain(): Model {
  return chainModel([3, 12, 12], [
    { op: 'conv2d', weights: { weight: stored('c1.w', [8, 3, 3, 3]), bias: stored('c1.b', [8]) }, attrs: { strides: [1, 1], pads: [1, 1, 1, 1], dilations: [1, 1], group: 1 } },
    { op: 'relu' },
    { op: 'max_pool', attrs: { kernel: [2, 2], strides: [2, 2], pads: [0, 0, 0, 0], dilations: [1, 1], ceil_mode: 0 } },
    { op: 'svd_conv2d', weights: { v: stored('s.v', [4, 8, 3, 3]), u: stored('s.u', [10, 4]), bias: stored('s.b', [10]) }, attrs: { strides: [1, 1], pads: [0, 0, 0, 0], dilations: [1, 1], group: 1 } },
    { op: 'tucker2_conv2d', weights: { u_in: stored('t.ui', [3, 10]), core: stored('t.core', [5, 3, 3, 3]), u_out: stored('t.uo', [12, 5]), bias: stored('t.b', [12]) }, attrs: { strides: [1, 1], pads: [1, 1, 1, 1], dilations: [1, 1], group: 1 } },
    { op: 'relu' },
    { op: 'cp_conv2d', weights: { a_in: stored('cp.ai', [4, 12]), k_h: stored('cp.kh', [4, 3]), k_w: stored('cp.kw', [4, 3]), a_out: stored('cp.ao', [6, 4]), bias: stored('cp.b', [6]) }, attrs: { strides: [2, 2], pads: [1, 1, 1, 1], dilations: [1, 1], group: 1 } },
    { op: 'flatten', attrs: { axis: 1 } },
    { op: 'svd_dense', weights: { u: stored('d.u', [16, 5]), v: stored('d.v', [5, 24]), bias: stored('d.b', [16]) } },
    { op: 'relu' },
    { op: 'dense', weights: { weight: stored('o.w', [7, 16]), bias: stored('o.b', [7]) } },
    { op: 'softmax', attrs: { axis: 1 } },
  ]);
}

/** Depthwise conv with asymmetric pads (PAD), constant add/mul, sigmoid, relu6, global average pool, dense. */
export function depthwiseChain(): Model {
  return chainModel([4, 9, 9], [
    { op: 'conv2d', weights: { weight: stored('dw.w', [8, 1, 3, 3]), bias: stored('dw.b', [8]) }, attrs: { strides: [1, 1], pads: [0, 1, 2, 0], dilations: [1, 1], group: 4 } },
    { op: 'add', inputs: ['v0', 'k.add'], constants: [stored('k.add', [8, 1, 1])] },
    { op: 'sigmoid' },
    { op: 'mul', inputs: ['v2', 'k.mul'], constants: [stored('k.mul', [8, 1, 1])] },
    { op: 'clip', attrs: { min: 0, max: 6 } },
    { op: 'avg_pool', attrs: { kernel: [3, 2], strides: [3, 2], pads: [0, 0, 0, 0], ceil_mode: 0, count_include_pad: 0 } },
    { op: 'global_avg_pool' },
    { op: 'flatten', attrs: { axis: 1 } },
    { op: 'dense', weights: { weight: stored('dd.w', [3, 8]), bias: stored('dd.b', [3]) } },
  ]);
}

/** NCHW samples -> NHWC, for TFLite. */
export function toNhwc(x: Float32Array, n: number, c: number, h: number, w: number): Float32Array {
  const out = new Float32Array(x.length);
  for (let i = 0; i < n; i++) for (let ch = 0; ch < c; ch++) for (let y = 0; y < h; y++) for (let xx = 0; xx < w; xx++) {
    out[((i * h + y) * w + xx) * c + ch] = x[((i * c + ch) * h + y) * w + xx]!;
  }
  return out;
}

function cores(ranks: number[], out: number[], inp: number[], prefix: string): Record<string, StoredTensor> {
  const w: Record<string, StoredTensor> = {};
  out.forEach((m, k) => (w[`core.${k}`] = stored(`${prefix}${k}`, [ranks[k]!, m, inp[k]!, ranks[k + 1]!])));
  return w;
}

/** The tensor-network dense kinds, one model each; rank-4 input flattened first (NHWC order on the way). */
export function tensorNetModels(): Array<[string, Model]> {
  const ttlW: Record<string, StoredTensor> = { core: stored('ttl.core', [2, 3, 2, 2, 3]), bias: stored('ttl.b', [12]) };
  [3, 4, 2, 3, 4].forEach((d, k) => (ttlW[`factor.${k}`] = stored(`ttl.f${k}`, [d, [2, 3, 2, 2, 3][k]!])));
  return [
    ['tt_dense (3 cores, bias, relu)', chainModel([2, 3, 4], [
      { op: 'flatten', attrs: { axis: 1 } },
      { op: 'tt_dense', weights: { ...cores([1, 3, 2, 1], [2, 3, 4], [4, 2, 3], 'tt.g'), bias: stored('tt.b', [24]) }, attrs: { out_modes: [2, 3, 4], in_modes: [4, 2, 3] } },
      { op: 'relu' },
      { op: 'dense', weights: { weight: stored('tt.o', [5, 24]), bias: stored('tt.ob', [5]) } },
    ])],
    ['tr_dense (ring of 3, bias, relu6)', chainModel([2, 3, 4], [
      { op: 'flatten', attrs: { axis: 1 } },
      { op: 'tr_dense', weights: { ...cores([3, 2, 4, 3], [3, 2, 2], [2, 4, 3], 'tr.g'), bias: stored('tr.b', [12]) }, attrs: { out_modes: [3, 2, 2], in_modes: [2, 4, 3] } },
      { op: 'clip', attrs: { min: 0, max: 6 } },
      { op: 'dense', weights: { weight: stored('tr.o', [4, 12]), bias: stored('tr.ob', [4]) } },
    ])],
    ['ttl_dense (2 out, 3 in modes, bias, tanh)', chainModel([2, 3, 4], [
      { op: 'flatten', attrs: { axis: 1 } },
      { op: 'ttl_dense', weights: ttlW, attrs: { out_modes: [3, 4], in_modes: [2, 3, 4] } },
      { op: 'tanh' },
      { op: 'dense', weights: { weight: stored('ttl.o', [3, 12]), bias: stored('ttl.ob', [3]) } },
    ])],
    ['tt_dense and tr_dense of one core, 2 cores, no bias', chainModel([1, 2, 5], [
      { op: 'flatten', attrs: { axis: 1 } },
      { op: 'tt_dense', weights: cores([1, 1], [6], [10], 'tt1.g'), attrs: { out_modes: [6], in_modes: [10] } },
      { op: 'relu' },
      { op: 'tr_dense', weights: cores([2, 2], [4], [6], 'tr1.g'), attrs: { out_modes: [4], in_modes: [6] } },
      { op: 'tr_dense', weights: cores([2, 3, 2], [2, 3], [2, 2], 'tr2.g'), attrs: { out_modes: [2, 3], in_modes: [2, 2] } },
    ])],
  ];
}
