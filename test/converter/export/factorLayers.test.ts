// Every layer kind with weights, exported to ONNX and run in onnxruntime against the factorlite
// runtime on the same model, at batch 1 and 5.
import onnxProto from 'onnx-proto';
import t from 'tap';
import { exportOnnx } from '../../../converter/export/index.js';
import { agree, single, stored } from './harness.js';

const { onnx } = onnxProto;
const convAttrs = { strides: [2, 1], pads: [1, 2, 0, 1], dilations: [1, 2], group: 1 };

function initializerSizes(bytes: Uint8Array): Map<string, number> {
  const m = onnx.ModelProto.decode(bytes);
  return new Map(m.graph!.initializer.map((i) => [i.name!, i.dims.reduce((a: number, d) => a * Number(d), 1)]));
}

function opTypes(bytes: Uint8Array): string[] {
  return onnx.ModelProto.decode(bytes).graph!.node.map((n) => n.opType!);
}

t.test('dense: Gemm on rows, MatMul + Add on a rank-3 input', async (t) => {
  const w = { weight: stored('w', [7, 11]), bias: stored('b', [7]) };
  t.same(opTypes(await agree(t, single('dense', [11], w))), ['Gemm']);
  t.same(opTypes(await agree(t, single('dense', [3, 11], w))), ['MatMul', 'Add']);
  await agree(t, single('dense', [11], { weight: stored('w2', [5, 11]) }));
});

t.test('conv2d, plain and grouped', async (t) => {
  await agree(t, single('conv2d', [3, 9, 8], { weight: stored('w', [5, 3, 3, 2]), bias: stored('b', [5]) }, convAttrs));
  await agree(t, single('conv2d', [4, 7, 7], { weight: stored('w', [6, 2, 3, 3]) }, { pads: [1, 1, 1, 1], group: 2 }));
});

t.test('svd_dense: two Gemms through the rank', async (t) => {
  const m = single('svd_dense', [11], { u: stored('u', [7, 3]), v: stored('v', [3, 11]), bias: stored('b', [7]) });
  t.same(opTypes(await agree(t, m)), ['Gemm', 'Gemm']);
  await agree(t, single('svd_dense', [2, 11], { u: stored('u', [7, 3]), v: stored('v', [3, 11]) }));
});

t.test('svd_conv2d', async (t) => {
  const m = single('svd_conv2d', [3, 9, 8], { v: stored('v', [2, 3, 3, 2]), u: stored('u', [5, 2]), bias: stored('b', [5]) }, convAttrs);
  t.same(opTypes(await agree(t, m)), ['Conv', 'Conv']);
});

t.test('tucker2_conv2d', async (t) => {
  const m = single('tucker2_conv2d', [6, 9, 8], {
    u_in: stored('ui', [3, 6]), core: stored('c', [4, 3, 3, 2]), u_out: stored('uo', [5, 4]), bias: stored('b', [5]),
  }, convAttrs);
  t.same(opTypes(await agree(t, m)), ['Conv', 'Conv', 'Conv']);
});

t.test('cp_conv2d: 1x1, depthwise kh x 1, depthwise 1 x kw, 1x1', async (t) => {
  const w = { a_in: stored('ai', [4, 3]), k_h: stored('kh', [4, 3]), k_w: stored('kw', [4, 2]), a_out: stored('ao', [5, 4]), bias: stored('b', [5]) };
  t.same(opTypes(await agree(t, single('cp_conv2d', [3, 9, 8], w, convAttrs))), ['Conv', 'Conv', 'Conv', 'Conv']);
  await agree(t, single('cp_conv2d', [3, 10, 10], w, { strides: [2, 3], pads: [2, 0, 1, 3], dilations: [2, 1] }));
});

function ttCores(ranks: number[], out: number[], inp: number[], prefix: string) {
  const w: Record<string, ReturnType<typeof stored>> = {};
  out.forEach((m, k) => (w[`core.${k}`] = stored(`${prefix}${k}`, [ranks[k]!, m, inp[k]!, ranks[k + 1]!])));
  return w;
}

t.test('tt_dense: MatMul chain, no dense weight', async (t) => {
  const outModes = [2, 3, 4];
  const inModes = [4, 2, 3];
  const w = { ...ttCores([1, 3, 2, 1], outModes, inModes, 'g'), bias: stored('b', [24]) };
  const bytes = await agree(t, single('tt_dense', [24], w, { out_modes: outModes, in_modes: inModes }));
  t.ok(Math.max(...initializerSizes(bytes).values()) < 24 * 24, 'no initializer as large as the 24x24 weight');
  t.notOk(opTypes(bytes).includes('Transpose'), 'a train needs no Transpose');
  await agree(t, single('tt_dense', [2, 24], w, { out_modes: outModes, in_modes: inModes }));
  await agree(t, single('tt_dense', [5], ttCores([1, 1], [3], [5], 'h'), { out_modes: [3], in_modes: [5] }));
});

t.test('tr_dense: the ring closed by an exact trace', async (t) => {
  const outModes = [3, 2, 2];
  const inModes = [2, 4, 3];
  const w = { ...ttCores([3, 2, 4, 3], outModes, inModes, 'g'), bias: stored('b', [12]) };
  const bytes = await agree(t, single('tr_dense', [24], w, { out_modes: outModes, in_modes: inModes }));
  t.ok(Math.max(...initializerSizes(bytes).values()) < 12 * 24);
  await agree(t, single('tr_dense', [3, 24], w, { out_modes: outModes, in_modes: inModes }));
  await agree(t, single('tr_dense', [6], ttCores([2, 2], [4], [6], 'h'), { out_modes: [4], in_modes: [6] }));
});

t.test('ttl_dense: mode products, core, output modes', async (t) => {
  const outModes = [3, 4];
  const inModes = [2, 3, 4];
  const ranks = [2, 3, 2, 2, 3];
  const w: Record<string, ReturnType<typeof stored>> = { core: stored('core', ranks), bias: stored('b', [12]) };
  [...outModes, ...inModes].forEach((d, k) => (w[`factor.${k}`] = stored(`f${k}`, [d, ranks[k]!])));
  const bytes = await agree(t, single('ttl_dense', [24], w, { out_modes: outModes, in_modes: inModes }));
  t.ok(Math.max(...initializerSizes(bytes).values()) < 12 * 24);
  await agree(t, single('ttl_dense', [2, 24], w, { out_modes: outModes, in_modes: inModes }));
});

t.test('f16 and int8 factors become f32 initializers with the same values', async (t) => {
  const m = single('svd_dense', [11], { u: stored('u', [7, 3], 'f16'), v: stored('v', [3, 11], 'i8', 0), bias: stored('b', [7], 'i8') });
  const bytes = await agree(t, m);
  const types = onnx.ModelProto.decode(bytes).graph!.initializer.map((i) => i.dataType);
  t.ok(types.every((d) => d === onnx.TensorProto.DataType.FLOAT));
  await agree(t, single('cp_conv2d', [3, 8, 8], {
    a_in: stored('ai', [4, 3], 'f16'), k_h: stored('kh', [4, 3], 'i8'), k_w: stored('kw', [4, 3], 'f16'), a_out: stored('ao', [5, 4], 'i8', 0),
  }, { pads: [1, 1, 1, 1] }));
});

t.test('other opsets and their IR versions', async (t) => {
  const w = { ...ttCores([2, 3, 2], [3, 4], [4, 5], 'g'), bias: stored('b', [12]) };
  const m = single('tr_dense', [20], w, { out_modes: [3, 4], in_modes: [4, 5] });
  for (const [opset, ir] of [[11, 7], [13, 7], [17, 8], [21, 10]] as const) {
    const bytes = await agree(t, m, { opset });
    const p = onnx.ModelProto.decode(bytes);
    t.equal(Number(p.irVersion), ir, `opset ${opset} -> IR ${ir}`);
    t.equal(Number(p.opsetImport[0]!.version), opset);
  }
  t.throws(() => exportOnnx(m, { opset: 9 }), { code: 'EXPORT_BAD_OPTIONS' });
});

t.test('bad models fail with a typed error', async (t) => {
  const m = single('svd_dense', [11], { u: stored('u', [7, 3]), v: stored('v', [4, 11]) });
  t.throws(() => exportOnnx(m), { code: 'EXPORT_BAD_MODEL' });
  const g = single('cp_conv2d', [4, 8, 8], { a_in: stored('ai', [4, 4]), k_h: stored('kh', [4, 3]), k_w: stored('kw', [4, 3]), a_out: stored('ao', [5, 4]) }, { group: 2 });
  t.throws(() => exportOnnx(g), { code: 'EXPORT_UNSUPPORTED' });
  const missing = single('dense', [11], {});
  t.throws(() => exportOnnx(missing), { code: 'EXPORT_BAD_MODEL' });
});
