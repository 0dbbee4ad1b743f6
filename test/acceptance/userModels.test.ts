// The models users bring (scripts/user_models.py: 26 small PyTorch models written the way users
// write them, and a GRU and an LSTM), exported by torch.onnx.export the tutorials' way (default
// opset, fixed batch) and at one more variant each (opsets 11, 13, 17, with and without a dynamic
// batch axis, rotated over the models), and traced at a fixed batch of 1. Each is imported, run on the reference and WebAssembly
// kernels, written to .flm and read back, and exported to ONNX again; every output is compared
// with onnxruntime-node on the original file to 1e-4 relative error. A fixed-batch export must
// also run at other batch sizes (compared with onnxruntime fed in chunks of the traced batch).
// The recurrent nets must be refused naming the op, the node and the opset. Built once per
// checkout under tmp/cache/user-models; skips with a reason without torch (fails under CI).
import t from 'tap';
import { exportOnnx } from '../../converter/export/index.js';
import { importOnnx } from '../../converter/onnx/import.js';
import { writeFlm } from '../../converter/writer.js';
import { readFlm } from '../../runtime/format/reader.js';
import type { Model, Tensor } from '../../runtime/ir.js';
import { hasWasmSimd, referenceBackend, wasmBackend, type KernelBackend } from '../../runtime/kernels/backend.js';
import { Session } from '../../runtime/session.js';
import { TOL, relDiff, runOrt } from '../converter/onnx/fixtures/build.js';
import { USER_MODELS, userModel } from '../support/userModels.js';

let kernels: Array<[string, KernelBackend]> | undefined;
async function backends(): Promise<Array<[string, KernelBackend]>> {
  if (!kernels) {
    kernels = [['reference', referenceBackend]];
    if (hasWasmSimd()) kernels.push(['wasm', await wasmBackend()]);
  }
  return kernels;
}

const run = (model: Model, x: Tensor, backend: KernelBackend): Tensor =>
  Object.values(Session.create(model, { backend }).run({ [model.graph.inputs[0]!.name]: x }))[0]!;

const rows = (x: Tensor, from: number, n: number): Tensor => {
  const per = x.data.length / x.shape[0]!;
  return { shape: [n, ...x.shape.slice(1)], data: x.data.slice(from * per, (from + n) * per) };
};

/** onnxruntime on a fixed-batch file, fed `batch` samples at a time. */
async function ortChunked(bytes: Uint8Array, x: Tensor, batch: number): Promise<Tensor> {
  const parts: Tensor[] = [];
  for (let i = 0; i < x.shape[0]!; i += batch) parts.push((await runOrt(bytes, { input: rows(x, i, batch) })).output!);
  const data = new Float32Array(parts.reduce((a, p) => a + p.data.length, 0));
  let o = 0;
  for (const p of parts) { data.set(p.data, o); o += p.data.length; }
  return { shape: [x.shape[0]!, ...parts[0]!.shape.slice(1)], data };
}

for (const name of USER_MODELS) {
  t.test(`${name}: the user's export through factorlite agrees with onnxruntime-node`, async (t) => {
    const ex = userModel(t, name);
    if (!ex) return;
    const { meta, x } = ex;
    for (const v of meta.variants) {
      const bytes = ex.bytes(v);
      const opset = v.startsWith('opsetD') ? meta.defaultOpset : Number(v.slice(5, 7));
      if (meta.expect === 'ok' && v.endsWith('_b1')) t.comment(`${v}: traced at batch 1`);
      if (meta.expect === 'refused') {
        const op = name === 'gru' ? 'GRU' : 'LSTM';
        t.throws(() => importOnnx(bytes), { code: 'ONNX_UNSUPPORTED_OP', message: new RegExp(`unsupported ONNX op ${op} \\(node "/rnn/${op}", opset ${opset}\\)`) }, `${v}: refused with type, node and opset`);
        continue;
      }
      const dyn = v.endsWith('_dyn');
      const model = importOnnx(bytes, { sourceName: `${name}.onnx` });
      const traced = v.endsWith('_b1') ? 1 : 2;
      t.equal(model.graph.inputs[0]!.shape[0], -1, `${v}: the batch axis is free${dyn ? '' : ` (the export fixed it at ${traced})`}`);
      const stored = readFlm(writeFlm(model));
      // 6 samples: several times the traced batch of a fixed export.
      const xs = rows(x, 0, 6);
      const theirs = dyn ? (await runOrt(bytes, { input: xs })).output! : await ortChunked(bytes, xs, traced);
      for (const [bk, backend] of await backends()) {
        const d = relDiff(run(stored, xs, backend), theirs);
        t.ok(d <= TOL, `${v}, ${bk}, through .flm, batch 6: rel diff ${d.toExponential(2)} <= ${TOL}`);
      }
      const d1 = relDiff(run(stored, rows(x, 0, 1), referenceBackend), rows(theirs, 0, 1));
      t.ok(d1 <= TOL, `${v}, batch 1: rel diff ${d1.toExponential(2)}`);
      const back = await runOrt(exportOnnx(stored, { opset: 13 }), { input: xs });
      const de = relDiff(back.output ?? Object.values(back)[0]!, theirs);
      t.ok(de <= TOL, `${v} exported at opset 13, run by onnxruntime: rel diff ${de.toExponential(2)}`);
    }
  });
}
