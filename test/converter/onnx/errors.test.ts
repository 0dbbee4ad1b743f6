// Every failure ends in an OnnxImportError with its own code and a one-line message.
import { readFileSync } from 'node:fs';
import t from 'tap';
import { OnnxImportError, importOnnx, importOnnxFile } from '../../../converter/onnx/index.js';
import { type ModelSpec, Rng, buildModel } from './fixtures/build.js';

import { FIXTURES } from '../../support/require.js';
const rng = new Rng(7);

function codeOf(f: () => unknown): string {
  try {
    f();
  } catch (err) {
    if (err instanceof OnnxImportError) {
      if (err.message.includes('\n')) return `multi-line message: ${err.message}`;
      return err.code;
    }
    return `foreign error: ${err instanceof Error ? `${err.name}: ${err.message}` : String(err)}`;
  }
  return 'no error';
}

function messageOf(f: () => unknown): string {
  try {
    f();
  } catch (err) {
    return err instanceof Error ? err.message : String(err);
  }
  return '';
}

const tiny = (opset: number, extra: Partial<ModelSpec> = {}): ModelSpec => ({
  opset,
  inputs: [{ name: 'x', shape: ['N', 4] }],
  outputs: ['y'],
  nodes: [{ op: 'Relu', inputs: ['x'], outputs: ['y'] }],
  ...extra,
});

t.test('bytes that are not ONNX: ONNX_PARSE', async (t) => {
  t.equal(codeOf(() => importOnnx(new Uint8Array(0))), 'ONNX_PARSE', 'empty');
  t.equal(codeOf(() => importOnnx(readFileSync(`${FIXTURES}/README.md`))), 'ONNX_PARSE', 'a text file');
  t.equal(codeOf(() => importOnnx(new TextEncoder().encode('{"graph": {"node": []}}'))), 'ONNX_PARSE', 'JSON');
  for (let i = 0; i < 50; i++) {
    const bytes = new Uint8Array(1 + Math.floor(rng.uniform() * 2000));
    for (let k = 0; k < bytes.length; k++) bytes[k] = Math.floor(rng.uniform() * 256);
    const code = codeOf(() => importOnnx(bytes));
    if (code !== 'ONNX_PARSE') t.fail(`random bytes #${i} gave ${code}`);
  }
  t.pass('50 random buffers all gave ONNX_PARSE');
});

t.test('truncated ONNX files: ONNX_PARSE', async (t) => {
  const lenet = readFileSync(`${FIXTURES}/lenet5_fashion.onnx`);
  t.equal(codeOf(() => importOnnx(lenet.subarray(0, Math.floor(lenet.length / 2)))), 'ONNX_PARSE', 'first half of lenet5');
  const small = buildModel({
    opset: 13, inputs: [{ name: 'x', shape: ['N', 3] }], outputs: ['y'],
    nodes: [{ op: 'Gemm', inputs: ['x', 'w', 'b'], outputs: ['y'], attrs: { transB: 1 } }],
    inits: [{ name: 'w', dims: [2, 3], data: rng.array(6) }, { name: 'b', dims: [2], data: rng.array(2) }],
  });
  for (let cut = 1; cut < small.length; cut++) {
    const code = codeOf(() => importOnnx(small.subarray(0, cut)));
    if (code !== 'ONNX_PARSE') t.fail(`cut at ${cut}/${small.length} gave ${code}`);
  }
  t.pass('every truncation of a small model gave ONNX_PARSE');
});

t.test('initializer without the data its dims need: ONNX_PARSE', async (t) => {
  const bytes = buildModel({
    ...tiny(13), nodes: [{ op: 'Add', inputs: ['x', 'c'], outputs: ['y'] }],
    inits: [{ name: 'c', dims: [4, 4], data: new Float32Array(4) }],
  });
  t.equal(codeOf(() => importOnnx(bytes)), 'ONNX_PARSE');
  t.match(messageOf(() => importOnnx(bytes)), /initializer "c"/);
});

t.test('unsupported ops: ONNX_UNSUPPORTED_OP naming op, node and opset', async (t) => {
  const lstm = buildModel(tiny(13, { nodes: [{ op: 'LSTM', name: '/rnn/LSTM', inputs: ['x', 'W', 'R'], outputs: ['y'] }] }));
  t.equal(codeOf(() => importOnnx(lstm)), 'ONNX_UNSUPPORTED_OP');
  t.equal(messageOf(() => importOnnx(lstm)), 'unsupported ONNX op LSTM (node "/rnn/LSTM", opset 13)');
  const einsum = buildModel(tiny(12, {
    nodes: [{ op: 'Relu', inputs: ['x'], outputs: ['r'] }, { op: 'Einsum', name: 'ein', inputs: ['r', 'r'], outputs: ['y'], attrs: { equation: 'ij,ij->ij' } }],
  }));
  t.equal(messageOf(() => importOnnx(einsum)), 'unsupported ONNX op Einsum (node "ein", opset 12)');
  const custom = buildModel(tiny(13, { nodes: [{ op: 'Relu', domain: 'com.example', name: 'r', inputs: ['x'], outputs: ['y'] }] }));
  t.equal(codeOf(() => importOnnx(custom)), 'ONNX_UNSUPPORTED_OP');
  t.match(messageOf(() => importOnnx(custom)), /com\.example\.Relu/);
  const gatherAct = buildModel(tiny(13, {
    nodes: [{ op: 'Gather', name: 'g', inputs: ['x', 'i'], outputs: ['y'], attrs: { axis: 1 } }],
    inits: [{ name: 'i', dims: [1, 1], data: [0], int64: true }],
  }));
  // A Gather on an activation by a scalar or a list of constant indices imports (as slices,
  // test/acceptance/userModels2.test.ts); a 2-D index table does not.
  t.equal(codeOf(() => importOnnx(gatherAct)), 'ONNX_UNSUPPORTED_ATTR', 'Gather on an activation by a 2-D index table');
  t.match(messageOf(() => importOnnx(gatherAct)), /node "g" \(Gather, opset 13\): indices of rank 2/);
  const gatherFree = buildModel(tiny(13, {
    nodes: [{ op: 'Gather', name: 'g', inputs: ['x', 'i'], outputs: ['y'] }],
    inits: [{ name: 'i', dims: [], data: [0], int64: true }],
  }));
  t.match(messageOf(() => importOnnx(gatherFree)), /node "g" \(Gather, opset 13\): gathering on axis 0, whose size is free/, 'nor one on the free batch axis');
});

t.test('opsets outside 11-17: ONNX_UNSUPPORTED_OPSET', async (t) => {
  for (const opset of [1, 9, 10, 18, 21]) {
    t.equal(codeOf(() => importOnnx(buildModel(tiny(opset)))), 'ONNX_UNSUPPORTED_OPSET', `opset ${opset}`);
  }
  t.match(messageOf(() => importOnnx(buildModel(tiny(9)))), /opset 9 .*11-17/);
  for (const opset of [11, 12, 13, 14, 15, 16, 17]) {
    t.equal(codeOf(() => importOnnx(buildModel(tiny(opset)))), 'no error', `opset ${opset} imports`);
  }
});

t.test('unsupported attributes: ONNX_UNSUPPORTED_ATTR', async (t) => {
  const conv3d = buildModel({
    opset: 13, inputs: [{ name: 'x', shape: ['N', 1, 4, 4, 4] }], outputs: ['y'],
    nodes: [{ op: 'Conv', inputs: ['x', 'w'], outputs: ['y'] }],
    inits: [{ name: 'w', dims: [2, 1, 3, 3, 3], data: rng.array(54) }],
  });
  t.equal(codeOf(() => importOnnx(conv3d)), 'ONNX_UNSUPPORTED_ATTR', '3-D conv');
  const transA = buildModel({
    opset: 13, inputs: [{ name: 'x', shape: [3, 4] }], outputs: ['y'],
    nodes: [{ op: 'Gemm', inputs: ['x', 'w'], outputs: ['y'], attrs: { transA: 1 } }],
    inits: [{ name: 'w', dims: [3, 2], data: rng.array(6) }],
  });
  t.equal(codeOf(() => importOnnx(transA)), 'ONNX_UNSUPPORTED_ATTR', 'Gemm transA=1');
  t.match(messageOf(() => importOnnx(transA)), /transA=1/);
  const convActWeight = buildModel({
    opset: 13, inputs: [{ name: 'x', shape: [1, 1, 4, 4] }, { name: 'w', shape: [1, 1, 3, 3] }], outputs: ['y'],
    nodes: [{ op: 'Conv', inputs: ['x', 'w'], outputs: ['y'] }],
  });
  t.equal(codeOf(() => importOnnx(convActWeight)), 'ONNX_UNSUPPORTED_ATTR', 'conv weight that is an input');
  const indices = buildModel(tiny(13, {
    inputs: [{ name: 'x', shape: ['N', 1, 4, 4] }], outputs: ['y', 'i'],
    nodes: [{ op: 'MaxPool', inputs: ['x'], outputs: ['y', 'i'], attrs: { kernel_shape: [2, 2] } }],
  }));
  t.equal(codeOf(() => importOnnx(indices)), 'ONNX_UNSUPPORTED_ATTR', 'MaxPool indices output in use');
});

t.test('structural problems: ONNX_BAD_MODEL', async (t) => {
  const undef = buildModel(tiny(13, { nodes: [{ op: 'Add', inputs: ['x', 'nowhere'], outputs: ['y'] }] }));
  t.equal(codeOf(() => importOnnx(undef)), 'ONNX_BAD_MODEL', 'reads an undefined value');
  t.match(messageOf(() => importOnnx(undef)), /"nowhere"/);
  const mismatch = buildModel({
    opset: 13, inputs: [{ name: 'x', shape: ['N', 5] }], outputs: ['y'],
    nodes: [{ op: 'Gemm', inputs: ['x', 'w'], outputs: ['y'], attrs: { transB: 1 } }],
    inits: [{ name: 'w', dims: [2, 3], data: rng.array(6) }],
  });
  t.equal(codeOf(() => importOnnx(mismatch)), 'ONNX_BAD_MODEL', 'weight does not fit the input');
  const constOut = buildModel(tiny(13, {
    outputs: ['y', 'c'],
    nodes: [{ op: 'Relu', inputs: ['x'], outputs: ['y'] }, { op: 'Constant', inputs: [], outputs: ['c'], attrs: { value_float: { kind: 'float', v: 1 } } }],
  }));
  t.equal(codeOf(() => importOnnx(constOut)), 'ONNX_BAD_MODEL', 'constant graph output');
});

t.test('a file that cannot be read: ONNX_PARSE', async (t) => {
  t.equal(codeOf(() => importOnnxFile(`${FIXTURES}/does-not-exist.onnx`)), 'ONNX_PARSE');
});

t.test('mutated bytes give a model or a typed error, never a crash', async (t) => {
  const base = buildModel({
    opset: 13, inputs: [{ name: 'x', shape: ['N', 2, 6, 6] }], outputs: ['y'],
    nodes: [
      { op: 'Conv', inputs: ['x', 'w'], outputs: ['c'], attrs: { pads: [1, 1, 1, 1] } },
      { op: 'Shape', inputs: ['c'], outputs: ['s'] },
      { op: 'Gather', inputs: ['s', 'zero'], outputs: ['n'], attrs: { axis: 0 } },
      { op: 'Unsqueeze', inputs: ['n', 'zero1'], outputs: ['n1'] },
      { op: 'Concat', inputs: ['n1', 'm1'], outputs: ['shape'], attrs: { axis: 0 } },
      { op: 'Reshape', inputs: ['c', 'shape'], outputs: ['f'] },
      { op: 'Gemm', inputs: ['f', 'fw'], outputs: ['y'], attrs: { transB: 1 } },
    ],
    inits: [
      { name: 'w', dims: [3, 2, 3, 3], data: rng.array(54) }, { name: 'zero', dims: [], data: [0], int64: true },
      { name: 'zero1', dims: [1], data: [0], int64: true }, { name: 'm1', dims: [1], data: [-1], int64: true },
      { name: 'fw', dims: [4, 108], data: rng.array(432) },
    ],
  });
  t.equal(codeOf(() => importOnnx(base)), 'no error', 'the unmutated model imports');
  const seen = new Map<string, number>();
  for (let i = 0; i < 400; i++) {
    const bytes = Uint8Array.from(base);
    const flips = 1 + Math.floor(rng.uniform() * 4);
    for (let k = 0; k < flips; k++) bytes[Math.floor(rng.uniform() * bytes.length)] = Math.floor(rng.uniform() * 256);
    const code = codeOf(() => importOnnx(bytes));
    seen.set(code, (seen.get(code) ?? 0) + 1);
    if (code.startsWith('foreign') || code.startsWith('multi-line')) t.fail(`mutation #${i}: ${code}`);
  }
  t.pass(`outcomes: ${JSON.stringify(Object.fromEntries(seen))}`);
});
