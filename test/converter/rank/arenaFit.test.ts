// convert --arena (converter/rank/arenaFit.ts): a model built here whose first conv, factorised
// by CP at a high rank, needs more firmware scratch than the default Cortex-M4 build's 128 KB
// arena (less 8 KB for the firmware's tables: --arena 120K) beside its 100 KB output. With the arena given, the rank search keeps only forms that fit
// and the file runs on the emulated Cortex-M4, equal to the Node runtime; a form that cannot fit
// is refused in one line naming the layer and the bytes, and the device refuses that same file.
import t from 'tap';
import { mkdtempSync, rmSync, existsSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AttrValue, GraphNode, Model, OpName, StoredTensor } from '../../../runtime/ir.js';
import { compressModel, CompressError } from '../../../converter/compress.js';
import { arenaFit, checkArenaFit, liveBytes } from '../../../converter/rank/arenaFit.js';
import { writeFlm } from '../../../converter/writer.js';
import { readFlm } from '../../../runtime/format/reader.js';
import { getProfile, registerProfile } from '../../../runtime/plan/profiles.js';
import { mcuProfile } from '../../../runtime/plan/mcu.js';
import { Session } from '../../../runtime/session.js';
import { cli } from '../../support/cli.js';
import { Frames, Line, buildPort, startDevice } from '../../firmware-bridge/firmware/support.js';

const DEVICE = 128 * 1024; // the default cortex-m4 build's FL_ARENA_BYTES
const ARENA = DEVICE - 8 * 1024; // --arena: the firmware keeps its model tables (a few KB) at the arena's end
const INPUT = [1, 1, 28, 28];
const TOL = 1e-3;

let seed = 77;
function rnd(): number {
  seed = (seed * 1103515245 + 12345) >>> 0;
  return (seed / 2 ** 32) * 2 - 1;
}
function tensor(name: string, shape: number[], scale = 0.4): StoredTensor {
  const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
  for (let i = 0; i < data.length; i++) data[i] = rnd() * scale;
  return { name, dtype: 'f32', shape, data };
}
function node(name: string, op: OpName, inputs: string[], attrs: Record<string, AttrValue> = {}, weights: Record<string, string> = {}): GraphNode {
  return { name, op, inputs, outputs: [`${name}.out`], attrs, weights };
}
const conv = (s: number) => ({ strides: [s, s], pads: [1, 1, 1, 1], dilations: [1, 1], group: 1 });

/** c1 conv 1->32 at 28x28 (100,352 B of f32 output), c2 conv 32->16 stride 2, global pool, dense 16->10. */
function model(): Model {
  seed = 77;
  const m = new Map<string, StoredTensor>();
  for (const w of [tensor('c1.w', [32, 1, 3, 3]), tensor('c1.b', [32]), tensor('c2.w', [16, 32, 3, 3], 0.1), tensor('c2.b', [16]), tensor('d.w', [10, 16]), tensor('d.b', [10])]) m.set(w.name, w);
  return {
    graph: {
      inputs: [{ name: 'x', shape: [-1, 1, 28, 28] }],
      outputs: ['d.out'],
      nodes: [
        node('c1', 'conv2d', ['x'], conv(1), { weight: 'c1.w', bias: 'c1.b' }),
        node('r1', 'relu', ['c1.out']),
        node('c2', 'conv2d', ['r1.out'], conv(2), { weight: 'c2.w', bias: 'c2.b' }),
        node('r2', 'relu', ['c2.out']),
        node('g', 'global_avg_pool', ['r2.out']),
        node('f', 'flatten', ['g.out'], { axis: 1 }),
        node('d', 'dense', ['f.out'], {}, { weight: 'd.w', bias: 'd.b' }),
      ],
    },
    tensors: m,
    metadata: {},
  };
}

const rankOf = (m: Model, name: string) => m.tensors.get(m.graph.nodes.find((n) => n.name === name)!.weights['a_in'] ?? '')?.shape[0];

t.test('the activations live at each layer, as the firmware plans them', async (t) => {
  const live = liveBytes(model());
  t.equal(live[0], 32 * 28 * 28 * 4, 'c1: its output only (the graph input is in the receive buffer)');
  t.equal(live[2], 32 * 28 * 28 * 4 + 16 * 14 * 14 * 4, 'c2: its input and its output');
});

t.test('a CP form of c1 that cannot fit is refused with the layer and the bytes', async (t) => {
  const { model: m } = compressModel(model(), { method: 'cp', ranks: { c1: 8 }, check: false });
  t.equal(rankOf(m, 'c1'), 8);
  const f = arenaFit(m, ARENA);
  t.equal(f.fits, false, `planned ${f.arena} B > ${ARENA} B`);
  t.same(f.peak, { node: 'c1', op: 'cp_conv2d', live: 100352, scratch: 4 * 8 * (784 + 784) }, 'the fullest layer is c1: its CP scratch beside its output');
  let err: unknown;
  try {
    checkArenaFit(m, ARENA);
  } catch (e) {
    err = e;
  }
  t.ok(err instanceof CompressError && err.code === 'ARENA_EXCEEDED', 'ARENA_EXCEEDED');
  t.match((err as Error).message, /the firmware arena needs \d+ B and its tables \d+ B, more than the 122880 B given; the fullest layer is c1 \(cp_conv2d\): 50176 B of scratch beside 100352 B of live activations/);
});

t.test('an arena smaller than the activations alone is refused before the search, naming the layer', async (t) => {
  const live = liveBytes(model());
  const small = Math.max(...live) - 1;
  for (const method of ['cp', 'auto'] as const) {
    let err: unknown;
    try {
      compressModel(model(), { method, ratio: 1.3, arenaBytes: small, check: false });
    } catch (e) {
      err = e;
    }
    t.ok(err instanceof CompressError && err.code === 'ARENA_EXCEEDED', `${method}: ARENA_EXCEEDED, not an internal error`);
    t.match((err as Error).message, new RegExp(`alone take ${Math.max(...live)} B and the device's tables \\d+ B, more than the ${small} B arena`), (err as Error).message);
  }
});

t.test('with the arena given, the rank search keeps forms that fit', async (t) => {
  for (const method of ['cp', 'auto'] as const) {
    const free = { model: compressModel(model(), { method, ratio: 1.3, check: false }).model };
    const { model: m, report } = compressModel(model(), { method, ratio: 1.3, arenaBytes: ARENA, check: false });
    const f = arenaFit(m, ARENA);
    t.ok(f.fits, `${method}: the firmware plan takes ${f.arena} B <= ${ARENA} B (without --arena: ${arenaFit(free.model, ARENA).arena} B)`);
    t.ok(report.ratio >= 1.3 * 0.98, `${method}: ratio ${report.ratio.toFixed(2)} reached`);
    const r = rankOf(m, 'c1');
    if (r !== undefined) t.ok(r <= 3, `${method}: c1 CP rank ${r} <= 3 (3 x 6,272 B + 100,352 B <= 120 KiB)`);
  }
});

t.test('convert --arena on the command line', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'fl-arena-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const src = join(dir, 'm.flm');
  writeFileSync(src, writeFlm(model()));
  writeFileSync(join(dir, 'ranks.json'), JSON.stringify({ c1: { method: 'cp', ranks: [8] } }));
  const out = join(dir, 'out.flm');
  const bad = cli(['convert', src, '-o', out, '--method', 'cp', '--ranks', join(dir, 'ranks.json'), '--arena', '120K']);
  t.not(bad.status, 0, 'non-zero exit');
  const lines = bad.stderr.trim().split('\n').filter((l) => l.startsWith('factorlite:'));
  t.equal(lines.length, 1, 'one error line');
  t.match(lines[0], /c1 \(cp_conv2d\).*50176 B of scratch.*\[ARENA_EXCEEDED\]/, lines[0]);
  t.notOk(existsSync(out), 'nothing written');
  const arg = cli(['convert', src, '-o', out, '--ratio', '2', '--arena', '12x']);
  t.match(arg.stderr, /--arena 12x: expected a byte count/, 'a bad --arena is named');
  const ok = cli(['convert', src, '-o', out, '--method', 'cp', '--ratio', '1.3', '--arena', '120K', '--json']);
  t.equal(ok.status, 0, ok.stderr);
  const j = JSON.parse(ok.stdout);
  t.equal(j.arena.limit, ARENA);
  t.ok(j.arena.planned + j.arena.tables <= ARENA, `planned ${j.arena.planned} B + tables ${j.arena.tables} B`);
  t.ok(j.arena.tables > 0, 'the device\'s tables counted');
});

t.test('on the emulated Cortex-M4 (128 KB arena, --arena 120K): the fitted file runs equal to Node, the unfit one is refused', async (t) => {
  const elf = buildPort(t, 'cortex-m4');
  if (!elf) return;
  if (!getProfile('mcu')) registerProfile(mcuProfile);
  const fitted = writeFlm(compressModel(model(), { method: 'cp', ratio: 1.3, arenaBytes: ARENA, check: false }).model);
  const unfit = writeFlm(compressModel(model(), { method: 'cp', ranks: { c1: 8 }, check: false }).model);
  const dev = await startDevice('cortex-m4', elf);
  t.teardown(() => dev.stop());
  const line = await Line.open(dev.path);
  t.teardown(() => line.close());
  const frames = new Frames(line);
  const refused = await frames.upload(unfit);
  t.equal(refused.kind, 0xff, 'the device refuses the file checkArenaFit refuses');
  t.equal(refused.body['code'], 'TOO_LARGE', `TOO_LARGE: ${refused.body['msg']}`);
  const end = await frames.upload(fitted);
  t.equal(end.kind, 0x84, `the fitted file is accepted ${JSON.stringify(end.body)}`);
  if (end.kind !== 0x84) return;
  const session = Session.create(readFlm(fitted));
  for (let k = 0; k < 2; k++) {
    const x = new Float32Array(784).map(() => rnd());
    const ref = session.runBatch({ shape: INPUT, data: x }).data;
    const inf = await frames.call(0x05, { id: k, x: new Uint8Array(x.buffer), dtype: 'f32' }, 60000);
    t.equal(inf.kind, 0x85, `infer ${k} answered`);
    if (inf.kind !== 0x85) continue;
    const b = inf.body['y'] as Uint8Array;
    const y = new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
    let w = 0;
    for (let i = 0; i < ref.length; i++) w = Math.max(w, Math.abs(y[i]! - ref[i]!) / Math.max(1, Math.abs(ref[i]!)));
    t.ok(w <= TOL, `input ${k}: max scaled error ${w.toExponential(2)} <= ${TOL} (${inf.body['cycles']} instructions)`);
  }
});
