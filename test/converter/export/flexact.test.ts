// flexact exported as MatMul, Horner's Mul/Add per branch (B-splines: truncated cubes) and MatMul, run in onnxruntime against
// the factorlite runtime (harness.agree: batch 1 and 5, relative to the output scale).
import onnxProto from 'onnx-proto';
import t from 'tap';
import { agree, single, stored } from './harness.js';

const { onnx } = onnxProto;
const opTypes = (bytes: Uint8Array): string[] => onnx.ModelProto.decode(bytes).graph!.node!.map((n) => n.opType!);

t.test('flexact: Gemm, Horner, Gemm on rows', async (t) => {
  const w = { v: stored('v', [4, 10]), w: stored('w', [6, 4]), coeffs: stored('c', [4, 3]), bias: stored('b', [6]) };
  const bytes = await agree(t, single('flexact', [10], w, { basis: 'poly', degree: 3 }));
  t.same(opTypes(bytes), ['Gemm', 'Mul', 'Add', 'Mul', 'Add', 'Mul', 'Gemm']);
});

t.test('flexact: degree 1, no bias, a rank-3 input', async (t) => {
  await agree(t, single('flexact', [10], { v: stored('v', [2, 10]), w: stored('w', [3, 2]), coeffs: stored('c', [2, 1]) }, { degree: 1 }));
  const w = { v: stored('v', [5, 7]), w: stored('w', [4, 5]), coeffs: stored('c', [5, 6]), bias: stored('b', [4]) };
  await agree(t, single('flexact', [3, 7], w, { degree: 6 }));
});

t.test('flexact: f16 and int8 stored factors export as their dequantised values', async (t) => {
  const w = { v: stored('v', [4, 9], 'f16'), w: stored('w', [5, 4], 'i8'), coeffs: stored('c', [4, 2]), bias: stored('b', [5]) };
  await agree(t, single('flexact', [9], w, { degree: 2 }));
});

t.test('flexact with a range: Min/Max clamp, then the tangent beyond it', async (t) => {
  // Inputs in [-0.5, 0.5] put z mostly beyond these narrow ranges, on both sides.
  const range = { name: 'rg', dtype: 'f32' as const, shape: [3, 2], data: Float32Array.from([-0.05, 0.02, -0.01, 0.06, 0, 0]) };
  const w = { v: stored('v', [3, 8]), w: stored('w', [4, 3]), coeffs: stored('c', [3, 4]), bias: stored('b', [4]), range };
  const bytes = await agree(t, single('flexact', [8], w, { degree: 4 }));
  const ops = opTypes(bytes);
  t.same(ops.slice(0, 3), ['Gemm', 'Min', 'Max']);
  t.ok(ops.includes('Relu') && ops.includes('Sub'));
  await agree(t, single('flexact', [2, 8], w, { degree: 4 }));
});

t.test('flexact with B-spline branches: the clamp, the knots as truncated cubes, the tangent', async (t) => {
  // Ranges wide enough that most z fall inside (crossing several knots), one narrow and one empty.
  const range = { name: 'rg', dtype: 'f32' as const, shape: [4, 2], data: Float32Array.from([-0.6, 0.5, -0.9, 0.7, -0.02, 0.03, 0.1, 0.1]) };
  const w = { v: stored('v', [4, 8]), w: stored('w', [5, 4]), coeffs: stored('c', [4, 9]), bias: stored('b', [5]), range };
  const bytes = await agree(t, single('flexact', [8], w, { basis: 'bspline', degree: 9 }));
  const ops = opTypes(bytes);
  t.same(ops.slice(0, 3), ['Gemm', 'Min', 'Max']);
  t.equal(ops.filter((o) => o === 'Relu').length, 2 * (9 - 4) + 1, 'two Relus per interior knot (its side), one for the upper tangent');
  await agree(t, single('flexact', [3, 8], w, { basis: 'bspline', degree: 9 }));
  // K = 4: one cubic piece, no interior knot.
  const w4 = { ...w, coeffs: stored('c4', [4, 4]) };
  await agree(t, single('flexact', [8], w4, { basis: 'bspline', degree: 4 }));
});
