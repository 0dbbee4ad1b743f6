// One test per error code: each builds a file (or a model) that fails in exactly that way.
import t from 'tap';
import { writeFlm, writeFlmFile } from '../../../converter/writer.js';
import {
  FLM_ERROR_CODES, FlmError, MAX_HEADER_LEN, PREAMBLE_SIZE, decodePreamble, dataOffsetFor, readFlm, readFlmFile,
  type FlmErrorCode,
} from '../../../runtime/format/index.js';
import type { Model } from '../../../runtime/ir.js';
import { assemble, edit, fixCrc, sampleModel, split } from './fixtures/flm.js';
import type { Asserts } from './fixtures/flm.js';

const covered = new Set<FlmErrorCode>();

function code(fn: () => unknown): FlmErrorCode | 'no error' | 'not an FlmError' {
  try {
    fn();
    return 'no error';
  } catch (e) {
    return e instanceof FlmError ? e.code : 'not an FlmError';
  }
}

function expectRead(tt: Asserts, bytes: Uint8Array, want: FlmErrorCode, what: string): void {
  tt.equal(code(() => readFlm(bytes)), want, what);
  covered.add(want);
}

function expectWrite(tt: Asserts, model: Model, want: FlmErrorCode, what: string): void {
  tt.equal(code(() => writeFlm(model)), want, `writer: ${what}`);
  covered.add(want);
}

const valid = writeFlm(sampleModel());
const at = (n: number) => split(valid).header.tensors[n];

t.test('FLM_TOO_SHORT', async (t) => {
  expectRead(t, valid.slice(0, PREAMBLE_SIZE - 1), 'FLM_TOO_SHORT', '23 bytes');
  expectRead(t, new Uint8Array(0), 'FLM_TOO_SHORT', 'empty');
});

t.test('FLM_BAD_MAGIC', async (t) => {
  const b = valid.slice();
  b[3] = 0x31;
  expectRead(t, b, 'FLM_BAD_MAGIC', 'FLM1');
});

t.test('FLM_UNSUPPORTED_VERSION', async (t) => {
  const p = split(valid);
  const b = assemble(p.header, p.data, { version: 2 });
  expectRead(t, b, 'FLM_UNSUPPORTED_VERSION', 'version 2');
  t.match((() => { try { readFlm(b); } catch (e) { return (e as Error).message; } return ''; })(), /supports version 1/);
});

t.test('FLM_BAD_FLAGS', async (t) => {
  const p = split(valid);
  expectRead(t, assemble(p.header, p.data, { flags: 1 }), 'FLM_BAD_FLAGS', 'flags 1');
});

t.test('FLM_HEADER_TOO_LARGE', async (t) => {
  const p = split(valid);
  expectRead(t, assemble(p.header, p.data, { headerLen: MAX_HEADER_LEN + 1 }), 'FLM_HEADER_TOO_LARGE', 'header_len over the cap');
  expectRead(t, assemble(p.header, p.data, { headerLen: 0xffffffff }), 'FLM_HEADER_TOO_LARGE', 'header_len 2^32-1');
});

t.test('FLM_HEADER_TRUNCATED', async (t) => {
  expectRead(t, valid.slice(0, PREAMBLE_SIZE + 10), 'FLM_HEADER_TRUNCATED', 'cut inside the header');
  const pre = decodePreamble(valid);
  expectRead(t, valid.slice(0, dataOffsetFor(pre.headerLen) - 1), 'FLM_HEADER_TRUNCATED', 'cut inside the header padding');
});

t.test('FLM_FILE_SIZE_MISMATCH', async (t) => {
  expectRead(t, valid.slice(0, valid.length - 1), 'FLM_FILE_SIZE_MISMATCH', 'one byte short');
  const longer = new Uint8Array(valid.length + 64);
  longer.set(valid);
  expectRead(t, longer, 'FLM_FILE_SIZE_MISMATCH', 'bytes after the data section');
  const p = split(valid);
  expectRead(t, assemble(p.header, p.data, { dataLen: 2 ** 60 }), 'FLM_FILE_SIZE_MISMATCH', 'data_len 2^60');
});

t.test('FLM_BAD_PADDING', async (t) => {
  const pre = decodePreamble(valid);
  const headerPad = valid.slice();
  headerPad[PREAMBLE_SIZE + pre.headerLen] = 7;
  t.ok(PREAMBLE_SIZE + pre.headerLen < dataOffsetFor(pre.headerLen), 'the sample header has padding');
  expectRead(t, fixCrc(headerPad), 'FLM_BAD_PADDING', 'after the header');
  const tensorPad = valid.slice();
  tensorPad[dataOffsetFor(pre.headerLen) + at(0).length] = 1; // fc1.u is 48 bytes, padded to 64
  expectRead(t, fixCrc(tensorPad), 'FLM_BAD_PADDING', 'between tensors');
});

t.test('FLM_CRC_MISMATCH', async (t) => {
  const b = valid.slice();
  b[b.length - 1]! ^= 0x01;
  expectRead(t, b, 'FLM_CRC_MISMATCH', 'a data bit flipped');
  const h = valid.slice();
  h[PREAMBLE_SIZE + 5]! ^= 0x80;
  expectRead(t, h, 'FLM_CRC_MISMATCH', 'a header bit flipped');
});

t.test('FLM_HEADER_DECODE', async (t) => {
  const data = split(valid).data;
  const cases: [string, number[]][] = [
    ['empty header', []],
    ['never-used byte 0xc1', [0xc1]],
    ['fixext (msgpackr undefined)', [0x81, 0xa1, 0x61, 0xd4, 0x00, 0x00]],
    ['ext8', [0xc7, 0x01, 0x05, 0x00]],
    ['bin8', [0xc4, 0x01, 0x00]],
    ['integer map key', [0x81, 0x01, 0x02]],
    ['duplicate key', [0x82, 0xa1, 0x61, 0x01, 0xa1, 0x61, 0x02]],
    ['invalid UTF-8', [0x81, 0xa1, 0xff, 0x01]],
    ['truncated string', [0x81, 0xa5, 0x61]],
    ['array count beyond the bytes', [0xdd, 0x7f, 0xff, 0xff, 0xff]],
    ['bytes after the value', [0x80, 0x00]],
    ['nesting 100 deep', [...Array(100).fill(0x91), 0x00]],
  ];
  for (const [what, header] of cases) expectRead(t, assemble(Uint8Array.from(header), data), 'FLM_HEADER_DECODE', what);
});

t.test('FLM_HEADER_SCHEMA', async (t) => {
  expectRead(t, edit(valid, (p) => { delete p.header.graph; }), 'FLM_HEADER_SCHEMA', 'no graph');
  expectRead(t, edit(valid, (p) => { p.header.tensors = {}; }), 'FLM_HEADER_SCHEMA', 'tensors not an array');
  expectRead(t, edit(valid, (p) => { p.header.tensors[0].compression = 'zstd'; }), 'FLM_HEADER_SCHEMA', 'unknown tensor key');
  expectRead(t, edit(valid, (p) => { p.header.tensors[0].offset = -64; }), 'FLM_HEADER_SCHEMA', 'negative offset');
  expectRead(t, edit(valid, (p) => { p.header.graph.nodes[0].inputs = [1]; }), 'FLM_HEADER_SCHEMA', 'input not a string');
  expectRead(t, edit(valid, (p) => { p.header.graph.nodes[1].attrs.alpha = { x: 1 }; }), 'FLM_HEADER_SCHEMA', 'attr is a map');
  expectRead(t, edit(valid, (p) => { p.header = [1, 2]; }), 'FLM_HEADER_SCHEMA', 'header is an array');
  const m = sampleModel();
  m.tensors.set('other', { ...m.tensors.get('shift')! });
  expectWrite(t, m, 'FLM_HEADER_SCHEMA', 'map key differs from the tensor name');
});

t.test('FLM_BAD_METADATA', async (t) => {
  expectRead(t, edit(valid, (p) => { p.header.metadata['Source.Model'] = 'x'; }), 'FLM_BAD_METADATA', 'upper case key');
  expectRead(t, edit(valid, (p) => { p.header.metadata['source..model'] = 'x'; }), 'FLM_BAD_METADATA', 'empty segment');
  const a = sampleModel();
  a.metadata['train.when'] = new Date(0);
  expectWrite(t, a, 'FLM_BAD_METADATA', 'a Date value');
  const b = sampleModel();
  b.metadata['train.loss'] = undefined;
  expectWrite(t, b, 'FLM_BAD_METADATA', 'an undefined value');
  const c = sampleModel();
  c.metadata['train.curve'] = new Float32Array(3);
  expectWrite(t, c, 'FLM_BAD_METADATA', 'a typed array value');
});

t.test('FLM_BAD_DTYPE', async (t) => {
  expectRead(t, edit(valid, (p) => { p.header.tensors[0].dtype = 3; }), 'FLM_BAD_DTYPE', 'dtype id 3');
  const m = sampleModel();
  m.tensors.get('fc1.u')!.data = new Uint16Array(12);
  expectWrite(t, m, 'FLM_BAD_DTYPE', 'f32 tensor holding a Uint16Array');
});

t.test('FLM_BAD_SHAPE', async (t) => {
  expectRead(t, edit(valid, (p) => { p.header.tensors[0].shape = [1, 1, 1, 1, 1, 1, 1, 1, 12]; }), 'FLM_BAD_SHAPE', 'rank 9');
  expectRead(t, edit(valid, (p) => { p.header.tensors[0].shape = [-6, -2]; }), 'FLM_BAD_SHAPE', 'negative dim');
  expectRead(t, edit(valid, (p) => { p.header.tensors[0].shape = [6, 2.5]; }), 'FLM_BAD_SHAPE', 'fractional dim');
  expectRead(t, edit(valid, (p) => { p.header.graph.inputs[0].shape = [-2, 8]; }), 'FLM_BAD_SHAPE', 'graph input dim -2');
});

t.test('FLM_SIZE_OVERFLOW', async (t) => {
  const big = 0x7fffffff;
  expectRead(t, edit(valid, (p) => { p.header.tensors[0].shape = [big, big, big]; }), 'FLM_SIZE_OVERFLOW', '(2^31)^3 elements');
});

t.test('FLM_LENGTH_MISMATCH', async (t) => {
  expectRead(t, edit(valid, (p) => { p.header.tensors[0].length += 4; }), 'FLM_LENGTH_MISMATCH', 'length + 4');
  const m = sampleModel();
  m.tensors.get('fc1.u')!.data = new Float32Array(11);
  expectWrite(t, m, 'FLM_LENGTH_MISMATCH', '11 elements for [6, 2]');
});

t.test('FLM_MISALIGNED', async (t) => {
  expectRead(t, edit(valid, (p) => { p.header.tensors[1].offset += 4; }), 'FLM_MISALIGNED', 'offset + 4');
});

t.test('FLM_GAP_OR_OVERLAP', async (t) => {
  expectRead(t, edit(valid, (p) => { p.header.tensors[1].offset += 64; }), 'FLM_GAP_OR_OVERLAP', 'a 64-byte gap');
  expectRead(t, edit(valid, (p) => { p.header.tensors[1].offset = 0; }), 'FLM_GAP_OR_OVERLAP', 'overlap');
  expectRead(t, edit(valid, (p) => { p.header.tensors.reverse(); }), 'FLM_GAP_OR_OVERLAP', 'out of offset order');
});

t.test('FLM_OUT_OF_BOUNDS', async (t) => {
  expectRead(t, edit(valid, (p) => {
    const last = p.header.tensors[p.header.tensors.length - 1];
    last.shape = [400];
    last.length = 1600;
  }), 'FLM_OUT_OF_BOUNDS', 'last tensor runs past the data');
});

t.test('FLM_TRAILING_BYTES', async (t) => {
  expectRead(t, edit(valid, (p) => {
    const data = new Uint8Array(p.data.length + 64);
    data.set(p.data);
    p.data = data;
  }), 'FLM_TRAILING_BYTES', '64 zero bytes after the last tensor');
});

t.test('FLM_DUPLICATE_TENSOR', async (t) => {
  expectRead(t, edit(valid, (p) => { p.header.tensors[1].name = p.header.tensors[0].name; }), 'FLM_DUPLICATE_TENSOR', 'two fc1.u');
});

t.test('FLM_BAD_QUANT', async (t) => {
  const i8 = 2; // fc1.bias
  expectRead(t, edit(valid, (p) => { delete p.header.tensors[i8].quant; }), 'FLM_BAD_QUANT', 'i8 without scale');
  expectRead(t, edit(valid, (p) => { p.header.tensors[i8].quant.scale = [0]; }), 'FLM_BAD_QUANT', 'zero scale');
  expectRead(t, edit(valid, (p) => { p.header.tensors[i8].quant.scale = [1e-50]; }), 'FLM_BAD_QUANT', 'scale 0 as f32');
  expectRead(t, edit(valid, (p) => { p.header.tensors[i8].quant.scale = [NaN]; }), 'FLM_BAD_QUANT', 'NaN scale');
  expectRead(t, edit(valid, (p) => { p.header.tensors[i8].quant.scale = [1, 2]; }), 'FLM_BAD_QUANT', 'two scales, no axis');
  expectRead(t, edit(valid, (p) => { p.header.tensors[3].quant.axis = 1; }), 'FLM_BAD_QUANT', '4 scales for an axis of 6');
  expectRead(t, edit(valid, (p) => { p.header.tensors[3].quant.axis = 2; }), 'FLM_BAD_QUANT', 'axis beyond the rank');
  expectRead(t, edit(valid, (p) => { p.header.tensors[0].quant = { scale: [1] }; }), 'FLM_BAD_QUANT', 'f32 with a scale');
});

t.test('FLM_UNKNOWN_OP', async (t) => {
  expectRead(t, edit(valid, (p) => { p.header.graph.nodes[1].op = 999; }), 'FLM_UNKNOWN_OP', 'op id 999');
  const m = sampleModel();
  (m.graph.nodes[1] as { op: string }).op = 'gelu';
  expectWrite(t, m, 'FLM_UNKNOWN_OP', 'op gelu');
});

t.test('FLM_BAD_GRAPH', async (t) => {
  expectRead(t, edit(valid, (p) => { p.header.graph.nodes[1].inputs = ['nope']; }), 'FLM_BAD_GRAPH', 'unknown input');
  expectRead(t, edit(valid, (p) => { p.header.graph.nodes[1].inputs = ['h3']; }), 'FLM_BAD_GRAPH', 'input defined later');
  expectRead(t, edit(valid, (p) => { p.header.graph.nodes[2].outputs = ['h1']; }), 'FLM_BAD_GRAPH', 'output defined twice');
  expectRead(t, edit(valid, (p) => { p.header.graph.nodes[2].outputs = ['shift']; }), 'FLM_BAD_GRAPH', 'output named like a tensor');
  expectRead(t, edit(valid, (p) => { p.header.graph.outputs = ['zzz']; }), 'FLM_BAD_GRAPH', 'unknown graph output');
  expectRead(t, edit(valid, (p) => { p.header.graph.nodes[2].name = 'fc1'; }), 'FLM_BAD_GRAPH', 'duplicate node name');
});

t.test('FLM_MISSING_TENSOR', async (t) => {
  expectRead(t, edit(valid, (p) => { p.header.graph.nodes[2].weights.bias = 'nope'; }), 'FLM_MISSING_TENSOR', 'bias names nothing');
});

t.test('FLM_DENSE_WEIGHT_IN_FACTOR_LAYER', async (t) => {
  expectRead(t, edit(valid, (p) => { p.header.graph.nodes[0].weights.weight = 'fc2.weight'; }),
    'FLM_DENSE_WEIGHT_IN_FACTOR_LAYER', 'svd_dense with a weight role');
  const m = sampleModel();
  m.graph.nodes[0]!.weights.weight = 'fc2.weight';
  expectWrite(t, m, 'FLM_DENSE_WEIGHT_IN_FACTOR_LAYER', 'svd_dense with a weight role');
  t.equal(code(() => readFlm(valid)), 'no error', 'dense op keeps its weight');
});

t.test('FLM_IO', async (t) => {
  await t.rejects(readFlmFile('/nonexistent/model.flm'), { code: 'FLM_IO' });
  await t.rejects(writeFlmFile(sampleModel(), '/nonexistent/dir/model.flm'), { code: 'FLM_IO' });
  covered.add('FLM_IO');
});

t.test('FLM_MEMORY_PLAN', async (t) => {
  t.ok(split(valid).header.memory_plan, 'the writer stores a plan for the sample model');
  expectRead(t, edit(valid, (p) => { delete p.header.memory_plan.version; }), 'FLM_MEMORY_PLAN', 'no version');
  expectRead(t, edit(valid, (p) => { p.header.memory_plan.version = 2; }), 'FLM_MEMORY_PLAN', 'unknown plan version');
  expectRead(t, edit(valid, (p) => { p.header.memory_plan = [1, 2]; }), 'FLM_MEMORY_PLAN', 'not a map');
  expectRead(t, edit(valid, (p) => { p.header.memory_plan.plans[0].values[0].offset = -4; }), 'FLM_MEMORY_PLAN', 'negative offset');
  expectRead(t, edit(valid, (p) => { p.header.memory_plan.plans[0].values[0].bytes = 'many'; }), 'FLM_MEMORY_PLAN', 'bytes a string');
  expectRead(t, edit(valid, (p) => { p.header.memory_plan.plans[0].align = 24; }), 'FLM_MEMORY_PLAN', 'align not a power of two');
  expectRead(t, edit(valid, (p) => { p.header.memory_plan.plans[0].extra = 1; }), 'FLM_MEMORY_PLAN', 'unknown key in a plan');
  expectRead(t, edit(valid, (p) => { p.header.memory_plan.plans[0].values[0].fused = 1; }), 'FLM_MEMORY_PLAN', 'fused not a boolean');
  expectRead(t, edit(valid, (p) => { p.header.memory_plan.plans[0].strategy = [{ node: 0, use: 'guess', rows: 0 }]; }), 'FLM_MEMORY_PLAN', 'unknown strategy');
  expectRead(t, edit(valid, (p) => { p.header.memory_plan.plans = Array.from({ length: 9 }, () => p.header.memory_plan.plans[0]); }), 'FLM_MEMORY_PLAN', 'more than 8 plans');
  // The writer checks a plan it is asked to keep.
  const m = readFlm(valid);
  m.memoryPlan!.plans[0]!.values[1]!.bytes = 4;
  t.equal(code(() => writeFlm(m, { memoryPlan: 'keep' })), 'FLM_MEMORY_PLAN', 'writer: keep a plan with a value too small');
});

t.test('FLM_ATTR_MISSING, FLM_ATTR_TYPE, FLM_ATTR_LENGTH, FLM_ATTR_RANGE', async (t) => {
  // node 1 is leaky_relu {alpha}, node 4 softmax {axis}; op ids as in OP_IDS (reshape 19, max_pool 15).
  expectRead(t, edit(valid, (p) => { p.header.graph.nodes[4].op = 19; }), 'FLM_ATTR_MISSING', 'reshape without shape');
  expectRead(t, edit(valid, (p) => { p.header.graph.nodes[1].attrs.alpha = [0.1]; }), 'FLM_ATTR_TYPE', 'alpha as a list');
  expectRead(t, edit(valid, (p) => { p.header.graph.nodes[4].attrs.axis = 0.5; }), 'FLM_ATTR_TYPE', 'axis not an integer');
  expectRead(t, edit(valid, (p) => { p.header.graph.nodes[1].op = 15; p.header.graph.nodes[1].attrs = { kernel: [2] }; }), 'FLM_ATTR_LENGTH', 'max_pool kernel of one value');
  expectRead(t, edit(valid, (p) => { p.header.graph.nodes[4].attrs.axis = 99; }), 'FLM_ATTR_RANGE', 'softmax axis 99');
  const m = sampleModel();
  m.graph.nodes[1] = { ...m.graph.nodes[1]!, op: 'max_pool', attrs: { kernel: [1, 1], dilations: [0, 1] } };
  expectWrite(t, m, 'FLM_ATTR_RANGE', 'max_pool with a dilation of 0');
});

t.test('every error code has a test', async (t) => {
  t.same(FLM_ERROR_CODES.filter((c) => !covered.has(c)), []);
});
