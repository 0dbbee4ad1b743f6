// The firmware's transpose (core/ops/transpose.c, op 20) against the Node runtime
// (runtime/layers/shapeOps.ts): every permutation of a rank-3 and a rank-4 activation, a 6-D
// PixelShuffle (reshape, transpose [0, 1, 4, 2, 5, 3], reshape), axes of size 1,
// the identity perm, and a transpose between convolutions ([N, T, C] sensor windows permuted to
// [N, C, T] for a conv over time and back), on the host port (fl-host --run, the store memory-mapped
// and read through the port) and on the Cortex-M4 port under QEMU (upload and infer frames). A
// transpose only moves data, so the answers must be equal bit for bit; the convs around it keep the
// tolerance of conformance.test.ts.
import t, { type Test } from 'tap';
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { AttrValue, GraphNode, Model, OpName, StoredTensor } from '../../../runtime/ir.js';
import { writeFlm } from '../../../converter/writer.js';
import { readFlm } from '../../../runtime/format/reader.js';
import { getProfile, registerProfile } from '../../../runtime/plan/profiles.js';
import { MCU_OPS, mcuProfile } from '../../../runtime/plan/mcu.js';
import { TMP, buildPort, openDevice, referenceOf, seededRandom, worst } from './support.js';

const TOL = 1e-3;
const rnd = seededRandom(2020);

function node(name: string, op: OpName, inputs: string[], attrs: Record<string, AttrValue> = {}, weights: Record<string, string> = {}): GraphNode {
  return { name, op, inputs, outputs: [`${name}.out`], attrs, weights };
}
function tensor(name: string, shape: number[]): StoredTensor {
  const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
  for (let i = 0; i < data.length; i++) data[i] = rnd() * 0.5;
  return { name, dtype: 'f32', shape, data };
}
function permutations(r: number): number[][] {
  if (r === 1) return [[0]];
  const out: number[][] = [];
  for (const p of permutations(r - 1)) for (let i = 0; i < r; i++) out.push([...p.slice(0, i), r - 1, ...p.slice(i)]);
  return out;
}
/** A graph of transposes, each read by a concat of flattened copies so that one output holds them all. */
function model(input: number[], nodes: GraphNode[], outs: string[], tensors: StoredTensor[] = []): Model {
  const all = [...nodes];
  const flat = outs.map((o, i) => { const f = node(`f${i}`, 'flatten', [o]); all.push(f); return f.outputs[0]!; });
  if (flat.length > 1) all.push(node('cat', 'concat', flat, { axis: 1 }));
  return {
    graph: { inputs: [{ name: 'x', shape: [-1, ...input.slice(1)] }], outputs: [all[all.length - 1]!.outputs[0]!], nodes: all },
    tensors: new Map(tensors.map((tt) => [tt.name, tt])),
    metadata: {},
  };
}

interface Case { name: string; input: number[]; model: Model; exact: boolean }

function cases(): Case[] {
  const out: Case[] = [];
  // every perm of rank 3 and 4 (concat takes FL_MAX_IN inputs at most: one graph per perm)
  for (const [input, r] of [[[1, 3, 4, 5], 3], [[1, 2, 3, 4, 5], 4]] as const) {
    for (const perm of permutations(r)) {
      const full = [0, ...perm.map((p) => p + 1)];
      out.push({ name: `rank ${r + 1} perm [${full}]`, input: [...input], model: model([...input], [node('t', 'transpose', ['x'], { perm: full })], ['t.out']), exact: true });
    }
  }
  // PixelShuffle(2) as PyTorch exports it before opset 11 (and as DepthToSpace CRD imports)
  out.push({
    name: 'pixel shuffle 6-D',
    input: [1, 8, 3, 5],
    model: model([1, 8, 3, 5], [
      node('r1', 'reshape', ['x'], { shape: [-1, 2, 2, 2, 3, 5] }),
      node('t', 'transpose', ['r1.out'], { perm: [0, 1, 4, 2, 5, 3] }),
      node('r2', 'reshape', ['t.out'], { shape: [-1, 2, 6, 10] }),
    ], ['r2.out']),
    exact: true,
  });
  // axes of size 1, the identity perm, a transpose of a transpose, two readers of one input
  out.push({
    name: 'size-1 axes, identity',
    input: [1, 7, 1, 3],
    model: model([1, 7, 1, 3], [
      node('t2', 'transpose', ['x'], { perm: [0, 3, 2, 1] }),
      node('t1', 'transpose', ['x'], { perm: [0, 2, 3, 1] }),
      node('ti', 'transpose', ['t1.out'], { perm: [0, 1, 2, 3] }),
      node('tt', 'transpose', ['ti.out'], { perm: [0, 3, 1, 2] }),
    ], ['t2.out', 'tt.out']),
    exact: true,
  });
  // sensor windows [N, T, C] permuted to [N, C, 1, T], a conv over time, and back to [N, T', O]
  out.push({
    name: 'permute around a conv',
    input: [1, 20, 6],
    model: model([1, 20, 6], [
      node('p', 'transpose', ['x'], { perm: [0, 2, 1] }),
      node('u', 'reshape', ['p.out'], { shape: [-1, 6, 1, 20] }),
      node('c', 'conv2d', ['u.out'], { strides: [1, 2], pads: [0, 1, 0, 1] }, { weight: 'c.w', bias: 'c.b' }),
      node('a', 'relu', ['c.out']),
      node('s', 'reshape', ['a.out'], { shape: [-1, 8, 10] }),
      node('q', 'transpose', ['s.out'], { perm: [0, 2, 1] }),
      node('d', 'dense', ['q.out'], {}, { weight: 'd.w', bias: 'd.b' }),
    ], ['d.out'], [tensor('c.w', [8, 6, 1, 3]), tensor('c.b', [8]), tensor('d.w', [5, 8]), tensor('d.b', [5])]),
    exact: false,
  });
  return out;
}

function inputs(c: Case, n: number): Float32Array {
  const x = new Float32Array(n * c.input.reduce((a, b) => a * b, 1));
  for (let i = 0; i < x.length; i++) x[i] = rnd() * 2 - 1;
  return x;
}
function check(t: Test, c: Case, dev: Float32Array, ref: Float32Array, where: string): void {
  t.equal(dev.length, ref.length, `${c.name}${where}: ${ref.length} outputs`);
  if (c.exact) t.ok(dev.every((v, i) => Object.is(v, ref[i])), `${c.name}${where}: equal bit for bit`);
  else { const w = worst(dev, ref); t.ok(w <= TOL, `${c.name}${where}: max scaled error ${w.toExponential(2)} <= ${TOL}`); }
}

t.test('transpose is in the mcu plan', async (t) => {
  if (!getProfile('mcu')) registerProfile(mcuProfile);
  t.ok(MCU_OPS.has('transpose'), 'MCU_OPS has transpose');
  for (const c of cases()) {
    const plan = readFlm(writeFlm(c.model)).memoryPlan?.plans.find((p) => p.profile === 'mcu');
    if (!plan) t.fail(`${c.name}: no mcu plan`);
  }
  t.pass(`${cases().length} graphs, each with an mcu plan`);
});

t.test('host port: transpose agrees with the Node runtime', async (t) => {
  const bin = buildPort(t, 'host');
  if (!bin) return;
  if (!getProfile('mcu')) registerProfile(mcuProfile);
  mkdirSync(TMP, { recursive: true });
  const file = resolve(TMP, `transpose-${process.pid}.flm`);
  const inp = resolve(TMP, `transpose-in-${process.pid}.bin`);
  const out = resolve(TMP, `transpose-out-${process.pid}.bin`);
  for (const c of cases()) {
    const bytes = writeFlm(c.model);
    writeFileSync(file, bytes);
    const n = 2;
    const x = inputs(c, n);
    const ref = referenceOf(bytes, x, n, c.input);
    writeFileSync(inp, Buffer.from(x.buffer, x.byteOffset, x.byteLength));
    for (const nomap of [false, true]) {
      const r = spawnSync(bin, ['--run', file, inp, out], { encoding: 'utf8', env: { ...process.env, FL_HOST_NOMAP: nomap ? '1' : '0' } });
      if (r.status !== 0) { t.fail(`${c.name}: fl-host --run: ${r.stderr.trim()}`); continue; }
      const b = readFileSync(out);
      check(t, c, new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength)), ref, nomap ? ' (store read through the port)' : '');
    }
  }
});

t.test('cortex-m4 under QEMU: transpose agrees with the Node runtime', async (t) => {
  const frames = await openDevice(t);
  if (!frames) return;
  const hello = await frames.call(0x01);
  t.ok((hello.body['ops'] as number[]).includes(20), 'hello.ops lists op 20 (transpose)');
  // the rank-4 perms are the same loop as rank 3's: a few of them, to keep the emulator's time short
  const some = cases().filter((c) => !c.name.startsWith('rank 5') || /\[0,4,3,2,1\]|\[0,2,4,1,3\]/.test(c.name));
  for (const c of some) {
    const bytes = writeFlm(c.model);
    const end = await frames.upload(bytes);
    t.equal(end.kind, 0x84, `${c.name}: upload_end accepted ${end.kind === 0x84 ? '' : JSON.stringify(end.body)}`);
    if (end.kind !== 0x84) continue;
    const x = inputs(c, 1);
    const ref = referenceOf(bytes, x, 1, c.input);
    const inf = await frames.call(0x05, { id: 1, x: new Uint8Array(x.buffer, x.byteOffset, x.byteLength), dtype: 'f32' }, 60000);
    t.equal(inf.kind, 0x85, `${c.name}: infer answered ${inf.kind === 0xff ? JSON.stringify(inf.body) : ''}`);
    if (inf.kind !== 0x85) continue;
    const yb = inf.body['y'] as Uint8Array;
    check(t, c, new Float32Array(yb.buffer.slice(yb.byteOffset, yb.byteOffset + yb.byteLength)), ref, ' on the Cortex-M4');
  }
});
