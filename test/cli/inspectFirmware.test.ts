// convert and inspect on PyTorch-exported models: a model the firmware can run carries an mcu
// plan (the encoder-decoder's ConvTranspose, Concat and Resize included, the MLP-mixer's
// Transpose too, and the gram model's MatMul of two activations); one with an op the firmware
// refuses has none, and inspect names the op(s) and nodes (test/cli/inspectNorm.test.ts: an
// adtn_dense of arity 3; the f32 firmware runs every kind, so these four all get their plan).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { cli, cliJson } from '../support/cli.js';
import { torchModel } from '../support/torchModels.js';
import { normModel } from '../support/torchNormModels.js';

const dir = mkdtempSync(join(tmpdir(), 'factorlite-inspect-fw-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

t.test('inspect names the ops the firmware lacks', async (t) => {
  for (const [name, lacks] of [['unet', []], ['resnet', []], ['mixer', []], ['gram', []]] as const) {
    const ex = name === 'mixer' || name === 'gram' ? normModel(t, name, 13) : torchModel(t, name, 13);
    if (!ex) return;
    const onnx = join(dir, `${name}.onnx`);
    const flm = join(dir, `${name}.flm`);
    writeFileSync(onnx, 'bytes' in ex ? ex.bytes : ex.dynamic);
    const c = cli(['convert', onnx, '-o', flm, '--method', 'none']);
    t.equal(c.status, 0, `convert ${name}: ${c.stderr.trim().split('\n').pop()}`);
    const j = cliJson(['inspect', flm, '--json']);
    t.equal(j.firmware.mcuPlan, lacks.length === 0, `${name}: mcu plan ${lacks.length === 0 ? 'present' : 'absent'}`);
    t.same([...j.firmware.missingOps].sort(), [...lacks].sort(), `${name}: missing ops`);
    const text = cli(['inspect', flm]).stdout;
    if (lacks.length > 0) t.match(text, /firmware: no mcu plan; the firmware lacks ops? /);
    else t.notMatch(text, /firmware: no mcu plan/);
  }
});
