// The second round of models users bring (scripts/user_models2.py): a dilated causal TCN
// (x[:, :, :-pad] and x[:, :, -1], a Gather on an activation), a tiny ViT (class token
// expanded over the free batch: Equal / Where / Expand; MatMul, Softmax, LayerNorm, GELU),
// nn.MultiheadAttention, a U-Net, exports with do_constant_folding=False and with
// keep_initializers_as_inputs=True, a two-input and a two-output model, each at the tutorials'
// export, one rotated variant and a batch-1 trace: imported, run on the reference and
// WebAssembly kernels through a .flm, and exported back to ONNX, every output against
// onnxruntime-node on the original file (1e-4). BatchNorm exported in training mode must be
// refused at every opset, naming the node and why. A model saved with external data (the
// weights in a file beside it) imports from its folder. Built once under tmp/cache/user-models2.
import { readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import onnxProto from 'onnx-proto';
import * as ort from 'onnxruntime-node';
import t from 'tap';
import { importOnnxFile } from '../../converter/onnx/index.js';
import { exportOnnx } from '../../converter/export/index.js';
import { importOnnx } from '../../converter/onnx/import.js';
import { writeFlm } from '../../converter/writer.js';
import { readFlm } from '../../runtime/format/reader.js';
import type { Model, Tensor } from '../../runtime/ir.js';
import { hasWasmSimd, referenceBackend, wasmBackend, type KernelBackend } from '../../runtime/kernels/backend.js';
import { Session } from '../../runtime/session.js';
import { TOL, relDiff, runOrt } from '../converter/onnx/fixtures/build.js';
import { USER_MODELS2, userModel2 } from '../support/userModels2.js';

let kernels: Array<[string, KernelBackend]> | undefined;
async function backends(): Promise<Array<[string, KernelBackend]>> {
  if (!kernels) {
    kernels = [['reference', referenceBackend]];
    if (hasWasmSimd()) kernels.push(['wasm', await wasmBackend()]);
  }
  return kernels;
}

const rows = (x: Tensor, n: number): Tensor => {
  const per = x.data.length / x.shape[0]!;
  return { shape: [n, ...x.shape.slice(1)], data: x.data.slice(0, n * per) };
};

for (const name of USER_MODELS2) {
  t.test(`${name}: the user's export through factorlite agrees with onnxruntime-node`, async (t) => {
    const ex = userModel2(t, name);
    if (!ex) return;
    const { meta } = ex;
    for (const v of meta.variants) {
      const bytes = ex.bytes(v);
      if (meta.expect === 'refused') {
        const opset = v.startsWith('opsetD') ? meta.defaultOpset : Number(v.slice(5, 7));
        t.throws(() => importOnnx(bytes), {
          code: 'ONNX_UNSUPPORTED_ATTR',
          message: new RegExp(`^node "/b1/BatchNormalization" \\(BatchNormalization, opset ${opset}\\): .*BatchNorm exported in training mode`),
        }, `${v}: refused naming the node, the opset and why`);
        continue;
      }
      const model: Model = importOnnx(bytes, { sourceName: `${name}.onnx` });
      t.equal(model.graph.inputs.length, meta.inputs.length, `${v}: ${meta.inputs.length} input(s)`);
      t.equal(model.graph.outputs.length, meta.outputs, `${v}: ${meta.outputs} output(s)`);
      const b = v.endsWith('_dyn') ? 3 : v.endsWith('_b1') ? 1 : 2;
      const feeds: Record<string, Tensor> = {};
      model.graph.inputs.forEach((g, k) => { feeds[g.name] = rows(ex.xs[k]!, b); });
      const theirs = await runOrt(bytes, feeds);
      const stored = readFlm(writeFlm(model));
      for (const [bk, backend] of await backends()) {
        const ours = Session.create(stored, { backend }).run(feeds);
        for (const o of model.graph.outputs) {
          const d = relDiff(ours[o]!, theirs[o]!);
          t.ok(d <= TOL, `${v}, ${bk}, through .flm, output ${o}: rel diff ${d.toExponential(2)} <= ${TOL}`);
        }
      }
      const back = await runOrt(exportOnnx(stored, { opset: 13 }), feeds);
      for (const o of model.graph.outputs) {
        const d = relDiff(back[o]!, theirs[o]!);
        t.ok(d <= TOL, `${v} exported at opset 13, run by onnxruntime, output ${o}: rel diff ${d.toExponential(2)}`);
      }
    }
  });
}

/** What onnx.save_model(m, path, save_as_external_data=True) writes: every initializer's bytes in
 * one file beside the model, each tensor naming its location, offset and length. */
function externalize(bytes: Uint8Array, dir: string, location: string): string {
  const m = onnxProto.onnx.ModelProto.decode(bytes);
  const chunks: Uint8Array[] = [];
  let offset = 0;
  for (const t of m.graph!.initializer ?? []) {
    const raw = t.rawData;
    if (!raw || raw.length === 0) continue;
    chunks.push(raw);
    t.externalData = [{ key: 'location', value: location }, { key: 'offset', value: String(offset) }, { key: 'length', value: String(raw.length) }];
    t.dataLocation = onnxProto.onnx.TensorProto.DataLocation.EXTERNAL;
    t.rawData = new Uint8Array(0);
    offset += raw.length;
  }
  writeFileSync(join(dir, location), Buffer.concat(chunks));
  const path = join(dir, 'model.onnx');
  writeFileSync(path, onnxProto.onnx.ModelProto.encode(m).finish());
  return path;
}

t.test('a model saved with external data imports from its folder, and a bad location is refused', async (t) => {
  const ex = userModel2(t, 'nofold');
  if (!ex) return;
  const dir = t.testdir({});
  const path = externalize(ex.bytes('opsetD'), dir, 'model.onnx.data');
  const split = [statSync(path).size, statSync(join(dir, 'model.onnx.data')).size];
  t.ok(split[0]! < split[1]! / 4, `the weights are in the data file (${split[1]} bytes; the .onnx keeps ${split[0]})`);
  const feeds = { input: rows(ex.xs[0]!, 2) };
  const theirs = await ort.InferenceSession.create(path).then((s) => s.run({ input: new ort.Tensor('float32', feeds.input.data, feeds.input.shape) }));
  const model = importOnnxFile(path);
  const ours = Session.create(model, { backend: referenceBackend }).run(feeds);
  const d = relDiff(ours.output!, { shape: [...theirs.output!.dims], data: theirs.output!.data as Float32Array });
  t.ok(d <= TOL, `through factorlite vs onnxruntime on the same files: rel diff ${d.toExponential(2)}`);
  t.throws(() => importOnnx(readFileSync(path)), { code: 'ONNX_UNSUPPORTED_ATTR', message: /external file "model\.onnx\.data"; import the model from its file/ }, 'bytes alone: says where the data is');
  const m = onnxProto.onnx.ModelProto.decode(readFileSync(path));
  m.graph!.initializer![0]!.externalData![0]!.value = '../elsewhere.data';
  const bad = join(dir, 'bad.onnx');
  writeFileSync(bad, onnxProto.onnx.ModelProto.encode(m).finish());
  t.throws(() => importOnnxFile(bad), { code: 'ONNX_BAD_MODEL', message: /location "\.\.\/elsewhere\.data" is outside the model's folder/ }, 'a location outside the folder is refused');
  rmSync(join(dir, 'model.onnx.data'));
  t.throws(() => importOnnxFile(path), { code: 'ONNX_BAD_MODEL', message: /cannot read its external data file/ }, 'a missing data file is named');
});
