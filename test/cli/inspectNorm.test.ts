// convert and inspect on PyTorch models with GELU / LayerNorm / the element-wise ops: the firmware
// runs these kinds (the MLP-mixer's Transpose too, and a MatMul of two activations: core/ops/matmul.c),
// so the file carries an mcu plan; an ADTN layer (adtn_dense) it does not run, so a file with one
// carries none and inspect names it.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { cli, cliJson } from '../support/cli.js';
import { normModel } from '../support/torchNormModels.js';

const dir = mkdtempSync(join(tmpdir(), 'factorlite-inspect-norm-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

t.test('gelu, layer_norm and the element-wise kinds get an mcu plan; inspect names what the firmware lacks', async (t) => {
  const cases = [
    ['layernorm', [], undefined, []],
    ['elementwise', [], undefined, []],
    ['mixer', [], undefined, []],
    ['gram', [], undefined, []],
    ['gram', ['adtn_dense'], /adtn_dense \(/, ['--method', 'adtn', '--ranks', 'R']],
  ] as const;
  for (const [name, lacks, named, method] of cases) {
    const ex = normModel(t, name, 13);
    if (!ex) return;
    const onnx = join(dir, `${name}.onnx`);
    const flm = join(dir, `${name}${method.length ? '-adtn' : ''}.flm`);
    writeFileSync(onnx, ex.dynamic);
    // The ADTN file: the head (/head/Gemm) as an ADTN of depth 1 (--ranks), the rest dense.
    const ranks = join(dir, 'ranks.json');
    writeFileSync(ranks, JSON.stringify({ '/head/Gemm': [1] }));
    const c = cli(['convert', onnx, '-o', flm, ...(method.length ? method.map((a) => (a === 'R' ? ranks : a)) : ['--method', 'none'])]);
    t.equal(c.status, 0, `convert ${name}: ${c.stderr.trim().split('\n').pop()}`);
    const j = cliJson(['inspect', flm, '--json']);
    t.equal(j.firmware.mcuPlan, lacks.length === 0, `${name}: mcu plan ${lacks.length === 0 ? 'present' : 'absent'}`);
    t.same([...j.firmware.missingOps].sort(), [...lacks].sort(), `${name}: missing ops`);
    if (named) {
      t.match(cli(['inspect', flm]).stdout, /firmware: no mcu plan; the firmware lacks ops? /);
      t.match(cli(['inspect', flm]).stdout, named);
    } else t.notMatch(cli(['inspect', flm]).stdout, /firmware: no mcu plan/);
  }
});
