// The firmware's flexact op (core/ops/flexact.c) against the Node runtime (runtime/session.ts, whose
// branch step runtime/layers/flexact.ts flexactBranches is the definition): small graphs with and
// without a range (inputs well beyond it, so the tangent runs), a rank-3 input (several rows per
// sample), flexact between other layers, f32 / f16 / int8 factors, and a layer fitted by
// `convert --method decouple`'s library step, and B-spline branches; on the host port (store memory-mapped and read
// through the port) and on the Cortex-M4 port under QEMU. Tolerance as conformance.test.ts:
// |device - node| <= 1e-3 * max(1, |node|) per output.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { AttrValue, GraphNode, Model, OpName, StoredTensor } from '../../../runtime/ir.js';
import { writeFlm } from '../../../converter/writer.js';
import { readFlm } from '../../../runtime/format/reader.js';
import { quantizeTensor } from '../../../runtime/format/dtype.js';
import { getProfile, registerProfile } from '../../../runtime/plan/profiles.js';
import { mcuProfile } from '../../../runtime/plan/mcu.js';
import { importOnnx } from '../../../converter/onnx/index.js';
import { decoupleModel } from '../../../converter/decoupleModel.js';
import { normalInputs, pairModel } from '../../converter/decouple/pairModel.js';
import { TMP, buildPort, openDevice, randomTensor, referenceOf, seededRandom, worst } from './support.js';

const TOL = 1e-3;

const rnd = seededRandom(4242);
const tensor = randomTensor(rnd);
function node(name: string, op: OpName, inputs: string[], attrs: Record<string, AttrValue> = {}, weights: Record<string, string> = {}): GraphNode {
  return { name, op, inputs, outputs: [`${name}.out`], attrs, weights };
}
function model(input: number[], nodes: GraphNode[], tensors: StoredTensor[], dtype: 'f32' | 'f16' | 'i8'): Model {
  const m = new Map<string, StoredTensor>();
  for (const tt of tensors) {
    // v and w take the dtype (int8 per row); coeffs, range and bias stay f32 unless `all`
    const q = dtype === 'f32' || tt.shape.length < 2 || tt.name.endsWith('.range') || tt.name.endsWith('.c') ? tt
      : quantizeTensor(tt, dtype, dtype === 'i8' ? { perChannelAxis: 0 } : {});
    m.set(tt.name, q);
  }
  return {
    graph: { inputs: [{ name: 'x', shape: [-1, ...input.slice(1)] }], outputs: [`${nodes[nodes.length - 1]!.name}.out`], nodes },
    tensors: m,
    metadata: {},
  };
}
const range = (name: string, pairs: number[][]): StoredTensor => ({ name, dtype: 'f32', shape: [pairs.length, 2], data: Float32Array.from(pairs.flat()) });

interface Case { name: string; input: number[]; model: Model }

function cases(dtype: 'f32' | 'f16' | 'i8'): Case[] {
  const fx = (name: string, input: string, D: number, opts: { bias?: boolean; range?: boolean } = {}) =>
    node(name, 'flexact', [input], { basis: 'poly', degree: D }, {
      v: `${name}.v`, w: `${name}.w`, coeffs: `${name}.c`, ...(opts.bias === false ? {} : { bias: `${name}.b` }), ...(opts.range ? { range: `${name}.range` } : {}),
    });
  return [
    {
      // z = x v^T spreads about ±2; the ranges are narrow, so most z take the tangent on one side or the other
      name: 'ranged',
      input: [1, 12],
      model: model([1, 12], [fx('f', 'x', 3, { range: true })],
        [tensor('f.v', [4, 12]), tensor('f.w', [5, 4]), tensor('f.c', [4, 3], 0.8), tensor('f.b', [5]),
          range('f.range', [[-0.3, 0.2], [-1, 1], [0, 0.1], [-0.05, 0.5]])], dtype),
    },
    {
      // [1, 3, 7]: three rows per sample; degree 6, no bias, no range
      name: 'rows-deg6',
      input: [1, 3, 7],
      model: model([1, 3, 7], [fx('f', 'x', 6, { bias: false }), node('fl', 'flatten', ['f.out'], { axis: 1 })],
        [tensor('f.v', [5, 7], 0.3), tensor('f.w', [4, 5]), tensor('f.c', [5, 6], 0.4)], dtype),
    },
    {
      // dense -> flexact -> relu -> flexact (degree 1 and 16, the loop's bounds)
      name: 'between',
      input: [1, 10],
      model: model([1, 10], [
        node('d', 'dense', ['x'], {}, { weight: 'd.w', bias: 'd.b' }),
        fx('f1', 'd.out', 1, { range: true }),
        node('a', 'relu', ['f1.out']),
        fx('f2', 'a.out', 16),
      ], [tensor('d.w', [9, 10]), tensor('d.b', [9]), tensor('f1.v', [3, 9]), tensor('f1.w', [8, 3]), tensor('f1.c', [3, 1]), tensor('f1.b', [8]),
        range('f1.range', [[-0.2, 0.2], [-0.5, 0.1], [0, 1]]),
        tensor('f2.v', [2, 8], 0.6), tensor('f2.w', [6, 2]), tensor('f2.c', [2, 16], 0.3), tensor('f2.b', [6])], dtype),
    },
    {
      // B-spline branches: 7 cubic B-splines per branch, z across the knots and beyond both ends;
      // one branch's range of zero width (g the constant c_0)
      name: 'bspline',
      input: [1, 12],
      model: model([1, 12], [node('f', 'flexact', ['x'], { basis: 'bspline', degree: 7 }, { v: 'f.v', w: 'f.w', coeffs: 'f.c', bias: 'f.b', range: 'f.range' })],
        [tensor('f.v', [4, 12]), tensor('f.w', [5, 4]), tensor('f.c', [4, 7], 0.8), tensor('f.b', [5]),
          range('f.range', [[-0.8, 0.6], [-1.5, 1.2], [0.1, 0.1], [-0.3, 0.9]])], dtype),
    },
  ];
}

/** A flexact layer fitted to a tanh pair by the decouple method's library step (degree 7, range). */
function fitted(): Case {
  const pm = pairModel({ branches: 3 });
  const { model: m } = decoupleModel(importOnnx(pm.onnx, { sourceName: 'pair.onnx' }), {
    neurons: 3, basis: 'poly:7', samples: normalInputs(300, pm.inputs, 1), holdout: normalInputs(50, pm.inputs, 2), data: 'calibration', sweeps: 40,
  });
  return { name: 'fitted', input: [1, pm.inputs], model: m };
}

function inputs(c: Case, n: number): Float32Array {
  const x = new Float32Array(n * c.input.reduce((a, b) => a * b, 1));
  for (let i = 0; i < x.length; i++) x[i] = rnd() * 2.5;
  return x;
}

t.test('the mcu plan takes flexact, its scratch rows x r', async (t) => {
  if (!getProfile('mcu')) registerProfile(mcuProfile);
  for (const c of cases('f32')) {
    const plan = readFlm(writeFlm(c.model)).memoryPlan?.plans.find((p) => p.profile === 'mcu');
    t.ok(plan, `${c.name}: the file has an mcu plan`);
  }
});

t.test('host port: flexact agrees with the Node runtime', async (t) => {
  const bin = buildPort(t, 'host');
  if (!bin) return;
  if (!getProfile('mcu')) registerProfile(mcuProfile);
  mkdirSync(TMP, { recursive: true });
  const all: Array<[string, Case]> = [...(['f32', 'f16', 'i8'] as const).flatMap((d) => cases(d).map((c): [string, Case] => [d, c])), ['f32', fitted()]];
  for (const [dtype, c] of all) {
    const bytes = writeFlm(c.model);
    const file = resolve(TMP, `flexact-${c.name}-${dtype}.flm`);
    writeFileSync(file, bytes);
    const n = 4;
    const x = inputs(c, n);
    const ref = referenceOf(bytes, x, n, c.input);
    const inp = resolve(TMP, `flexact-in-${process.pid}.bin`);
    const out = resolve(TMP, `flexact-out-${process.pid}.bin`);
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
});

t.test('cortex-m4 under QEMU: flexact agrees with the Node runtime', async (t) => {
  const frames = await openDevice(t);
  if (!frames) return;
  const hello = await frames.call(0x01);
  t.ok((hello.body['ops'] as number[]).includes(44), 'hello.ops lists flexact (44)');
  const all: Array<[string, Case]> = [...(['f32', 'i8'] as const).flatMap((d) => cases(d).map((c): [string, Case] => [d, c])), ['f32', fitted()]];
  for (const [dtype, c] of all) {
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
});
