// --ratio out of reach: the parameters of layers no method factorises, here a grouped conv that is
// not depthwise (8 groups of 2 channels), set a floor under the model's size. The refusal names
// those layers with their parameters and says the largest ratio within reach; a ratio just under it
// is reached. A depthwise conv is no floor (dwlr takes it): the same net with one reaches 4x.
import t from 'tap';
import type { AttrValue, GraphNode, Model, OpName, StoredTensor } from '../../../runtime/ir.js';
import { compressModel, CompressError } from '../../../converter/compress.js';

let seed = 5;
function rnd(): number {
  seed = (seed * 1103515245 + 12345) >>> 0;
  return (seed / 2 ** 32) * 2 - 1;
}
function tensor(name: string, shape: number[]): StoredTensor {
  const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
  for (let i = 0; i < data.length; i++) data[i] = rnd() * 0.4;
  return { name, dtype: 'f32', shape, data };
}
function node(name: string, op: OpName, inputs: string[], attrs: Record<string, AttrValue> = {}, weights: Record<string, string> = {}): GraphNode {
  return { name, op, inputs, outputs: [`${name}.out`], attrs, weights };
}

/**
 * conv 1->16, grouped 3x3 (group 8: 804 parameters, 304 of them grouped) or depthwise 3x3 (group 16:
 * 660 parameters, 160 depthwise), pointwise 16->16, global pool, dense 16->4.
 */
function dsCnn(group = 8): Model {
  const m = new Map<string, StoredTensor>();
  for (const w of [tensor('c1.w', [16, 1, 3, 3]), tensor('c1.b', [16]), tensor('dw.w', [16, 16 / group, 3, 3]), tensor('dw.b', [16]), tensor('pw.w', [16, 16, 1, 1]), tensor('pw.b', [16]), tensor('d.w', [4, 16]), tensor('d.b', [4])]) m.set(w.name, w);
  const conv = (group: number, k: number) => ({ strides: [1, 1], pads: k === 3 ? [1, 1, 1, 1] : [0, 0, 0, 0], dilations: [1, 1], group });
  return {
    graph: {
      inputs: [{ name: 'x', shape: [-1, 1, 10, 10] }],
      outputs: ['d.out'],
      nodes: [
        node('c1', 'conv2d', ['x'], conv(1, 3), { weight: 'c1.w', bias: 'c1.b' }),
        node('r1', 'relu', ['c1.out']),
        node('dw', 'conv2d', ['r1.out'], conv(group, 3), { weight: 'dw.w', bias: 'dw.b' }),
        node('r2', 'relu', ['dw.out']),
        node('pw', 'conv2d', ['r2.out'], conv(1, 1), { weight: 'pw.w', bias: 'pw.b' }),
        node('r3', 'relu', ['pw.out']),
        node('g', 'global_avg_pool', ['r3.out']),
        node('f', 'flatten', ['g.out'], { axis: 1 }),
        node('d', 'dense', ['f.out'], {}, { weight: 'd.w', bias: 'd.b' }),
      ],
    },
    tensors: m,
    metadata: {},
  };
}

t.test('auto at a ratio under the grouped conv\'s floor: refused, naming the layer and the ratio within reach', async (t) => {
  let err: unknown;
  try {
    compressModel(dsCnn(), { method: 'auto', ratio: 4, check: false });
  } catch (e) {
    err = e;
  }
  t.ok(err instanceof CompressError && err.code === 'RANK_UNREACHABLE', 'RANK_UNREACHABLE');
  const msg = (err as Error).message;
  t.match(msg, /of the model's 804 parameters, 304 sit in layers no method factorises: dw \(grouped conv2d, 304\)/, msg);
  const reach = Number(/largest ratio within reach is about ([\d.]+)x/.exec(msg)?.[1]);
  t.ok(reach > 1 && reach < 4, `reach ${reach}`);
  t.notMatch(msg, /\n/, 'one line');
  // Just under the floor, the same method reaches it.
  const { report } = compressModel(dsCnn(), { method: 'auto', ratio: reach * 0.97, check: false });
  t.ok(report.ratio >= reach * 0.97 * 0.98, `ratio ${report.ratio.toFixed(2)} reached at --ratio ${(reach * 0.97).toFixed(2)}`);
});

t.test('a depthwise conv sets no floor: dwlr takes it and 4x is reached', async (t) => {
  const { model, report } = compressModel(dsCnn(16), { method: 'auto', ratio: 4, check: false });
  t.ok(report.ratio >= 4 * 0.98, `ratio ${report.ratio.toFixed(2)}`);
  t.equal(model.graph.nodes.find((n) => n.name === 'dw')?.op, 'dwlr_conv2d', 'the depthwise conv is dwlr_conv2d');
});
