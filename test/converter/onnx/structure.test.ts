// What the imported Model looks like: names, inputs, outputs, tensors, metadata; tensor decoding.
import onnxProto from 'onnx-proto';
import t from 'tap';
import { importOnnx } from '../../../converter/onnx/index.js';
import { constFromProto } from '../../../converter/onnx/tensors.js';
import { Session } from '../../../runtime/session.js';
import { type ModelSpec, Rng, buildModel } from './fixtures/build.js';

const DT = onnxProto.onnx.TensorProto.DataType;
const rng = new Rng(3);

t.test('node names: kept, derived from the output when empty, made unique', async (t) => {
  const spec: ModelSpec = {
    opset: 13, inputs: [{ name: 'x', shape: ['N', 4] }], outputs: ['y'],
    nodes: [
      { op: 'Relu', name: '/act', inputs: ['x'], outputs: ['a'] },
      { op: 'Sigmoid', name: '/act', inputs: ['a'], outputs: ['b'] },
      { op: 'Tanh', name: '', inputs: ['b'], outputs: ['y'] },
    ],
  };
  const m = importOnnx(buildModel(spec));
  const names = m.graph.nodes.map((n) => n.name);
  t.same(names.slice(0, 1), ['/act']);
  t.equal(new Set(names).size, 3, 'unique');
  t.match(names[1]!, /^\/act./);
  t.equal(names[2], 'y');
});

t.test('graph inputs: initializers listed as inputs are dropped, free dims become -1', async (t) => {
  const bytes = buildModel({
    opset: 11,
    inputs: [{ name: 'x', shape: ['batch', 3, 'h', 5] }, { name: 'w', shape: [2, 5] }],
    outputs: ['y'],
    nodes: [{ op: 'MatMul', inputs: ['x', 'wt'], outputs: ['m'] }, { op: 'Relu', inputs: ['m'], outputs: ['y'] }],
    inits: [{ name: 'w', dims: [2, 5], data: rng.array(10) }, { name: 'wt', dims: [5, 2], data: rng.array(10) }],
  });
  const m = importOnnx(bytes);
  t.same(m.graph.inputs, [{ name: 'x', shape: [-1, 3, -1, 5] }]);
  t.same(m.graph.outputs, ['y']);
  t.equal(m.metadata['source.params'], 10, 'the unused initializer "w" is not counted');
  t.notOk(m.tensors.has('w'), 'unused initializers are not stored');
});

t.test('graph outputs survive Identity removal and fusion', async (t) => {
  const bytes = buildModel({
    opset: 13, inputs: [{ name: 'x', shape: ['N', 4] }], outputs: ['out', 'r'],
    nodes: [
      { op: 'Relu', inputs: ['x'], outputs: ['r'] },
      { op: 'MatMul', inputs: ['r', 'w'], outputs: ['m'] },
      { op: 'Add', inputs: ['m', 'b'], outputs: ['a'] },
      { op: 'Identity', inputs: ['a'], outputs: ['out'] },
    ],
    inits: [{ name: 'w', dims: [4, 3], data: rng.array(12) }, { name: 'b', dims: [3], data: rng.array(3) }],
  });
  const m = importOnnx(bytes);
  t.same(m.graph.outputs, ['out', 'r']);
  t.same(m.graph.nodes.map((n) => n.op), ['relu', 'dense', 'identity']);
  const x = rng.tensor([2, 4]);
  const res = Session.create(m).run({ x });
  t.same(res.out!.shape, [2, 3]);
  t.same(res.r!.shape, [2, 4]);
});

t.test('nodes out of topological order are sorted', async (t) => {
  const bytes = buildModel({
    opset: 13, inputs: [{ name: 'x', shape: ['N', 4] }], outputs: ['y'],
    nodes: [{ op: 'Tanh', inputs: ['a'], outputs: ['y'] }, { op: 'Relu', inputs: ['x'], outputs: ['a'] }],
  });
  t.same(importOnnx(bytes).graph.nodes.map((n) => n.op), ['relu', 'tanh']);
});

t.test('weights are copies with initializer names; derived tensors get derived names', async (t) => {
  const w = rng.array(12);
  const bytes = buildModel({
    opset: 13, inputs: [{ name: 'x', shape: ['N', 4] }], outputs: ['y'],
    nodes: [
      { op: 'Gemm', name: 'fc1', inputs: ['x', 'fc1.w'], outputs: ['h'], attrs: { transB: 1 } },
      { op: 'MatMul', name: 'fc2', inputs: ['h', 'fc2.w'], outputs: ['y'] },
    ],
    inits: [{ name: 'fc1.w', dims: [3, 4], data: w }, { name: 'fc2.w', dims: [3, 2], data: rng.array(6) }],
  });
  const m = importOnnx(bytes);
  const fc1 = m.tensors.get('fc1.w')!;
  t.same(Array.from(fc1.data), Array.from(w));
  t.equal(fc1.dtype, 'f32');
  bytes.fill(0);
  t.same(Array.from(fc1.data), Array.from(w), 'independent of the source bytes');
  t.same(m.graph.nodes[1]!.weights, { weight: 'fc2.weight' });
  t.same(m.tensors.get('fc2.weight')!.shape, [2, 3]);
});

t.test('TensorProto decoding: raw (unaligned), typed fields, f16, f64, ints', async (t) => {
  const f = new Float32Array([1.5, -2, 3.25]);
  const unaligned = new Uint8Array(13);
  unaligned.set(new Uint8Array(f.buffer), 1);
  const raw = constFromProto({ dims: [3], dataType: DT.FLOAT, rawData: unaligned.subarray(1) }, 't');
  t.same(Array.from(raw.data), [1.5, -2, 3.25]);
  t.same(Array.from(constFromProto({ dims: [2], dataType: DT.FLOAT, floatData: [4, 5] }, 't').data), [4, 5]);
  t.same(Array.from(constFromProto({ dims: [2], dataType: DT.DOUBLE, doubleData: [0.5, 2] }, 't').data), [0.5, 2]);
  const half = constFromProto({ dims: [3], dataType: DT.FLOAT16, rawData: new Uint8Array(new Uint16Array([0x3c00, 0xc000, 0x3555]).buffer) }, 't');
  t.same(Array.from(half.data).map((v) => Math.round(Number(v) * 1000) / 1000), [1, -2, 0.333]);
  const i64 = constFromProto({ dims: [2], dataType: DT.INT64, rawData: new Uint8Array(BigInt64Array.from([-1n, 9007199254740991n]).buffer) }, 't');
  t.same(i64, { kind: 'int', dims: [2], data: [-1, 9007199254740991], src: new Set() });
  t.same(constFromProto({ dims: [2, 1], dataType: DT.INT32, int32Data: [7, -8] }, 't').data, [7, -8]);
  t.same(constFromProto({ dims: [], dataType: DT.INT64, int64Data: [42] }, 't').data, [42], 'scalar');
  t.throws(() => constFromProto({ dims: [4], dataType: DT.FLOAT, rawData: new Uint8Array(12) }, 't'), { code: 'ONNX_PARSE' });
  t.throws(() => constFromProto({ dims: [2], dataType: DT.STRING, stringData: [] }, 't'), { code: 'ONNX_UNSUPPORTED_ATTR' });
});

t.test('Clip without bounds stores finite extremes', async (t) => {
  const m = importOnnx(buildModel({
    opset: 13, inputs: [{ name: 'x', shape: ['N', 4] }], outputs: ['y'], nodes: [{ op: 'Clip', inputs: ['x'], outputs: ['y'] }],
  }));
  const { min, max } = m.graph.nodes[0]!.attrs as { min: number; max: number };
  t.ok(Number.isFinite(min) && min <= -3.4e38);
  t.ok(Number.isFinite(max) && max >= 3.4e38);
});
