// Acceptance on the real PyTorch exports: the imported model, run by our Session, must classify the
// full Fashion-MNIST test set as onnxruntime does and score the accuracy recorded beside each
// fixture (.acc, measured in PyTorch). The .flm round trip must not change a single logit.
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import * as ort from 'onnxruntime-node';
import t from 'tap';
import { loadDataset } from '../../converter/data/datasets.js';
import { importOnnxFile } from '../../converter/onnx/index.js';
import { writeFlm } from '../../converter/writer.js';
import { readFlm } from '../../runtime/format/reader.js';
import { Session } from '../../runtime/session.js';
import { FIXTURES, needFashion, needPath } from '../support/require.js';

const BATCH = 500;
const CLASSES = 10;

function argmax(row: ArrayLike<number>, from: number): number {
  let best = 0;
  for (let c = 1; c < CLASSES; c++) if (row[from + c]! > row[from + best]!) best = c;
  return best;
}

for (const name of ['lenet5_fashion', 'mlp_fashion']) {
  t.test(`${name}: our runtime vs onnxruntime on the full Fashion-MNIST test set`, async (t) => {
    const onnxPath = resolve(FIXTURES, `${name}.onnx`);
    const accPath = resolve(FIXTURES, `${name}.acc`);
    if (!needPath(t, onnxPath, `fixture ${name}.onnx`) || !needPath(t, accPath, `fixture ${name}.acc`) || !needFashion(t)) return;
    const recorded = Number(readFileSync(accPath, 'utf8').trim());
    t.ok(recorded > 0.5 && recorded < 1, `recorded accuracy ${recorded}`);

    const ds = loadDataset('fashion-mnist', 'test');
    t.equal(ds.count, 10_000);
    const model = importOnnxFile(onnxPath);
    const ours = Session.create(model);
    const ref = await ort.InferenceSession.create(onnxPath);
    const per = 784;
    let agree = 0;
    let oursCorrect = 0;
    let refCorrect = 0;
    let maxDiff = 0;
    let maxLogit = 0;
    for (let start = 0; start < ds.count; start += BATCH) {
      const n = Math.min(BATCH, ds.count - start);
      const x = ds.images.slice(start * per, (start + n) * per);
      const a = ours.runBatch({ shape: [n, 1, 28, 28], data: x });
      t.same(a.shape, [n, CLASSES]);
      const out = await ref.run({ [ref.inputNames[0]!]: new ort.Tensor('float32', x, [n, 1, 28, 28]) });
      const b = out[ref.outputNames[0]!]!.data as Float32Array;
      for (let i = 0; i < n; i++) {
        const pa = argmax(a.data, i * CLASSES);
        const pb = argmax(b, i * CLASSES);
        const label = ds.labels[start + i];
        if (pa === pb) agree++;
        if (pa === label) oursCorrect++;
        if (pb === label) refCorrect++;
      }
      for (let i = 0; i < b.length; i++) {
        maxDiff = Math.max(maxDiff, Math.abs(a.data[i]! - b[i]!));
        maxLogit = Math.max(maxLogit, Math.abs(b[i]!));
      }
    }
    await ref.release();
    const agreement = agree / ds.count;
    const accuracy = oursCorrect / ds.count;
    t.comment(`${name}: agreement ${agreement}, accuracy ours ${accuracy} onnxruntime ${refCorrect / ds.count} recorded ${recorded}, max |logit diff| ${maxDiff.toExponential(2)} (max |logit| ${maxLogit.toFixed(1)})`);
    t.ok(agreement >= 0.999, `top-1 agreement ${agreement} >= 99.9%`);
    t.ok(Math.abs(accuracy - recorded) <= 0.001 + 1e-12, `our accuracy ${accuracy} within 0.001 of ${recorded}`);
    t.ok(Math.abs(refCorrect / ds.count - recorded) <= 0.001 + 1e-12, `onnxruntime accuracy ${refCorrect / ds.count} matches the record (the reference itself is sound)`);
    t.ok(maxDiff <= 1e-3 * Math.max(1, maxLogit), `logits agree: max diff ${maxDiff} vs scale ${maxLogit}`);

    // .flm round trip: write, read back, identical logits on one batch.
    const bytes = writeFlm(model);
    const back = readFlm(bytes);
    t.same([...back.tensors.keys()].sort(), [...model.tensors.keys()].sort(), 'same tensors');
    t.same(back.graph, model.graph, 'same graph');
    const x = { shape: [BATCH, 1, 28, 28], data: ds.images.subarray(0, BATCH * per) };
    const y0 = ours.runBatch(x).data;
    const y1 = Session.create(back).runBatch(x).data;
    t.equal(y1.length, y0.length);
    t.ok(y0.every((v, i) => Object.is(v, y1[i])), 'bit-identical logits after writeFlm -> readFlm');
    t.same(readFlm(writeFlm(back)).graph, back.graph, 'writing the read-back model again is stable');
  });
}
