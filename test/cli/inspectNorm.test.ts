// convert and inspect on PyTorch models with GELU / LayerNorm / the element-wise ops: the firmware
// runs these kinds (the MLP-mixer's Transpose too, a MatMul of two activations: core/ops/matmul.c,
// and an ADTN head: core/ops/adtn.c), so the file carries an mcu plan. The device refuses an ADTN
// of arity 3 (UNSUPPORTED; the converter writes arity 2, the runtime runs any): the gram model's
// head rebuilt at arity 3 gets no mcu plan, and inspect names the node and why.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { writeFlm } from '../../converter/writer.js';
import { readFlm } from '../../runtime/format/reader.js';
import { adtnLayout, adtnQubits } from '../../runtime/layers/adtnDense.js';
import { mcuProfile } from '../../runtime/plan/mcu.js';
import { getProfile, registerProfile } from '../../runtime/plan/profiles.js';
import { Session } from '../../runtime/session.js';
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
    ['gram', [], undefined, ['--method', 'adtn', '--ranks', 'R']],
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

t.test('the gram model with its ADTN head at arity 3: no mcu plan, inspect names the node', async (t) => {
  const flm = join(dir, 'gram-adtn.flm');
  let bytes: Buffer;
  try {
    bytes = readFileSync(flm);
  } catch {
    t.fail('the ADTN file of the test above is missing');
    return;
  }
  if (!getProfile('mcu')) registerProfile(mcuProfile);
  const m = readFlm(bytes);
  const head = m.graph.nodes.find((n) => n.op === 'adtn_dense');
  if (!head) return void t.fail('no adtn_dense node');
  const [out, inF] = head.attrs['features'] as [number, number];
  const depth = head.attrs['depth'] as number;
  const l = adtnLayout(adtnQubits(out * inF, 3), depth, 3, 'brickwall');
  head.attrs = { ...head.attrs, arity: 3, pairing: 'brickwall' };
  const st = head.weights['start']!;
  const gs = head.weights['gates']!;
  m.tensors.set(st, { name: st, dtype: 'f32', shape: [l.q, 2], data: Float32Array.from({ length: 2 * l.q }, (_, i) => 0.6 + 0.05 * Math.cos(i)) });
  m.tensors.set(gs, { name: gs, dtype: 'f32', shape: [l.gates, 8, 8], data: Float32Array.from({ length: 64 * l.gates }, (_, i) => (i % 9 === 0 ? 1 : 0.1 * Math.sin(i))) });
  const three = join(dir, 'gram-adtn3.flm');
  writeFileSync(three, writeFlm(m));
  // the runtime runs it
  const y = Session.create(readFlm(readFileSync(three))).runBatch({ shape: [1, ...m.graph.inputs[0]!.shape.slice(1)], data: new Float32Array(m.graph.inputs[0]!.shape.slice(1).reduce((a, b) => a * b, 1)).fill(0.5) });
  t.ok(y.data.length > 0 && y.data.every(Number.isFinite), 'the Node runtime runs the arity-3 head');
  const j = cliJson(['inspect', three, '--json']);
  t.equal(j.firmware.mcuPlan, false, 'arity 3: no mcu plan');
  t.same(j.firmware.missingOps, ['adtn_dense'], 'arity 3: adtn_dense named');
  t.same(j.firmware.refusedNodes, [{ node: head.name, op: 'adtn_dense', why: 'arity 3; the device runs arity 1 and 2' }], 'arity 3: the node and why');
  const text = cli(['inspect', three]).stdout;
  t.match(text, new RegExp(`firmware: no mcu plan; the firmware lacks op adtn_dense \\(${head.name.replace(/[/.]/g, '\\$&')}: arity 3; the device runs arity 1 and 2\\)`));
  // the same file at arity 2, written the same way in this process, keeps its mcu plan
  const two = readFlm(writeFlm(readFlm(bytes)));
  t.ok(two.memoryPlan?.plans.some((p) => p.profile === 'mcu'), 'arity 2 (as converted), rewritten: an mcu plan');
});
