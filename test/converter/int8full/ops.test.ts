// int8-full on a residual, multi-branch graph built here with seeded weights: conv -> relu -> conv
// added to a 1x1 shortcut (the ResNet block), relu folded into the add, a depthwise conv (groups =
// channels), relu6 (clip) folded into its producer, a concat of two branches, global average pool,
// dense, then mul / add by scalars, hard_swish, sigmoid (tables) and softmax. The integer path is
// checked against the f32 session on the same inputs, through a file round trip, and
// `--method auto` with the integer path's kinds never picks a kind the integer path lacks.
import t from 'tap';
import { compressModel } from '../../../converter/compress.js';
import { INT8_KINDS, quantizeInt8Full, int8FullRefusals } from '../../../converter/int8Full.js';
import { autoMethods } from '../../../converter/compress.js';
import { writeFlm } from '../../../converter/writer.js';
import { readFlm } from '../../../runtime/format/reader.js';
import { Int8Session } from '../../../runtime/int8full/session.js';
import { INT8_FULL_KEY, readInt8Full, SOFTMAX_OUT } from '../../../runtime/int8full/params.js';
import type { GraphNode, Model, StoredTensor, Tensor } from '../../../runtime/ir.js';
import { Session } from '../../../runtime/session.js';

function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0;
    return s / 4294967296;
  };
}
const r = rng(42);
const gauss = () => Math.sqrt(-2 * Math.log(r() + 1e-12)) * Math.cos(2 * Math.PI * r());

function residualModel(head: 'softmax' | 'tables'): Model {
  const tensors = new Map<string, StoredTensor>();
  const w = (name: string, shape: number[], std: number) => {
    const n = shape.reduce((a, b) => a * b, 1);
    tensors.set(name, { name, dtype: 'f32', shape, data: Float32Array.from({ length: n }, () => gauss() * std) });
    return name;
  };
  const c = (name: string, v: number) => tensors.set(name, { name, dtype: 'f32', shape: [1], data: Float32Array.of(v) });
  const conv = (name: string, x: string, O: number, I: number, k: number, group = 1): GraphNode => ({
    name, op: 'conv2d', inputs: [x], outputs: [`${name}.y`],
    attrs: { strides: [1, 1], pads: k === 3 ? [1, 1, 1, 1] : [0, 0, 0, 0], dilations: [1, 1], group },
    weights: { weight: w(`${name}.w`, [O, I / group, k, k], Math.sqrt(2 / ((I / group) * k * k))), bias: w(`${name}.b`, [O], 0.1) },
  });
  const act = (name: string, op: GraphNode['op'], x: string, attrs: GraphNode['attrs'] = {}, extra: string[] = []): GraphNode => ({ name, op, inputs: [x, ...extra], outputs: [`${name}.y`], attrs, weights: {} });
  c('k.mul', 0.5);
  c('k.add', 0.25);
  const nodes: GraphNode[] = [
    conv('c1', 'x', 8, 3, 3), act('r1', 'relu', 'c1.y'),
    conv('c2', 'r1.y', 8, 8, 3),
    conv('sc', 'x', 8, 3, 1),
    { name: 'add', op: 'add', inputs: ['c2.y', 'sc.y'], outputs: ['add.y'], attrs: {}, weights: {} },
    act('r2', 'relu', 'add.y'),
    conv('dw', 'r2.y', 8, 8, 3, 8),
    act('r6', 'clip', 'dw.y', { min: 0, max: 6 }),
    conv('pw', 'r6.y', 12, 8, 1),
    { name: 'cat', op: 'concat', inputs: ['pw.y', 'sc.y'], outputs: ['cat.y'], attrs: { axis: 1 }, weights: {} },
    act('gap', 'global_avg_pool', 'cat.y'),
    act('fl', 'flatten', 'gap.y', { axis: 1 }),
    { name: 'fc', op: 'dense', inputs: ['fl.y'], outputs: ['fc.y'], attrs: {}, weights: { weight: w('fc.w', [6, 20], 0.5), bias: w('fc.b', [6], 0.1) } },
  ];
  if (head === 'tables') {
    nodes.push(act('m', 'mul', 'fc.y', {}, ['k.mul']), act('a', 'add', 'm.y', {}, ['k.add']), act('hs', 'hard_swish', 'a.y'), act('sg', 'sigmoid', 'hs.y'));
  } else nodes.push(act('sm', 'softmax', 'fc.y', { axis: -1 }));
  const out = nodes[nodes.length - 1]!.outputs[0]!;
  return { graph: { inputs: [{ name: 'x', shape: [-1, 3, 8, 8] }], outputs: [out], nodes }, tensors, metadata: {} };
}

const batch = (n: number, seed: number): Tensor => {
  const g = rng(seed);
  return { shape: [n, 3, 8, 8], data: Float32Array.from({ length: n * 192 }, () => g() * 2 - 0.5) };
};

for (const head of ['softmax', 'tables'] as const) {
  t.test(`residual + depthwise + concat graph, ${head} head: integer path vs f32`, async (t) => {
    const model = residualModel(head);
    t.same(int8FullRefusals(model), []);
    const full = quantizeInt8Full(model, batch(256, 1));
    const q = readInt8Full(full);
    const names = (m?: Record<string, unknown>) => Object.keys(m ?? {}).sort();
    t.same(names(q.add), ['add'], 'the residual add runs as an integer add');
    t.same(names(q.concat), ['cat']);
    t.equal(q.add!['add']!.min, q.values['add.y']![1], 'relu folded into the add: clamp at the zero point');
    t.equal(q.nodes['dw']![0]!.min, q.values['dw.y']![1], 'relu6 folded into the depthwise conv: lower clamp at the zero point');
    t.ok(q.nodes['dw']![0]!.max < 127 || q.values['dw.y']![0] * (127 - q.values['dw.y']![1]) <= 6.01, 'upper clamp at 6 (or the range ends below 6)');
    if (head === 'tables') t.same(names(q.lut), ['a', 'hs', 'm', 'r6', 'sg']);
    else {
      t.same(names(q.softmax), ['sm']);
      t.same(q.values['sm.y'], SOFTMAX_OUT);
    }
    const back = readFlm(writeFlm(full));
    const i8 = Int8Session.create(back);
    const f32 = Session.create(model);
    const x = batch(64, 2);
    const a = i8.runBatch(x);
    const b = f32.run({ x })[model.graph.outputs[0]!]!;
    let worst = 0;
    let same = 0;
    const C = 6;
    for (let n = 0; n < 64; n++) {
      let ia = 0;
      let ib = 0;
      for (let c = 0; c < C; c++) {
        worst = Math.max(worst, Math.abs(a.data[n * C + c]! - b.data[n * C + c]!));
        if (a.data[n * C + c]! > a.data[n * C + ia]!) ia = c;
        if (b.data[n * C + c]! > b.data[n * C + ib]!) ib = c;
      }
      if (ia === ib) same++;
    }
    // Outputs in [0, 1]: a few output LSBs (1/256 for softmax) of error through eight requantisations.
    t.ok(worst < 0.06, `max |int8-full - f32| = ${worst.toFixed(4)}`);
    if (head === 'softmax') t.ok(same >= 56, `top-1 agreement ${same} of 64`);
    // Hostile tables and add / concat / softmax parameters are refused when the file is read.
    const mutate = (f: (q: Record<string, any>) => void): Model => {
      const m = JSON.parse(JSON.stringify(full.metadata[INT8_FULL_KEY])) as Record<string, any>;
      f(m);
      return { ...full, metadata: { ...full.metadata, [INT8_FULL_KEY]: m } };
    };
    const cases: Array<[string, (q: Record<string, any>) => void]> = [
      ['add without its parameters', (m) => { delete m['add']['add']; }],
      ['add with one multiplier', (m) => { m['add']['add'].mult = [1 << 30]; }],
      ['add clamp min > max', (m) => { m['add']['add'].min = 100; m['add']['add'].max = 0; }],
      ['concat shift out of range', (m) => { m['concat']['cat'].shift[0] = 40; }],
      ...(head === 'softmax'
        ? [['softmax output not 1/256', (m: Record<string, any>) => { m['values']['sm.y'] = [0.01, -128]; }], ['softmax table not starting at 65536', (m: Record<string, any>) => { m['softmax']['sm'][0] = 1; }]] as Array<[string, (q: Record<string, any>) => void]>
        : [['table of 255 entries', (m: Record<string, any>) => { m['lut']['sg'].pop(); }], ['table entry 300', (m: Record<string, any>) => { m['lut']['hs'][3] = 300; }]] as Array<[string, (q: Record<string, any>) => void]>),
    ];
    for (const [what, f] of cases) {
      let code = 'no error';
      try {
        readInt8Full(mutate(f));
      } catch (e) {
        code = (e as { code?: string }).code ?? String(e);
      }
      t.equal(code, 'FLM_BAD_METADATA', what);
    }
    // The file round trip gives the same integers as the model in memory.
    const xi = i8.quantizeInput(x);
    t.same([...Object.values(Int8Session.create(full).runInt8(xi))[0]!.data], [...Object.values(i8.runInt8(xi))[0]!.data]);
  });
}

t.test('a product of two activations is refused by name', async (t) => {
  const m = residualModel('softmax');
  m.graph.nodes.splice(m.graph.nodes.findIndex((n) => n.name === 'cat'), 0, { name: 'prod', op: 'mul', inputs: ['pw.y', 'pw.y'], outputs: ['prod.y'], attrs: {}, weights: {} });
  m.graph.nodes.find((n) => n.name === 'cat')!.inputs[0] = 'prod.y';
  const bad = int8FullRefusals(m);
  t.equal(bad.length, 1);
  t.match(bad[0], /node prod: mul of 2 activations/);
});

t.test('--method auto with the integer path kinds picks only kinds it runs', async (t) => {
  t.same(autoMethods(INT8_KINDS).map((m) => m.name).sort(), ['cp', 'dwlr', 'svd', 'tucker2']); // dwlr: depthwise layers (qdwlr.c)
  t.ok(autoMethods().length > 3, 'without the restriction auto searches more methods');
  // A dense stack where tensor-train forms are cheap (784 = 28 x 28 inputs): auto at 20x.
  const tensors = new Map<string, StoredTensor>();
  const g = rng(3);
  const add = (name: string, shape: number[]) => tensors.set(name, { name, dtype: 'f32', shape, data: Float32Array.from({ length: shape[0]! * shape[1]! }, () => (g() - 0.5) * 0.1) });
  add('w1', [256, 784]);
  add('w2', [256, 256]);
  add('w3', [10, 256]);
  const node = (name: string, x: string, wn: string): GraphNode => ({ name, op: 'dense', inputs: [x], outputs: [`${name}.y`], attrs: {}, weights: { weight: wn } });
  const model: Model = {
    graph: { inputs: [{ name: 'x', shape: [-1, 784] }], outputs: ['d3.y'], nodes: [node('d1', 'x', 'w1'), { name: 'r', op: 'relu', inputs: ['d1.y'], outputs: ['r.y'], attrs: {}, weights: {} }, node('d2', 'r.y', 'w2'), node('d3', 'd2.y', 'w3')] },
    tensors,
    metadata: {},
  };
  const calibration: Tensor = { shape: [64, 784], data: Float32Array.from({ length: 64 * 784 }, () => g()) };
  const free = compressModel(model, { method: 'auto', ratio: 20, calibration });
  const kept = compressModel(model, { method: 'auto', ratio: 20, calibration, kinds: INT8_KINDS });
  const ops = (m: Model) => m.graph.nodes.map((n) => n.op);
  t.ok(ops(kept.model).every((o) => INT8_KINDS.has(o) || o === 'relu'), `restricted auto picked ${ops(kept.model)}`);
  t.same(int8FullRefusals(kept.model), [], 'the result converts to int8-full');
  t.comment(`unrestricted auto picked ${ops(free.model)}`);
});
