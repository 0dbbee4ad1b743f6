// convert, inspect and eval on PyTorch models with GELU / LayerNorm / the element-wise ops: the
// firmware has none of these kinds, so the file carries no mcu plan and inspect names them.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { cli, cliJson } from '../support/cli.js';
import { normModel } from '../support/torchNormModels.js';

const dir = mkdtempSync(join(tmpdir(), 'factorlite-inspect-norm-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

t.test('inspect names gelu, layer_norm and the element-wise kinds the firmware lacks', async (t) => {
  const cases = [
    ['layernorm', ['gelu', 'layer_norm'], /layer_norm \(\/n1\/.*\)/],
    ['elementwise', ['abs', 'concat', 'exp', 'log', 'pow', 'reciprocal', 'reduce', 'sqrt'], /reduce \(/],
  ] as const;
  for (const [name, lacks, named] of cases) {
    const ex = normModel(t, name, 13);
    if (!ex) return;
    const onnx = join(dir, `${name}.onnx`);
    const flm = join(dir, `${name}.flm`);
    writeFileSync(onnx, ex.dynamic);
    const c = cli(['convert', onnx, '-o', flm, '--method', 'none']);
    t.equal(c.status, 0, `convert ${name}: ${c.stderr.trim().split('\n').pop()}`);
    const j = cliJson(['inspect', flm, '--json']);
    t.equal(j.firmware.mcuPlan, false, `${name}: no mcu plan`);
    t.same([...j.firmware.missingOps].sort(), [...lacks].sort(), `${name}: missing ops`);
    t.match(cli(['inspect', flm]).stdout, /firmware: no mcu plan; the firmware lacks ops/);
    t.match(cli(['inspect', flm]).stdout, named);
  }
});
