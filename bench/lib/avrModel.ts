// A small factorised model for 28x28 images that fits the ATmega2560's 8 KB (FC-2 does not:
// firmware-bridge/firmware/ports/avr/README.md), for the AVR tests: avr.test.ts, and any HIL test
// that needs a model for --emulate avr (write smallModel() to a file).
import { writeFlm } from '../../converter/writer.js';
import type { Model, StoredTensor } from '../../runtime/ir.js';
import { mcuProfile } from '../../runtime/plan/mcu.js';
import { allProfiles, registerProfile } from '../../runtime/plan/profiles.js';

/** Deterministic numbers in [0, 1). */
export function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

/**
 * A small factorised MLP for 28x28 images, shaped as converted ONNX models are (input [1,1,28,28],
 * Flatten first), 784 -> 64 -> 10: the hidden layer a rank-8 svd_dense, the output layer dense,
 * int8 weights with per-row scales, f32 biases; written with the "mcu" plan, where the Flatten of
 * the input is external too, so the svd_dense reads the u8 pixels in place in the AVR's 900-byte
 * frame buffer.
 */
export function smallModel(): Uint8Array {
  if (!allProfiles().some((p) => p.name === 'mcu')) registerProfile(mcuProfile);
  const rnd = lcg(12345);
  const i8 = (name: string, shape: number[], scale: number): StoredTensor => ({
    name, dtype: 'i8', shape,
    data: Int8Array.from({ length: shape[0]! * shape[1]! }, () => Math.round((rnd() * 2 - 1) * 127)),
    quant: { scale: Float32Array.from({ length: shape[0]! }, () => scale * (0.5 + rnd())), axis: 0 },
  });
  const f32 = (name: string, n: number, a: number): StoredTensor =>
    ({ name, dtype: 'f32', shape: [n], data: Float32Array.from({ length: n }, () => (rnd() * 2 - 1) * a) });
  const tensors = [i8('fc1.u', [64, 8], 0.02), i8('fc1.v', [8, 784], 0.0005), f32('fc1.bias', 64, 0.1),
    i8('fc2.weight', [10, 64], 0.01), f32('fc2.bias', 10, 0.1)];
  const model: Model = {
    graph: {
      inputs: [{ name: 'x', shape: [1, 1, 28, 28] }],
      outputs: ['logits'],
      nodes: [
        { name: 'flatten', op: 'flatten', inputs: ['x'], outputs: ['xf'], attrs: { axis: 1 }, weights: {} },
        { name: 'fc1', op: 'svd_dense', inputs: ['xf'], outputs: ['h'], attrs: {}, weights: { u: 'fc1.u', v: 'fc1.v', bias: 'fc1.bias' } },
        { name: 'relu', op: 'relu', inputs: ['h'], outputs: ['hr'], attrs: {}, weights: {} },
        { name: 'fc2', op: 'dense', inputs: ['hr'], outputs: ['logits'], attrs: {}, weights: { weight: 'fc2.weight', bias: 'fc2.bias' } },
      ],
    },
    tensors: new Map(tensors.map((t) => [t.name, t])),
    metadata: { 'source.model': 'avr-test-mlp', 'convert.method': 'svd' },
  };
  return writeFlm(model);
}
