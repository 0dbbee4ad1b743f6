// The firmware's reshaped tensorial kernels (core/ops/reshaped.c: rcp / rtk / rtt / rtr, dense and
// conv2d) against the Node runtime, through the host port's direct mode, with f32, f16 and int8
// factors; and the stored mcu plan's scratch is what the firmware's prepare asks for (it refuses
// a plan whose scratch is short).
import t from 'tap';
import { mkdirSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { writeFlm } from '../../../converter/writer.js';
import { quantizeTensor } from '../../../runtime/format/dtype.js';
import { readFlm } from '../../../runtime/format/reader.js';
import type { GraphNode, Model, StoredTensor } from '../../../runtime/ir.js';
import { mcuProfile } from '../../../runtime/plan/mcu.js';
import { getProfile, registerProfile } from '../../../runtime/plan/profiles.js';
import { argmax, buildPort, reference, runHost, seededRandom, TMP } from './support.js';

const TOL = 1e-3;
const rnd = seededRandom(999);

type Method = 'rcp' | 'rtk' | 'rtt' | 'rtr';

/** Factor shapes from the layouts of issue 12. */
function factorShapes(method: Method, tm: number[], sm: number[], kh: number, kw: number, ranks: number[]): Record<string, number[]> {
  const M = tm.length;
  const out: Record<string, number[]> = {};
  for (let m = 1; m <= M; m++) {
    const mode = [tm[m - 1]!, sm[m - 1]!];
    out[`factor.${m}`] = method === 'rcp' ? [ranks[0]!, ...mode] : method === 'rtk' ? [ranks[m]!, ...mode]
      : method === 'rtt' ? (m === 1 ? [ranks[0]!, ...mode] : [ranks[m - 2]!, ranks[m - 1]!, ...mode]) : [ranks[m - 1]!, ranks[m]!, ...mode];
  }
  out['factor.0'] = method === 'rtr' ? [ranks[M]!, ranks[0]!, kh, kw] : [method === 'rtt' ? ranks[M - 1]! : ranks[0]!, kh, kw];
  if (method === 'rtk') out['core'] = ranks.slice();
  return out;
}

/** conv (reshaped) -> relu -> flatten -> dense (reshaped): input [1, 4, 7, 6], conv out [1, 6, 4, 5] -> 120 -> 10 */
function graph(method: Method, dtype: 'f32' | 'f16' | 'i8'): Model {
  const convRanks = { rcp: [5], rtk: [3, 2, 2], rtt: [3, 4], rtr: [2, 3, 2] }[method];
  const denseRanks = { rcp: [4], rtk: [1, 3, 3, 2], rtt: [2, 3, 1], rtr: [2, 2, 3, 2] }[method];
  const tensors = new Map<string, StoredTensor>();
  const add = (name: string, shape: number[]) => {
    const n = shape.reduce((a, b) => a * b, 1);
    const raw: StoredTensor = { name, dtype: 'f32', shape, data: Float32Array.from({ length: n }, () => rnd() * 0.6) };
    tensors.set(name, dtype === 'f32' || shape.length === 1 ? raw : quantizeTensor(raw, dtype, dtype === 'i8' && shape[0]! > 1 ? { perChannelAxis: 0 } : {}));
    return name;
  };
  const roles = (prefix: string, shapes: Record<string, number[]>) => Object.fromEntries(Object.entries(shapes).map(([r, s]) => [r, add(`${prefix}.${r}`, s)]));
  const c: GraphNode = {
    name: 'c', op: `${method}_conv2d` as GraphNode['op'], inputs: ['x'], outputs: ['c.out'],
    attrs: { strides: [2, 1], pads: [1, 0, 1, 1], dilations: [1, 2], group: 1, t_modes: [2, 3], s_modes: [2, 2] },
    weights: { ...roles('c', factorShapes(method, [2, 3], [2, 2], 3, 2, convRanks)), bias: add('c.bias', [6]) },
  };
  const d: GraphNode = {
    name: 'd', op: `${method}_dense` as GraphNode['op'], inputs: ['f.out'], outputs: ['d.out'],
    attrs: { t_modes: [1, 2, 5], s_modes: [4, 5, 6] },
    weights: { ...roles('d', factorShapes(method, [1, 2, 5], [4, 5, 6], 1, 1, denseRanks)), bias: add('d.bias', [10]) },
  };
  const nodes: GraphNode[] = [
    c,
    { name: 'a', op: 'relu', inputs: ['c.out'], outputs: ['a.out'], attrs: {}, weights: {} },
    { name: 'f', op: 'flatten', inputs: ['a.out'], outputs: ['f.out'], attrs: { axis: 1 }, weights: {} },
    d,
  ];
  return { graph: { inputs: [{ name: 'x', shape: [-1, 4, 7, 6] }], outputs: ['d.out'], nodes }, tensors, metadata: {} };
}

t.test('reshaped kinds on the host port = the Node runtime', async (t) => {
  const bin = buildPort(t, 'host');
  if (!bin) return;
  if (!getProfile('mcu')) registerProfile(mcuProfile);
  mkdirSync(TMP, { recursive: true });
  const n = 3;
  for (const method of ['rcp', 'rtk', 'rtt', 'rtr'] as const) {
    for (const dtype of ['f32', 'f16', 'i8'] as const) {
      const file = resolve(TMP, `reshaped-${method}-${dtype}.flm`);
      const bytes = writeFlm(graph(method, dtype));
      writeFileSync(file, bytes);
      t.ok(readFlm(bytes).memoryPlan?.plans.some((p) => p.profile === 'mcu'), `${method} ${dtype}: an mcu plan is stored`);
      const x = Float32Array.from({ length: n * 4 * 7 * 6 }, () => rnd() * 2);
      const ref = reference(file, x, n);
      const dev = runHost(bin, file, x, ref.length, 'rtn');
      let worst = 0;
      for (let i = 0; i < ref.length; i++) worst = Math.max(worst, Math.abs(dev[i]! - ref[i]!) / Math.max(1, Math.abs(ref[i]!)));
      t.ok(worst <= TOL, `${method} ${dtype}: max scaled error ${worst.toExponential(2)} <= ${TOL}`);
      let agree = 0;
      for (let s = 0; s < n; s++) if (argmax(dev, s * 10, 10) === argmax(ref, s * 10, 10)) agree++;
      t.equal(agree, n, `${method} ${dtype}: top-1 identical`);
    }
  }
});

t.test('the firmware refuses malformed reshaped factors at prepare', async (t) => {
  const bin = buildPort(t, 'host');
  if (!bin) return;
  mkdirSync(TMP, { recursive: true });
  const m = graph('rtt', 'f32');
  const d = m.graph.nodes[3]!;
  // a chain whose middle factor's ranks do not meet: the Node runtime refuses it too
  const bad = { ...m.tensors.get(d.weights['factor.2']!)!, shape: [3, 3, 2, 5] };
  bad.data = new Float32Array(90);
  const tensors = new Map(m.tensors);
  tensors.set(bad.name, bad);
  const file = resolve(TMP, 'reshaped-bad.flm');
  writeFileSync(file, writeFlm({ ...m, tensors }, { memoryPlan: 'none' }));
  const r = (() => {
    try {
      runHost(bin, file, new Float32Array(4 * 7 * 6), 10, 'rtn');
      return 'ran';
    } catch (e) {
      return String(e);
    }
  })();
  t.match(r, /MODEL_INVALID|does not match|chain/, `refused: ${r.split('\n')[0]}`);
});
