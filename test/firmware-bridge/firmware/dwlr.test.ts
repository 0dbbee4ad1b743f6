// The firmware's dwlr_conv2d (core/ops/dwlr.c: a depthwise conv whose kernels are u [C, r] v [r, kh, kw])
// against the Node runtime through the host port's direct mode, with f32, f16 and int8 factors and
// the stored mcu plan (the firmware refuses a plan whose scratch is short); and float for float the
// firmware's own conv2d run on the kernels rebuilt on the workstation (runtime/layers/dwlrConv2d.ts
// dwlrKernel), with the fast loops and the portable ones.
import t from 'tap';
import { mkdirSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { writeFlm } from '../../../converter/writer.js';
import { quantizeTensor, tensorToFloat32 } from '../../../runtime/format/dtype.js';
import { readFlm } from '../../../runtime/format/reader.js';
import type { GraphNode, Model, StoredTensor } from '../../../runtime/ir.js';
import { dwlrKernel } from '../../../runtime/layers/dwlrConv2d.js';
import { mcuProfile } from '../../../runtime/plan/mcu.js';
import { getProfile, registerProfile } from '../../../runtime/plan/profiles.js';
import { buildPort, reference, runHost, seededRandom, TMP, worst } from './support.js';

const rnd = seededRandom(5454);
const C = 6;
const R = 2;

const ATTRS = [
  { strides: [1, 1], pads: [1, 1, 1, 1], dilations: [1, 1], group: C },
  { strides: [2, 1], pads: [0, 1, 1, 0], dilations: [1, 2], group: C },
];

/** dwlr_conv2d (or conv2d with the rebuilt kernels) -> relu -> global_avg_pool -> flatten, input [1, C, 9, 8]. */
function graph(dtype: 'f32' | 'f16' | 'i8', attrs: GraphNode['attrs'], asDense?: Model): Model {
  const tensors = new Map<string, StoredTensor>();
  const add = (name: string, shape: number[]) => {
    const n = shape.reduce((a, b) => a * b, 1);
    const raw: StoredTensor = { name, dtype: 'f32', shape, data: Float32Array.from({ length: n }, () => rnd() * 0.8) };
    tensors.set(name, dtype === 'f32' || shape.length === 1 ? raw : quantizeTensor(raw, dtype, dtype === 'i8' ? { perChannelAxis: 0 } : {}));
    return name;
  };
  let conv: GraphNode;
  if (asDense) {
    // The same node as a plain depthwise conv2d whose f32 weight is the dwlr kernels rebuilt here.
    const u = tensorToFloat32(asDense.tensors.get('c.u')!);
    const v = tensorToFloat32(asDense.tensors.get('c.v')!);
    const v3 = asDense.tensors.get('c.v')!.shape;
    tensors.set('c.w', { name: 'c.w', dtype: 'f32', shape: [C, 1, v3[1]!, v3[2]!], data: dwlrKernel(u, v, C, R, v3[1]! * v3[2]!) });
    tensors.set('c.bias', asDense.tensors.get('c.bias')!);
    conv = { name: 'c', op: 'conv2d', inputs: ['x'], outputs: ['c.out'], attrs, weights: { weight: 'c.w', bias: 'c.bias' } };
  } else {
    conv = { name: 'c', op: 'dwlr_conv2d', inputs: ['x'], outputs: ['c.out'], attrs, weights: { u: add('c.u', [C, R]), v: add('c.v', [R, 3, 3]), bias: add('c.bias', [C]) } };
  }
  const nodes: GraphNode[] = [
    conv,
    { name: 'a', op: 'relu', inputs: ['c.out'], outputs: ['a.out'], attrs: {}, weights: {} },
    { name: 'g', op: 'global_avg_pool', inputs: ['a.out'], outputs: ['g.out'], attrs: {}, weights: {} },
    { name: 'f', op: 'flatten', inputs: ['g.out'], outputs: ['f.out'], attrs: { axis: 1 }, weights: {} },
  ];
  return { graph: { inputs: [{ name: 'x', shape: [-1, C, 9, 8] }], outputs: ['f.out'], nodes }, tensors, metadata: {} };
}

t.test('dwlr_conv2d on the host port = the Node runtime, and = the firmware\'s conv2d on the rebuilt kernels, float for float', async (t) => {
  const bin = buildPort(t, 'host');
  const ref = buildPort(t, 'host-ref');
  if (!bin || !ref) return;
  if (!getProfile('mcu')) registerProfile(mcuProfile);
  mkdirSync(TMP, { recursive: true });
  ATTRS.forEach((attrs, ai) => {
    for (const dtype of ['f32', 'f16', 'i8'] as const) {
      const m = graph(dtype, attrs);
      const file = resolve(TMP, `dwlr-${dtype}-${ai}.flm`);
      const bytes = writeFlm(m);
      writeFileSync(file, bytes);
      t.ok(readFlm(bytes).memoryPlan?.plans.some((p) => p.profile === 'mcu'), `${dtype} ${ai}: an mcu plan is stored`);
      const x = Float32Array.from({ length: C * 72 }, () => rnd() * 2);
      const want = reference(file, x, 1);
      const dev = runHost(bin, file, x, C, 'dwlr');
      const w = worst(dev, want);
      t.ok(w <= 1e-5, `${dtype} ${ai}: max scaled error against the runtime ${w.toExponential(2)} <= 1e-5`);
      const denseFile = resolve(TMP, `dwlr-dense-${dtype}-${ai}.flm`);
      writeFileSync(denseFile, writeFlm(graph('f32', attrs, m)));
      for (const [build, b] of [['host', bin], ['host-ref', ref]] as const) {
        const a = runHost(b, file, x, C, 'dwlr');
        const d = runHost(b, denseFile, x, C, 'dwlr');
        t.ok(a.every((v, i) => Object.is(v, d[i])), `${dtype} ${ai} ${build}: dwlr_conv2d = conv2d on the rebuilt kernels, float for float`);
      }
    }
  });
});

t.test('the firmware refuses a dwlr_conv2d whose group is not its channels, or whose factors do not meet', async (t) => {
  const bin = buildPort(t, 'host');
  if (!bin) return;
  mkdirSync(TMP, { recursive: true });
  const m = graph('f32', ATTRS[0]!);
  const tryRun = (model: Model, tag: string): string => {
    const file = resolve(TMP, `dwlr-bad-${tag}.flm`);
    writeFileSync(file, writeFlm(model, { memoryPlan: 'none' }));
    try {
      runHost(bin, file, new Float32Array(C * 72), C, 'dwlr');
      return 'ran';
    } catch (e) {
      return String(e);
    }
  };
  const nodes = m.graph.nodes.slice();
  nodes[0] = { ...nodes[0]!, attrs: { ...ATTRS[0]!, group: 1 } };
  t.match(tryRun({ ...m, graph: { ...m.graph, nodes } }, 'group'), /group must equal the channels/);
  const tensors = new Map(m.tensors);
  tensors.set('c.v', { name: 'c.v', dtype: 'f32', shape: [R + 1, 3, 3], data: new Float32Array((R + 1) * 9) });
  t.match(tryRun({ ...m, tensors }, 'rank'), /do not match/);
});
