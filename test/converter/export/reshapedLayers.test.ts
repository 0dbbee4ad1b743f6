// The reshaped tensorial kinds (rcp / rtk / rtt / rtr, dense and conv2d) exported to ONNX (one
// Einsum over the factors, then Conv or Gemm) and run in onnxruntime against the factorlite runtime
// on the same model, at batch 1 and 5, with f32 and int8 factors; opset 11 (no Einsum) is refused.
import onnxProto from 'onnx-proto';
import t from 'tap';
import { exportOnnx } from '../../../converter/export/index.js';
import type { OpName, StoredTensor } from '../../../runtime/ir.js';
import { agree, single, stored } from './harness.js';

const { onnx } = onnxProto;
const opTypes = (bytes: Uint8Array) => onnx.ModelProto.decode(bytes).graph!.node.map((n) => n.opType!);

type Method = 'rcp' | 'rtk' | 'rtt' | 'rtr';

function factors(method: Method, tm: number[], sm: number[], kh: number, kw: number, ranks: number[], tag: string, dtype: 'f32' | 'i8' = 'f32'): Record<string, StoredTensor> {
  const M = tm.length;
  const w: Record<string, StoredTensor> = {};
  const add = (role: string, shape: number[]) => (w[role] = stored(`${tag}.${role}`, shape, dtype, dtype === 'i8' ? 0 : undefined));
  for (let m = 1; m <= M; m++) {
    const mode = [tm[m - 1]!, sm[m - 1]!];
    add(`factor.${m}`, method === 'rcp' ? [ranks[0]!, ...mode] : method === 'rtk' ? [ranks[m]!, ...mode]
      : method === 'rtt' ? (m === 1 ? [ranks[0]!, ...mode] : [ranks[m - 2]!, ranks[m - 1]!, ...mode]) : [ranks[m - 1]!, ranks[m]!, ...mode]);
  }
  add('factor.0', method === 'rtr' ? [ranks[M]!, ranks[0]!, kh, kw] : [method === 'rtt' ? ranks[M - 1]! : ranks[0]!, kh, kw]);
  if (method === 'rtk') add('core', ranks.slice());
  return w;
}

const convAttrs = { strides: [2, 1], pads: [1, 2, 0, 1], dilations: [1, 2], group: 1 };
const RANKS: Record<Method, { dense: number[]; conv: number[] }> = {
  rcp: { dense: [4], conv: [5] },
  rtk: { dense: [1, 2, 3], conv: [3, 2, 3] },
  rtt: { dense: [3, 1], conv: [3, 4] },
  rtr: { dense: [2, 3, 2], conv: [2, 3, 2] },
};

for (const method of ['rcp', 'rtk', 'rtt', 'rtr'] as const) {
  t.test(`${method}_dense and ${method}_conv2d: Einsum over the factors, then Gemm / Conv`, async (t) => {
    const dense = { ...factors(method, [3, 4], [2, 3], 1, 1, RANKS[method].dense, 'd'), bias: stored('d.b', [12]) };
    const dAttrs = { t_modes: [3, 4], s_modes: [2, 3] };
    const bytes = await agree(t, single(`${method}_dense` as OpName, [6], dense, dAttrs), { opset: 13 });
    t.same(opTypes(bytes).slice(0, 3), ['Einsum', 'Reshape', 'Gemm'], 'Einsum, Reshape, Gemm');
    await agree(t, single(`${method}_dense` as OpName, [2, 6], dense, dAttrs), { opset: 17 });
    const conv = { ...factors(method, [3, 2], [2, 2], 3, 2, RANKS[method].conv, 'c'), bias: stored('c.b', [6]) };
    const cAttrs = { ...convAttrs, t_modes: [3, 2], s_modes: [2, 2] };
    t.same(opTypes(await agree(t, single(`${method}_conv2d` as OpName, [4, 9, 8], conv, cAttrs))), ['Einsum', 'Reshape', 'Conv']);
    const q = factors(method, [3, 2], [2, 2], 3, 2, RANKS[method].conv, 'q', 'i8');
    await agree(t, single(`${method}_conv2d` as OpName, [4, 9, 8], q, cAttrs));
    t.throws(() => exportOnnx(single(`${method}_dense` as OpName, [6], dense, dAttrs), { opset: 11 }), /opset 12/);
  });
}
