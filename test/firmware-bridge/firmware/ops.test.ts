// The firmware's ONNX-import ops (runtime/ir.ts ids 25-43: pad, concat, slice, resize,
// conv_transpose2d, prelu, hard_sigmoid, hard_swish, log_softmax, gelu, layer_norm, erf, sqrt,
// exp, log, abs, reciprocal, pow, reduce) against the Node runtime (runtime/session.ts): small
// graphs with every mode and attribute of each op, weights f32 / f16 / int8, run on the host port
// (fl-host --run, the store memory-mapped and read through the port) and on the Cortex-M4 port
// under QEMU (upload and infer frames). Tolerance as in conformance.test.ts: |device - node| <=
// 1e-3 * max(1, |node|) per output (the firmware computes in f32, the runtime partly in f64).
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { AttrValue, GraphNode, Model, OpName, StoredTensor } from '../../../runtime/ir.js';
import { OP_IDS } from '../../../runtime/ir.js';
import { writeFlm } from '../../../converter/writer.js';
import { readFlm } from '../../../runtime/format/reader.js';
import { quantizeTensor } from '../../../runtime/format/dtype.js';
import { getProfile, registerProfile } from '../../../runtime/plan/profiles.js';
import { mcuProfile } from '../../../runtime/plan/mcu.js';
import { TMP, buildPort, openDevice, referenceOf, seededRandom, worst } from './support.js';

const TOL = 1e-3;

const rnd = seededRandom(777);
function tensor(name: string, shape: number[], scale = 0.5, offset = 0): StoredTensor {
  const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
  for (let i = 0; i < data.length; i++) data[i] = offset + rnd() * scale;
  return { name, dtype: 'f32', shape, data };
}
function node(name: string, op: OpName, inputs: string[], attrs: Record<string, AttrValue> = {}, weights: Record<string, string> = {}): GraphNode {
  return { name, op, inputs, outputs: [`${name}.out`], attrs, weights };
}
function model(input: number[], nodes: GraphNode[], tensors: StoredTensor[], dtype: 'f32' | 'f16' | 'i8'): Model {
  const m = new Map<string, StoredTensor>();
  for (const tt of tensors) {
    // weights of two or more axes take the dtype (int8 per output channel); vectors stay f32
    const q = dtype === 'f32' || tt.shape.length < 2 ? tt : quantizeTensor(tt, dtype, dtype === 'i8' ? { perChannelAxis: 0 } : {});
    m.set(tt.name, q);
  }
  return {
    graph: { inputs: [{ name: 'x', shape: [-1, ...input.slice(1)] }], outputs: [`${nodes[nodes.length - 1]!.name}.out`], nodes },
    tensors: m,
    metadata: {},
  };
}

interface Case { name: string; input: number[]; model: Model; positive?: boolean }

/** Graphs that together run every new op in each of its modes. */
function cases(dtype: 'f32' | 'f16' | 'i8'): Case[] {
  const out: Case[] = [];
  // image ops: constant / reflect / edge pad, conv_transpose2d (stride, pads, output_padding,
  // dilation, groups, bias), prelu per channel and single, resize nearest (each rounding and
  // coordinate mode) and linear, slice with negative bounds and steps, concat, reduce
  out.push({
    name: 'image',
    input: [1, 3, 7, 6],
    model: model([1, 3, 7, 6], [
      node('p1', 'pad', ['x'], { pads: [0, 0, 1, 2, 0, 0, 2, 1], value: 0.25 }),
      node('ct', 'conv_transpose2d', ['p1.out'], { strides: [2, 2], pads: [1, 0, 1, 1], output_padding: [1, 0] }, { weight: 'ct.w', bias: 'ct.b' }),
      node('pr', 'prelu', ['ct.out'], {}, { slope: 'pr.s' }),
      node('rn', 'resize', ['pr.out'], { scales: [1, 1, 0.5, 0.5], mode: 'nearest', coord: 'asymmetric', nearest: 'floor' }),
      node('p2', 'pad', ['rn.out'], { pads: [0, 0, 2, 1, 0, 0, 1, 2], mode: 'reflect' }),
      node('ct2', 'conv_transpose2d', ['p2.out'], { group: 2, dilations: [2, 1], pads: [1, 1, 0, 1] }, { weight: 'ct2.w' }),
      node('p3', 'pad', ['ct2.out'], { pads: [0, 0, -1, 1, 0, 0, 1, -2], mode: 'edge' }),
      node('pr2', 'prelu', ['p3.out'], {}, { slope: 'pr2.s' }),
      node('sl', 'slice', ['pr2.out'], { axes: [3, 2], starts: [-1, 1], ends: [-100, -1], steps: [-2, 3] }),
      node('rl', 'resize', ['sl.out'], { scales: [1, 1, 2, 1.5], mode: 'linear', coord: 'half_pixel' }),
      node('ra', 'resize', ['sl.out'], { scales: [1, 1, 2, 1.5], mode: 'linear', coord: 'align_corners' }),
      node('rp', 'resize', ['sl.out'], { scales: [1, 1, 2, 1.5], mode: 'nearest', coord: 'pytorch_half_pixel', nearest: 'round_prefer_ceil' }),
      node('c1', 'concat', ['rl.out', 'ra.out'], { axis: -3 }),
      node('cc', 'concat', ['c1.out', 'rp.out'], { axis: 1 }),
      node('rt', 'resize', ['cc.out'], { scales: [1, 1, 1.5, 2], mode: 'nearest', coord: 'tf_half_pixel_for_nn' }),
      node('rr', 'resize', ['rt.out'], { scales: [1, 1, 0.75, 1], mode: 'nearest', coord: 'half_pixel', nearest: 'ceil' }),
      node('rm', 'reduce', ['rr.out'], { op: 'max', axes: [2], keepdims: 0 }),
      node('s2', 'slice', ['rm.out'], { axes: [2], starts: [0], ends: [1000], steps: [4] }),
      node('f', 'flatten', ['s2.out']),
    ], [tensor('ct.w', [3, 4, 3, 2]), tensor('ct.b', [4]), tensor('pr.s', [4]), tensor('ct2.w', [4, 3, 2, 3]), tensor('pr2.s', [1])], dtype),
  });
  // sequence ops: layer_norm (scale and bias, or neither), gelu both forms, erf, hard_sigmoid,
  // hard_swish, log_softmax, reduce mean / sum, and the math chain on positive values
  out.push({
    name: 'sequence',
    input: [1, 5, 8],
    model: model([1, 5, 8], [
      node('ln', 'layer_norm', ['x'], { axis: -1, epsilon: 1e-3 }, { scale: 'ln.s', bias: 'ln.b' }),
      node('ge', 'gelu', ['ln.out']),
      node('gt', 'gelu', ['ge.out'], { approximate: 'tanh' }),
      node('er', 'erf', ['gt.out']),
      node('hs', 'hard_sigmoid', ['er.out'], { alpha: 0.7, beta: 0.4 }),
      node('hw', 'hard_swish', ['ln.out']),
      node('hd', 'hard_sigmoid', ['hw.out']),
      node('cc', 'concat', ['hs.out', 'hd.out']),
      node('ls', 'log_softmax', ['cc.out'], { axis: 1 }),
      node('ab', 'abs', ['ls.out']),
      node('sq', 'sqrt', ['ab.out']),
      node('ex', 'exp', ['sq.out']),
      node('lg', 'log', ['ex.out']),
      node('pw', 'pow', ['lg.out'], { exponent: 1.5 }),
      node('p2', 'pow', ['pw.out'], { exponent: 2 }),
      node('ad', 'add', ['p2.out', 'half']),
      node('rc', 'reciprocal', ['ad.out']),
      node('ln2', 'layer_norm', ['rc.out'], { axis: 1 }),
      node('rs', 'reduce', ['ln2.out'], { op: 'sum', axes: [-1], keepdims: 1 }),
      node('rm', 'reduce', ['ln2.out'], { op: 'mean', axes: [2] }),
      node('cat', 'concat', ['rs.out', 'rm.out'], { axis: 2 }),
      node('f', 'flatten', ['cat.out']),
    ], [tensor('ln.s', [8], 0.5, 1), tensor('ln.b', [8]), { name: 'half', dtype: 'f32', shape: [1], data: new Float32Array([0.5]) }], dtype),
  });
  return out;
}

/** |dev - ref| / max(1, |ref|), the worst over the outputs. */

function inputs(c: Case, n: number): Float32Array {
  const x = new Float32Array(n * c.input.reduce((a, b) => a * b, 1));
  for (let i = 0; i < x.length; i++) x[i] = rnd() * 2;
  return x;
}


t.test('the mcu plan takes every new op', async (t) => {
  if (!getProfile('mcu')) registerProfile(mcuProfile);
  const ops = new Set<string>();
  for (const c of cases('f32')) {
    const plan = readFlm(writeFlm(c.model)).memoryPlan?.plans.find((p) => p.profile === 'mcu');
    t.ok(plan, `${c.name}: the file has an mcu plan`);
    for (const nd of c.model.graph.nodes) ops.add(nd.op);
  }
  const added = Object.entries(OP_IDS).filter(([, id]) => id >= 25 && id <= 43).map(([name]) => name);
  t.same(added.filter((o) => !ops.has(o)), [], 'the graphs run every op of ids 25-43');
});

t.test('host port: each new op agrees with the Node runtime', async (t) => {
  const bin = buildPort(t, 'host');
  if (!bin) return;
  if (!getProfile('mcu')) registerProfile(mcuProfile);
  mkdirSync(TMP, { recursive: true });
  for (const dtype of ['f32', 'f16', 'i8'] as const) {
    for (const c of cases(dtype)) {
      const bytes = writeFlm(c.model);
      const file = resolve(TMP, `ops-${c.name}-${dtype}.flm`);
      writeFileSync(file, bytes);
      const n = 3;
      const x = inputs(c, n);
      const ref = referenceOf(bytes, x, n, c.input);
      const inp = resolve(TMP, `ops-in-${process.pid}.bin`);
      const out = resolve(TMP, `ops-out-${process.pid}.bin`);
      writeFileSync(inp, Buffer.from(x.buffer, x.byteOffset, x.byteLength));
      for (const nomap of [false, true]) {
        const r = spawnSync(bin, ['--run', file, inp, out], { encoding: 'utf8', env: { ...process.env, FL_HOST_NOMAP: nomap ? '1' : '0' } });
        if (r.status !== 0) {
          t.fail(`${c.name} ${dtype}: fl-host --run: ${r.stderr.trim()}`);
          continue;
        }
        const b = readFileSync(out);
        const dev = new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
        t.equal(dev.length, ref.length, `${c.name} ${dtype}: ${ref.length} outputs`);
        const w = worst(dev, ref);
        t.ok(w <= TOL, `${c.name} ${dtype}${nomap ? ' (store read through the port)' : ''}: max scaled error ${w.toExponential(2)} <= ${TOL}`);
      }
    }
  }
});

t.test('cortex-m4 under QEMU: each new op agrees with the Node runtime', async (t) => {
  const frames = await openDevice(t);
  if (!frames) return;
  const hello = await frames.call(0x01);
  const ids = hello.body['ops'] as number[];
  for (let id = 25; id <= 43; id++) t.ok(ids.includes(id), `hello.ops lists op ${id}`);
  for (const dtype of ['f32', 'i8'] as const) {
    for (const c of cases(dtype)) {
      const bytes = writeFlm(c.model);
      const end = await frames.upload(bytes);
      t.equal(end.kind, 0x84, `${c.name} ${dtype}: upload_end accepted ${JSON.stringify(end.body)}`);
      if (end.kind !== 0x84) continue;
      const x = inputs(c, 1);
      const ref = referenceOf(bytes, x, 1, c.input);
      const inf = await frames.call(0x05, { id: 1, x: new Uint8Array(x.buffer, x.byteOffset, x.byteLength), dtype: 'f32' }, 60000);
      t.equal(inf.kind, 0x85, `${c.name} ${dtype}: infer answered ${inf.kind === 0xff ? JSON.stringify(inf.body) : ''}`);
      if (inf.kind !== 0x85) continue;
      const yb = inf.body['y'] as Uint8Array;
      const y = new Float32Array(yb.buffer.slice(yb.byteOffset, yb.byteOffset + yb.byteLength));
      t.equal(y.length, ref.length, `${c.name} ${dtype}: ${ref.length} outputs`);
      const w = worst(y, ref);
      t.ok(w <= TOL, `${c.name} ${dtype} on the Cortex-M4: max scaled error ${w.toExponential(2)} <= ${TOL} (${inf.body['cycles']} instructions)`);
    }
  }
});
