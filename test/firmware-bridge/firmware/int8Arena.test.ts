// The int8-full path's memory on the device (fl-host --check) against the planner: the arena the
// device uses is the mcu plan's, every node's scratch is exactly what the device needs (one byte
// less and it refuses the plan, naming the need), and the stage lists (multipliers, shifts,
// biases) and the weights' f32 scales stay out of the tables: the int8-full tables are smaller
// than the f32 path's for the very same graph and tensors. And the fused conv kind -> [relu] ->
// pool chains of the int8-full path (fl_q_chain), every producer kind, bit for bit with the Node
// reference (Int8Session), on the portable and the fast loops.
import t, { type Test } from 'tap';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { planModel, writeFlm } from '../../../converter/writer.js';
import { readFlm } from '../../../runtime/format/reader.js';
import type { GraphNode, Model } from '../../../runtime/ir.js';
import { quantizeInt8Full } from '../../../converter/int8Full.js';
import { Int8Session } from '../../../runtime/int8full/session.js';
import { inferShapes } from '../../../runtime/plan/shapes.js';
import { getProfile, registerProfile } from '../../../runtime/plan/profiles.js';
import { mcuProfile } from '../../../runtime/plan/mcu.js';
import { INT8_FULL_KEY } from '../../../runtime/int8full/params.js';
import { REPO_ROOT, needFashion, needFixture } from '../../support/require.js';
import { edit } from '../../runtime/format/fixtures/flm.js';
import { TMP, buildPort, randomTensor, runBitExact, seededRandom } from './support.js';
import { CORTEX_M4, CORTEX_M4_L4R5, mcuTableBytes, type RecordSizes } from '../../../runtime/plan/mcuTables.js';

if (!getProfile('mcu')) registerProfile(mcuProfile);

/** The same cached conversions as int8full.test.ts (tmp/test-firmware), planned by this planner. */
function convertFull(t: Test, fixture: string, args: string[]): string | undefined {
  const src = needFixture(t, fixture);
  if (!src || !needFashion(t)) return undefined;
  mkdirSync(TMP, { recursive: true });
  const out = resolve(TMP, `${fixture.replace('.onnx', '')}_${args.join('_')}_int8full.flm`);
  if (!existsSync(out)) {
    const r = spawnSync(process.execPath, [resolve(REPO_ROOT, 'bin/factorlite.js'), 'convert', src, '-o', out, ...args, '--quant', 'int8-full', '--calib', 'fashion-mnist'], { encoding: 'utf8' });
    if (r.status !== 0) return void t.fail(`convert ${fixture} ${args.join(' ')} int8-full: ${r.stderr}`);
  }
  const model = readFlm(new Uint8Array(readFileSync(out)));
  const mcu = (m: Model['memoryPlan']) => JSON.stringify(m?.plans.find((p) => p.profile === 'mcu') ?? null);
  if (mcu(model.memoryPlan) !== mcu(planModel(model))) writeFileSync(out, writeFlm(model));
  return out;
}

interface Check { ok: boolean; arena: number; tables: number; prepare: number; err: string }
function check(host: string, file: string): Check {
  const r = spawnSync(host, ['--check', file], { encoding: 'utf8' });
  const m = /ok arena=(\d+) tables=(\d+).* prepare=(\d+)/.exec(r.stdout);
  return { ok: r.status === 0 && !!m, arena: m ? Number(m[1]) : -1, tables: m ? Number(m[2]) : -1, prepare: m ? Number(m[3]) : -1, err: (r.stderr || r.stdout).trim() };
}

// The record sizes of a build, from its compiler: `cc` for the host, arm-none-eabi-gcc for the
// Cortex-M4 (whose sizes runtime/plan/mcuTables.ts keeps as CORTEX_M4).
const FW = resolve(REPO_ROOT, 'firmware-bridge/firmware');
const PROBE = '#include "core/ops/op.h"\n#include "core/model/model.h"\nconst unsigned fl_sizes[] = { sizeof(fl_tensor), sizeof(fl_value), sizeof(fl_node), sizeof(fl_qnode), sizeof(fl_qst), sizeof(fl_qmisc), '
  + 'sizeof(fl_attrs), sizeof(fl_nm), sizeof(fl_node_rd), sizeof(fl_value_rd), FL_FRAME_BUF };\n';
const NSIZES = 11;
function probeSizes(t: Test, cc: string, port: string, extra: string[]): RecordSizes | undefined {
  mkdirSync(TMP, { recursive: true });
  const src = resolve(TMP, 'sizes-probe.c');
  writeFileSync(src, `${PROBE}int main(void) { return 0; }\n`);
  const r = spawnSync(cc, [...extra, `-I${FW}/ports/${port}`, `-I${FW}`, '-S', '-o', '-', src], { encoding: 'utf8' });
  if (r.status !== 0) return void t.fail(`${cc}: ${r.stderr || r.error}`);
  const words = [...r.stdout.slice(r.stdout.indexOf('fl_sizes:')).matchAll(/\.(?:word|long)\s+(\d+)/g)].slice(0, NSIZES).map((m) => Number(m[1]));
  if (words.length !== NSIZES) return void t.fail(`${cc}: no sizes in its assembly`);
  const [tensor, value, node, qnode, qstage, qmisc, attrs, nameRec, nodePrep, valuePrep, frameBuf] = words as number[] as [number, number, number, number, number, number, number, number, number, number, number];
  // fl_modes and the reshaped kinds' fl_rtn (static in ops/factor.c, ops/reshaped.c) are counted from
  // their fields: FL_MAX_MODES 8 on both builds; fl_rtn is 3 bytes (+1), 3 x 8 + 1 words, 11 words
  return { tensor, value, node, qnode, qstage, qmisc, modes: 4 + 8 * 8, attrs, rtn: 4 + 4 * (3 * 8 + 1) + 44, nameRec, nodePrep, valuePrep, frameBuf };
}
let hostRecords: RecordSizes | undefined | null = null;
function hostSizes(t: Test): RecordSizes | undefined {
  if (hostRecords === null) hostRecords = probeSizes(t, 'cc', 'host', ['-O2']);
  return hostRecords;
}

const MODELS: Array<[string, string, string[]]> = [
  ['FC-2 svd x20', 'mlp_fashion.onnx', ['--method', 'svd', '--ratio', '20']],
  ['LeNet-5 x10', 'lenet5_fashion.onnx', ['--ratio', '10']],
];

t.test('fl-host: the int8-full arena is the planner\'s, scratch exact, stage lists and f32 scales out of the tables', async (t) => {
  const host = buildPort(t, 'host');
  if (!host) return;
  for (const [what, fixture, args] of MODELS) {
    const file = convertFull(t, fixture, args);
    if (!file) continue;
    const bytes = new Uint8Array(readFileSync(file));
    const model = readFlm(bytes);
    const plan = model.memoryPlan?.plans.find((p) => p.profile === 'mcu');
    if (!plan) { t.fail(`${what}: no mcu plan`); continue; }
    const dev = check(host, file);
    t.ok(dev.ok, `${what}: the device prepares it (${dev.err})`);
    t.equal(dev.arena, plan.arena, `${what}: the device's plan arena ${dev.arena} B is the planner's ${plan.arena} B`);

    // Every node's scratch is the device's need to the byte: one byte less is refused, naming it.
    const staged = new Set(Object.keys((model.metadata[INT8_FULL_KEY] as { nodes: Record<string, unknown> }).nodes));
    const withScratch = plan.scratch.filter((s) => s.bytes > 0 && staged.has(model.graph.nodes[s.node]!.name));
    // (a dense kind over one row reads its lists in order as it runs: only svd_dense's intermediate)
    t.ok(withScratch.length >= 1, `${what}: ${withScratch.length} parametric nodes with scratch`);
    for (const s of withScratch) {
      const name = model.graph.nodes[s.node]!.name;
      const short = edit(bytes, (p) => {
        const mp = (p.header['memory_plan'] as { plans: Array<{ profile: string; scratch: Array<{ node: number; bytes: number }> }> }).plans.find((q) => q.profile === 'mcu')!;
        mp.scratch.find((q) => q.node === s.node)!.bytes = s.bytes - 1;
      });
      const f = resolve(TMP, `int8arena-short.flm`);
      writeFileSync(f, short);
      const r = check(host, f);
      t.notOk(r.ok, `${what} ${name}: scratch ${s.bytes - 1} B refused`);
      t.match(r.err, new RegExp(`FLM_MEMORY_PLAN.*${name.replace(/[/\\^$*+?.()|[\]{}]/g, '\\$&')} need ${s.bytes}\\b`), `${what} ${name}: the device needs exactly the planner's ${s.bytes} B`);
    }

    // The same graph and tensors on the f32 path (metadata removed, planned again): its tables keep
    // the per-channel f32 scales; the int8-full path's keep neither them nor the stage lists.
    const f32 = readFlm(bytes);
    delete (f32.metadata as Record<string, unknown>)[INT8_FULL_KEY];
    const f32File = resolve(TMP, 'int8arena-f32.flm');
    writeFileSync(f32File, writeFlm(f32));
    const ref = check(host, f32File);
    t.ok(ref.ok, `${what} on the f32 path: prepared (${ref.err})`);
    const channels = Object.values((model.metadata[INT8_FULL_KEY] as { nodes: Record<string, Array<{ mult: number[] }>> }).nodes)
      .flat().reduce((a, st) => a + st.mult.length, 0);
    t.ok(dev.tables < ref.tables, `${what}: int8-full tables ${dev.tables} B < the f32 path's ${ref.tables} B (${channels} output channels of stages, ${9 * channels} B of lists left in the store)`);

    // The planner counts the tables as the device allocates them (convert --arena adds them to the
    // plan's arena), with the host build's record sizes as its compiler lays them out.
    const sizes = hostSizes(t);
    if (sizes) {
      const q = mcuTableBytes(model, sizes), f = mcuTableBytes(readFlm(new Uint8Array(readFileSync(f32File))), sizes);
      t.equal(q.bytes, dev.tables, `${what} int8-full: the planner's tables are the device's ${dev.tables} B`);
      t.equal(f.bytes, ref.tables, `${what} f32: the planner's tables are the device's ${ref.tables} B`);
      t.same([q.prepare, f.prepare], [dev.prepare, ref.prepare], `${what}: the planner's prepare area is the device's (${dev.prepare} B, under the plan arena ${plan.arena} B)`);
      t.ok(dev.prepare <= plan.arena, `${what}: the prepare area fits where the plan's activations go later`);
    }
  }
});

t.test('the Cortex-M4 record sizes the planner counts are the firmware\'s', (t) => {
  const m4 = probeSizes(t, 'arm-none-eabi-gcc', 'cortex-m4', ['-mcpu=cortex-m4', '-mthumb', '-O2']);
  if (!m4) return t.end();
  t.same({ ...m4, frameBuf: CORTEX_M4.frameBuf }, CORTEX_M4, 'cortex-m4: fl_tensor, fl_value, fl_node, fl_qnode, fl_qst, fl_qmisc, fl_attrs and the prepare records');
  t.equal(m4.frameBuf, CORTEX_M4.frameBuf, 'cortex-m4: FL_FRAME_BUF');
  const l4 = probeSizes(t, 'arm-none-eabi-gcc', 'cortex-m4', ['-mcpu=cortex-m4', '-mthumb', '-O2', '-DFL_M4_L4R5=1']);
  if (l4) t.same(l4, CORTEX_M4_L4R5, 'cortex-m4-l4r5: the same records, its frame buffer');
  t.end();
});

// Every conv kind streamed into a pool: conv2d with groups -> relu -> max_pool (pads, ceil mode),
// svd_conv2d -> relu -> avg_pool (pads out of the count), tucker2_conv2d -> max_pool (dilated),
// cp_conv2d -> relu -> avg_pool (pads in the count), then flatten and dense.
function chainModel(): Model {
  const tensor = randomTensor(seededRandom(4242));
  const node = (name: string, op: GraphNode['op'], input: string, attrs: GraphNode['attrs'] = {}, weights: Record<string, string> = {}): GraphNode =>
    ({ name, op, inputs: [input], outputs: [`${name}.out`], attrs, weights });
  const conv = (s: number[], p: number[], group = 1) => ({ strides: s, pads: p, dilations: [1, 1], group });
  const nodes: GraphNode[] = [
    node('c1', 'conv2d', 'x', conv([1, 1], [1, 1, 1, 1], 2), { weight: 'c1.w', bias: 'c1.b' }),
    node('r1', 'relu', 'c1.out'),
    node('p1', 'max_pool', 'r1.out', { kernel: [2, 2], strides: [2, 2], pads: [0, 0, 1, 1], ceil_mode: 1 }),
    node('s2', 'svd_conv2d', 'p1.out', conv([1, 1], [1, 1, 1, 1]), { v: 's2.v', u: 's2.u', bias: 's2.b' }),
    node('r2', 'relu', 's2.out'),
    node('p2', 'avg_pool', 'r2.out', { kernel: [3, 3], strides: [1, 1], pads: [1, 1, 1, 1], count_include_pad: 0 }),
    node('t3', 'tucker2_conv2d', 'p2.out', conv([1, 1], [1, 1, 1, 1]), { u_in: 't3.ui', core: 't3.c', u_out: 't3.uo', bias: 't3.b' }),
    node('p3', 'max_pool', 't3.out', { kernel: [2, 2], strides: [1, 1], dilations: [2, 2] }),
    node('k4', 'cp_conv2d', 'p3.out', conv([1, 1], [1, 1, 1, 1]), { a_in: 'k4.ai', k_h: 'k4.kh', k_w: 'k4.kw', a_out: 'k4.ao', bias: 'k4.b' }),
    node('r4', 'relu', 'k4.out'),
    node('p4', 'avg_pool', 'r4.out', { kernel: [2, 2], strides: [2, 2], pads: [1, 1, 0, 0], count_include_pad: 1 }),
    node('f', 'flatten', 'p4.out', { axis: 1 }),
  ];
  const tensors = [
    tensor('c1.w', [8, 2, 3, 3]), tensor('c1.b', [8], 0.2),
    tensor('s2.v', [3, 8, 3, 3]), tensor('s2.u', [6, 3]), tensor('s2.b', [6], 0.2),
    tensor('t3.ui', [4, 6]), tensor('t3.c', [5, 4, 3, 3]), tensor('t3.uo', [7, 5]), tensor('t3.b', [7], 0.2),
    tensor('k4.ai', [5, 7]), tensor('k4.kh', [5, 3]), tensor('k4.kw', [5, 3]), tensor('k4.ao', [6, 5]), tensor('k4.b', [6], 0.2),
  ];
  const m: Model = { graph: { inputs: [{ name: 'x', shape: [-1, 4, 12, 11] }], outputs: ['f.out'], nodes }, tensors: new Map(tensors.map((x) => [x.name, x])), metadata: {} };
  const F = inferShapes(m, 1).values.get('f.out')![1]!;
  const d = tensor('d.w', [5, F]);
  m.graph.nodes.push(node('d', 'dense', 'f.out', {}, { weight: 'd.w' }));
  m.graph.outputs = ['d.out'];
  m.tensors.set('d.w', d);
  return m;
}

t.test('fl-host: fused conv kind -> [relu] -> pool chains on int8 activations, bit for bit', async (t) => {
  const bins = { host: buildPort(t, 'host'), 'host-ref': buildPort(t, 'host-ref') };
  if (!bins.host || !bins['host-ref']) return;
  mkdirSync(TMP, { recursive: true });
  const rnd = seededRandom(77);
  const per = 4 * 12 * 11;
  const calib = Float32Array.from({ length: 64 * per }, () => rnd());
  const bytes = writeFlm(quantizeInt8Full(chainModel(), { shape: [64, 4, 12, 11], data: calib }));
  const model = readFlm(bytes);
  const plan = model.memoryPlan?.plans.find((p) => p.profile === 'mcu');
  const fused = plan?.values.filter((v) => v.fused).map((v) => v.name) ?? [];
  t.same(fused.sort(), ['c1.out', 'k4.out', 'r1.out', 'r2.out', 'r4.out', 's2.out', 't3.out'], 'the mcu plan streams all four chains');
  const file = resolve(TMP, 'int8arena-chains.flm');
  writeFileSync(file, bytes);
  const n = 4;
  const x = Float32Array.from({ length: n * per }, (_, i) => (rnd() * 2 - 1) * (i >= (n - 1) * per ? 8 : 1));
  const s = Int8Session.create(model);
  const shape = [n, 4, 12, 11];
  const want = s.runBatch({ shape, data: x }).data;
  runBitExact(t, bins, file, x, want);
  t.ok(check(bins.host, file).arena === plan?.arena, 'the device arena is the plan\'s');
});
