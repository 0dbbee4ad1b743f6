// The users' models (test/support/userModels.ts) on the firmware's kernels against the Node
// runtime, through the host port's direct mode: those whose new import paths the firmware runs
// (ELU and Mish as chains of element-wise ops, GroupNorm and InstanceNorm2d as layer_norm + mul +
// add, ConvTranspose1d over the [N, C, 1, L] lift, a fixed-batch export with a free batch), and a
// few of the common shapes (inverted residuals, squeeze-excite, Conv1d sensor net), and those
// with a transpose (x.permute before Conv1d, PixelShuffle). Tolerance as in conformance.test.ts.
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import t from 'tap';
import { importOnnx } from '../../../converter/onnx/import.js';
import { writeFlm } from '../../../converter/writer.js';
import { readFlm } from '../../../runtime/format/reader.js';
import { mcuProfile } from '../../../runtime/plan/mcu.js';
import { getProfile, registerProfile } from '../../../runtime/plan/profiles.js';
import { Session } from '../../../runtime/session.js';
import { userModel, type UserModel } from '../../support/userModels.js';
import { TMP, buildPort } from './support.js';

const TOL = 1e-3;

t.test("users' models on the firmware agree with the Node runtime", async (t) => {
  const bin = buildPort(t, 'host');
  if (!bin) return;
  if (!getProfile('mcu')) registerProfile(mcuProfile);
  mkdirSync(TMP, { recursive: true });
  const names: UserModel[] = ['acts', 'regress', 'groupnorm', 'chunkgate', 'viewnet', 'mbv2', 'se', 'sensor1d', 'tokenmix', 'permute1d', 'superres'];
  for (const name of names) {
    const ex = userModel(t, name);
    if (!ex) return;
    const stored = readFlm(writeFlm(importOnnx(ex.bytes('opsetD'))));
    t.ok(stored.memoryPlan?.plans.some((p) => p.profile === 'mcu'), `${name}: the file has an mcu plan`);
    const file = resolve(TMP, `user-${name}.flm`);
    writeFileSync(file, writeFlm(stored));
    const per = ex.x.data.length / ex.x.shape[0]!;
    const n = 3;
    const shape = [n, ...ex.x.shape.slice(1)];
    const x = ex.x.data.slice(0, n * per);
    const ref = Session.create(stored).runBatch({ shape, data: x }).data;
    const inp = resolve(TMP, `user-in-${process.pid}.bin`);
    const out = resolve(TMP, `user-out-${process.pid}.bin`);
    writeFileSync(inp, Buffer.from(x.buffer, x.byteOffset, x.byteLength));
    const r = spawnSync(bin, ['--run', file, inp, out], { encoding: 'utf8' });
    t.equal(r.status, 0, `${name}: fl-host --run ${r.stderr.trim()}`);
    if (r.status !== 0) continue;
    const b = readFileSync(out);
    const dev = new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
    t.equal(dev.length, ref.length, `${name}: ${ref.length} outputs`);
    let worst = 0;
    for (let i = 0; i < ref.length; i++) worst = Math.max(worst, Math.abs(dev[i]! - ref[i]!) / Math.max(1, Math.abs(ref[i]!)));
    t.ok(worst <= TOL, `${name}: max scaled error ${worst.toExponential(2)} <= ${TOL}`);
  }
});
