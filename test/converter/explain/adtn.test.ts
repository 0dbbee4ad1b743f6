// ADTN gate significance against what it must be: W is linear in every gate, so a gate c * I reads
// |1 - 1/c| exactly, an identity gate 0, and any other gate the distance from W computed by an
// independent product of full 2^Q x 2^Q layer matrices; the grid places each gate at (layer, index).
import t from 'tap';
import type { GraphNode, Model, StoredTensor } from '../../../runtime/ir.js';
import { adtnLayout, adtnQubits } from '../../../runtime/layers/adtnDense.js';
import { explainAdtn } from '../../../converter/explain/adtn.js';
import { rng } from './helpers.js';

/** The state by brute force: full 2^Q matrices (kron of identities and the gate), applied in order. */
function bruteState(q: number, layers: number[][], start: Float32Array, gates: Float32Array): Float64Array {
  const N = 2 ** q;
  let s = new Float64Array(N);
  for (let k = 0; k < N; k++) {
    let v = 1;
    for (let j = 0; j < q; j++) v *= start[2 * j + ((k >> (q - 1 - j)) & 1)]!;
    s[k] = v;
  }
  let gi = 0;
  for (const layer of layers) {
    for (const p of layer) {
      const next = new Float64Array(N);
      for (let k = 0; k < N; k++) {
        const h = (k >> (q - p - 2)) & 3;
        for (let g = 0; g < 4; g++) {
          const k2 = (k & ~(3 << (q - p - 2))) | (g << (q - p - 2));
          next[k2] = next[k2]! + gates[gi * 16 + g * 4 + h]! * s[k]!;
        }
      }
      s = next;
      gi++;
    }
  }
  return s;
}

t.test('gate significance: c * I reads |1 - 1/c|, I reads 0, others match a brute-force rebuild', async (t) => {
  const r = rng(7);
  const out = 6, inF = 9, depth = 3;
  const l = adtnLayout(adtnQubits(out * inF), depth, 2, 'brickwall');
  const start = Float32Array.from({ length: 2 * l.q }, () => 0.5 + r());
  const gates = Float32Array.from({ length: 16 * l.gates }, (_, i) => (i % 5 === 0 ? 1 : 0) + 0.4 * (r() - 0.5));
  const setDiag = (g: number, c: number) => { for (let i = 0; i < 16; i++) gates[g * 16 + i] = i % 5 === 0 ? c : 0; };
  setDiag(1, 2.5); // |1 - 1/2.5| = 0.6
  setDiag(3, 1); // the identity: 0
  const tensors = new Map<string, StoredTensor>([
    ['a.start', { name: 'a.start', dtype: 'f32', shape: [l.q, 2], data: start }],
    ['a.gates', { name: 'a.gates', dtype: 'f32', shape: [l.gates, 4, 4], data: gates }],
  ]);
  const node: GraphNode = { name: 'a', op: 'adtn_dense', inputs: ['x'], outputs: ['y'], attrs: { features: [out, inF], depth, arity: 2, pairing: 'brickwall' }, weights: { start: 'a.start', gates: 'a.gates' } };
  const model: Model = { graph: { inputs: [{ name: 'x', shape: [-1, inF] }], outputs: ['y'], nodes: [node] }, tensors, metadata: {} };
  const calls: number[] = [];
  const [e] = explainAdtn(model, (d) => calls.push(d));
  t.equal(e!.gates.length, l.gates);
  t.same(calls, Array.from({ length: l.gates }, (_, i) => i + 1), 'progress after every gate');
  t.ok(Math.abs(e!.gates[1]!.significance - 0.6) < 1e-5, `2.5 I: ${e!.gates[1]!.significance}`);
  t.ok(e!.gates[3]!.significance < 1e-6, `I: ${e!.gates[3]!.significance}`);
  const w = bruteState(l.q, l.layers, start, gates).slice(0, out * inF);
  const n = Math.sqrt(w.reduce((a, v) => a + v * v, 0));
  let gi = 0;
  l.layers.forEach((layer, m) => {
    for (const p of layer) {
      const g2 = Float32Array.from(gates);
      for (let i = 0; i < 16; i++) g2[gi * 16 + i] = i % 5 === 0 ? 1 : 0;
      const wg = bruteState(l.q, l.layers, start, g2).slice(0, out * inF);
      const want = Math.sqrt(w.reduce((a, v, i) => a + (v - wg[i]!) ** 2, 0)) / n;
      const got = e!.gates[gi]!;
      t.ok(got.layer === m && got.index === p && Math.abs(got.significance - want) < 1e-4 * Math.max(1, want), `gate ${gi} (layer ${m}, index ${p}): ${got.significance} vs ${want}`);
      t.equal(e!.grid.values[m * e!.grid.cols + p], got.significance);
      gi++;
    }
  });
  t.equal(e!.grid.rows, depth);
  t.equal(e!.grid.cols, l.q - 1);
});
