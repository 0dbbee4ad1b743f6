// --quant: f16, int8 per channel (int8 = int8-channel) and int8 per tensor. Each stored tensor is
// checked against the f32 original within its dtype's rounding bound, biases stay f32, the file
// round-trips, and a model's outputs stay close to the f32 model's.
import t from 'tap';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { compressModel } from '../../converter/compress.js';
import { quantizeModel, quantizeWeight, QUANTS } from '../../converter/quantize.js';
import { writeFlmFile } from '../../converter/writer.js';
import { readFlmFile } from '../../runtime/format/index.js';
import { tensorToFloat32 } from '../../runtime/format/dtype.js';
import type { Model, StoredTensor } from '../../runtime/ir.js';
import { Session } from '../../runtime/session.js';
import { cliJson } from '../support/cli.js';

let seed = 4242;
function rnd(n: number, scale = 1): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    a[i] = (seed / 2147483648 - 0.5) * scale;
  }
  return a;
}

/** A 2-D tensor whose rows differ in scale by 100x: per-channel scales must win there. */
function skewed(): StoredTensor {
  const rows = 8, cols = 33;
  const data = rnd(rows * cols);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) data[r * cols + c]! *= r === 0 ? 100 : 1;
  return { name: 'w', dtype: 'f32', shape: [rows, cols], data };
}

t.test('each quant stores what it says, within its rounding bound', async (t) => {
  const w = skewed();
  const [rows, cols] = w.shape as [number, number];
  const f16 = quantizeWeight(w, 'f16');
  t.equal(f16.dtype, 'f16');
  const back16 = tensorToFloat32(f16);
  for (let i = 0; i < back16.length; i++) t.ok(Math.abs(back16[i]! - w.data[i]!) <= Math.abs(w.data[i] as number) * 2 ** -11 + 1e-7, `f16 element ${i}`);

  const ch = quantizeWeight(w, 'int8-channel');
  t.equal(ch.dtype, 'i8');
  t.equal(ch.quant?.axis, 0);
  t.equal(ch.quant?.scale.length, rows);
  const plain = quantizeWeight(w, 'int8');
  t.same([...plain.quant!.scale], [...ch.quant!.scale], 'int8 is int8-channel');
  t.same([...(plain.data as Int8Array)], [...(ch.data as Int8Array)]);
  const tensor = quantizeWeight(w, 'int8-tensor');
  t.equal(tensor.quant?.axis, undefined);
  t.equal(tensor.quant?.scale.length, 1);

  const errs = (q: StoredTensor) => {
    const x = tensorToFloat32(q);
    let worst = 0;
    for (let r = 0; r < rows; r++) {
      const s = q.quant!.scale.length === 1 ? q.quant!.scale[0]! : q.quant!.scale[r]!;
      for (let c = 0; c < cols; c++) {
        const e = Math.abs(x[r * cols + c]! - w.data[r * cols + c]!);
        t.ok(e <= s / 2 + 1e-6, `row ${r}: error ${e} <= scale/2 ${s / 2}`);
        if (r > 0) worst = Math.max(worst, e);
      }
    }
    return worst;
  };
  const eCh = errs(ch);
  const eT = errs(tensor);
  t.ok(eCh * 10 < eT, `on the small rows per-channel error ${eCh} is far below per-tensor ${eT}`);
  // A 1-D tensor has one scale either way.
  const v = quantizeWeight({ name: 'v', dtype: 'f32', shape: [5], data: rnd(5) }, 'int8');
  t.equal(v.quant?.scale.length, 1);
  t.equal(v.quant?.axis, undefined);
  t.same(QUANTS, ['f32', 'f16', 'int8', 'int8-channel', 'int8-tensor']);
});

function mlp(): Model {
  const tensors: StoredTensor[] = [
    { name: 'w1', dtype: 'f32', shape: [40, 30], data: rnd(1200, 0.3) },
    { name: 'b1', dtype: 'f32', shape: [40], data: rnd(40) },
    { name: 'w2', dtype: 'f32', shape: [10, 40], data: rnd(400, 0.3) },
    { name: 'b2', dtype: 'f32', shape: [10], data: rnd(10) },
  ];
  return {
    graph: {
      inputs: [{ name: 'x', shape: [-1, 30] }],
      outputs: ['y'],
      nodes: [
        { name: 'fc1', op: 'dense', inputs: ['x'], outputs: ['h'], attrs: {}, weights: { weight: 'w1', bias: 'b1' } },
        { name: 'act', op: 'relu', inputs: ['h'], outputs: ['h2'], attrs: {}, weights: {} },
        { name: 'fc2', op: 'dense', inputs: ['h2'], outputs: ['y'], attrs: {}, weights: { weight: 'w2', bias: 'b2' } },
      ],
    },
    tensors: new Map(tensors.map((x) => [x.name, x])),
    metadata: {},
  };
}

t.test('factorised models in every quant: biases f32, file round trip, outputs near f32', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'fl-quant-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const x = { shape: [16, 30], data: rnd(16 * 30) };
  for (const method of ['svd', 'tt', 'tucker'] as const) {
    const { model } = compressModel(mlp(), { method, ratio: 2 });
    const ref = Session.create(model).runBatch(x);
    let scale = 0;
    for (const v of ref.data) scale = Math.max(scale, Math.abs(v));
    const sizes: Record<string, number> = {};
    for (const q of QUANTS) {
      const qm = quantizeModel(model, q);
      t.equal(qm.metadata['convert.quant'], q === 'f32' ? undefined : q);
      for (const n of qm.graph.nodes) {
        for (const [role, name] of Object.entries(n.weights)) {
          const st = qm.tensors.get(name)!;
          const want = role === 'bias' || q === 'f32' ? 'f32' : q === 'f16' ? 'f16' : 'i8';
          t.equal(st.dtype, want, `${method} ${q}: ${n.name}.${role} is ${want}`);
          if (want === 'i8') t.equal(st.quant!.scale.length, q === 'int8-tensor' || st.shape.length < 2 ? 1 : st.shape[0]);
        }
      }
      const path = join(dir, `${method}-${q}.flm`);
      await writeFlmFile(qm, path);
      sizes[q] = statSync(path).size;
      const back = await readFlmFile(path);
      const y = Session.create(back).runBatch(x);
      let d = 0;
      for (let i = 0; i < y.data.length; i++) d = Math.max(d, Math.abs(y.data[i]! - ref.data[i]!));
      const tol = q === 'f32' ? 0 : q === 'f16' ? 2e-3 : 6e-2;
      t.ok(d <= tol * scale, `${method} ${q}: max |y - y_f32| ${d.toExponential(2)} <= ${tol} x ${scale.toFixed(2)}`);
    }
    t.ok(sizes['f16']! < sizes['f32']! && sizes['int8']! < sizes['f16']! && sizes['int8-tensor']! <= sizes['int8-channel']!, `${method}: sizes ${JSON.stringify(sizes)}`);
  }
});

t.test('convert --quant int8-tensor / int8-channel from the command line', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'fl-quantcli-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const src = join(dir, 'mlp.flm');
  await writeFlmFile(mlp(), src);
  for (const q of ['int8-tensor', 'int8-channel'] as const) {
    const out = join(dir, `${q}.flm`);
    const j = cliJson(['convert', src, '-o', out, '--method', 'svd', '--ratio', '2', '--quant', q, '--json']);
    t.equal(j.quant, q);
    const m = await readFlmFile(out);
    const u = [...m.tensors.values()].find((s) => s.name.endsWith('.u'))!;
    t.equal(u.dtype, 'i8');
    t.equal(u.quant!.scale.length, q === 'int8-tensor' ? 1 : u.shape[0]);
    t.equal(m.metadata['convert.quant'], q);
  }
});
