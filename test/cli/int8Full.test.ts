// The command line of the int8-full path: refused without --calib (one line, nothing written);
// FC-2 converted, inspected (an mcu plan: the firmware runs the int8-full kinds) and
// evaluated on the integer kernels next to its f32 twin; unsupported kinds refused by name.
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { CompressError } from '../../converter/compressError.js';
import { quantizeInt8Full } from '../../converter/int8Full.js';
import { FlmError } from '../../runtime/format/errors.js';
import { INT8_FULL_KEY, INT8_STAGES, readInt8Full, type Int8Full } from '../../runtime/int8full/params.js';
import type { Model } from '../../runtime/ir.js';
import { cli, cliJson } from '../support/cli.js';
import { needFashion, needFixture } from '../support/require.js';
import { readFlm } from '../../runtime/format/reader.js';
import { readFileSync } from 'node:fs';

const dir = mkdtempSync(join(tmpdir(), 'fl-int8full-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

t.test('--quant int8-full without --calib: one-line error, nothing written', async (t) => {
  const onnx = needFixture(t, 'mlp_fashion.onnx');
  if (!onnx) return;
  const out = join(dir, 'nocalib.flm');
  const r = cli(['convert', onnx, '--method', 'none', '--quant', 'int8-full', '-o', out]);
  t.not(r.status, 0);
  t.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  t.match(r.stderr, /--calib/);
  t.notOk(existsSync(out));
});

t.test('FC-2 svd x20 int8-full: convert, inspect, eval against the f32 model', async (t) => {
  const onnx = needFixture(t, 'mlp_fashion.onnx');
  if (!onnx || !needFashion(t)) return;
  const full = join(dir, 'fc2_full.flm');
  const f32 = join(dir, 'fc2_f32.flm');
  const c = cliJson(['convert', onnx, '--method', 'svd', '--ratio', '20', '--quant', 'int8-full', '--calib', 'fashion-mnist', '-o', full, '--json']);
  t.equal(c.quant, 'int8-full');
  const cf = cliJson(['convert', onnx, '--method', 'svd', '--ratio', '20', '--quant', 'f32', '--calib', 'fashion-mnist', '-o', f32, '--json']);
  // convert's check runs the integer path: its agreement with the dense source is near the f32 file's.
  t.ok(c.check && cf.check && c.check.agreement >= cf.check.agreement - 0.03, `held-out agreement with the dense source: int8-full ${c.check?.agreement}, f32 ${cf.check?.agreement}`);
  const model = readFlm(readFileSync(full));
  const q = readInt8Full(model);
  t.same(Object.keys(q.nodes).sort(), model.graph.nodes.filter((n) => INT8_STAGES[n.op]).map((n) => n.name).sort());
  t.ok(model.graph.nodes.some((n) => n.op === 'svd_dense'));
  const ins = cliJson(['inspect', full, '--json']);
  t.equal(ins.firmware.mcuPlan, true, 'an mcu plan: the firmware runs svd_dense and dense on the int8-full path');
  t.equal(ins.firmware.int8Full, true);
  t.same(ins.firmware.missingOps, []);
  const text = cli(['inspect', full]);
  t.notMatch(text.stdout, /firmware: no mcu plan/);
  const eq = cliJson(['eval', full, '--data', 'fashion-mnist', '--limit', '1000', '--json']);
  const ef = cliJson(['eval', f32, '--data', 'fashion-mnist', '--limit', '1000', '--json']);
  t.ok(Math.abs(eq.accuracy - ef.accuracy) <= 0.02, `int8-full ${eq.accuracy} vs f32 ${ef.accuracy} on 1000 test images`);
});

function thrown(f: () => unknown): unknown {
  try {
    f();
  } catch (e) {
    return e;
  }
  return undefined;
}

const tiny = (op: 'log_softmax' | 'gelu'): Model => ({
  graph: {
    inputs: [{ name: 'x', shape: [-1, 4] }],
    outputs: ['z'],
    nodes: [
      { name: 'fc', op: 'dense', inputs: ['x'], outputs: ['y'], attrs: {}, weights: { weight: 'w' } },
      { name: 'act', op, inputs: ['y'], outputs: ['z'], attrs: op === 'log_softmax' ? { axis: -1 } : {}, weights: {} },
    ],
  },
  tensors: new Map([['w', { name: 'w', dtype: 'f32', shape: [3, 4], data: Float32Array.from({ length: 12 }, (_, i) => (i % 5) - 2) }]]),
  metadata: {},
});

// softmax and sigmoid joined the integer path (test/converter/int8full/ops.test.ts); these two have not.
t.test('kinds the integer path lacks are refused by name', async (t) => {
  for (const op of ['log_softmax', 'gelu'] as const) {
    const calib = { shape: [2, 4], data: Float32Array.from({ length: 8 }, (_, i) => i / 8) };
    const e = thrown(() => quantizeInt8Full(tiny(op), calib));
    t.ok(e instanceof CompressError && e.code === 'INT8_UNSUPPORTED' && e.message.includes(`kind ${op}`), `${op}: ${String(e)}`);
  }
});

t.test('a hostile quant.int8_full is refused with FLM_BAD_METADATA', async (t) => {
  const m = tiny('gelu');
  m.graph.nodes.pop();
  m.graph.outputs = ['y'];
  const calib = { shape: [3, 4], data: Float32Array.from({ length: 12 }, (_, i) => Math.sin(i)) };
  const good = quantizeInt8Full(m, calib);
  t.ok(readInt8Full(good));
  const mutate = (f: (q: Int8Full) => void): Model => {
    const q = JSON.parse(JSON.stringify(good.metadata[INT8_FULL_KEY])) as Int8Full;
    f(q);
    return { ...good, metadata: { ...good.metadata, [INT8_FULL_KEY]: q } };
  };
  const cases: Array<[string, (q: Int8Full) => void]> = [
    ['short multiplier list', (q) => q.nodes['fc']![0]!.mult.pop()],
    ['shift out of range', (q) => { q.nodes['fc']![0]!.shift[0] = 40; }],
    ['zero point out of int8', (q) => { q.values['y']![1] = 300; }],
    ['negative scale', (q) => { q.values['x']![0] = -1; }],
    ['missing value', (q) => { delete q.values['y']; }],
    ['stage input differs from the value', (q) => { q.nodes['fc']![0]!.in = [0.5, 3]; }],
    ['wrong weight role', (q) => { q.nodes['fc']![0]!.w = 'u'; }],
    ['future version', (q) => { q.version = 2; }],
    ['bias of the wrong length', (q) => { q.nodes['fc']![0]!.bias = [1]; }],
  ];
  for (const [what, f] of cases) {
    const e = thrown(() => readInt8Full(mutate(f)));
    t.ok(e instanceof FlmError && e.code === 'FLM_BAD_METADATA', `${what}: ${String(e)}`);
  }
});
