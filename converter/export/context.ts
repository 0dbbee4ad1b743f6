// What every op emitter gets, plus the helpers shared by the dense-shaped kinds.
import type { GraphNode, StoredTensor } from '../../runtime/ir.js';
import { tensorToFloat32 } from '../../runtime/format/dtype.js';
import type { OnnxGraphBuilder } from './builder.js';
import { ExportError } from './errors.js';

export interface ExportWeight {
  tensor: StoredTensor;
  /** Dequantised f32 values (f16/int8 tensors are widened here: ONNX gets f32 initializers). */
  data: Float32Array;
  shape: number[];
}

export interface EmitContext {
  b: OnnxGraphBuilder;
  opset: number;
  node: GraphNode;
  /** ONNX value names of the node's inputs (stored-tensor operands already initializers). */
  inputs: string[];
  /** Rank of each input, inferred from the graph inputs forward. */
  ranks: number[];
  /** The ONNX name the node's result must have. */
  output: string;
  weight(role: string): ExportWeight;
  optionalWeight(role: string): ExportWeight | undefined;
}

/** Emits a node's ONNX nodes and returns the rank of its output. */
export type Emitter = (ctx: EmitContext) => number;

export function fail(ctx: EmitContext, message: string): never {
  throw new ExportError('EXPORT_BAD_MODEL', `export: node ${ctx.node.name} (${ctx.node.op}): ${message}`);
}

export function unsupported(ctx: EmitContext, message: string): never {
  throw new ExportError('EXPORT_UNSUPPORTED', `export: node ${ctx.node.name} (${ctx.node.op}): ${message}`);
}

export function makeWeight(tensor: StoredTensor): ExportWeight {
  return { tensor, data: tensorToFloat32(tensor), shape: [...tensor.shape] };
}

/** The weight as an initializer in its stored shape (one initializer per stored tensor). */
export function initializer(ctx: EmitContext, w: ExportWeight): string {
  return ctx.b.float(w.tensor.name, w.shape, w.data, w.tensor.name);
}

/** The weight under another (equal-size) shape, e.g. a 2-D factor as a 1x1 conv kernel. */
export function reshapedInitializer(ctx: EmitContext, w: ExportWeight, dims: number[], tag: string): string {
  return ctx.b.float(`${w.tensor.name}:${tag}`, dims, w.data, `${w.tensor.name}\u0000${tag}`);
}

/** A 2-D weight [rows, cols] transposed to [cols, rows], as an initializer. */
export function transposedInitializer(ctx: EmitContext, w: ExportWeight): string {
  const [rows, cols] = w.shape as [number, number];
  const t = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) t[c * rows + r] = w.data[r * cols + c]!;
  return ctx.b.float(`${w.tensor.name}:T`, [cols, rows], t, `${w.tensor.name}\u0000T`);
}

export function expect2d(ctx: EmitContext, role: string, w: ExportWeight, rows: number, cols: number): void {
  const [r, c] = w.shape;
  if (w.shape.length !== 2 || (rows >= 0 && r !== rows) || (cols >= 0 && c !== cols)) {
    fail(ctx, `${role} has shape [${w.shape}], expected [${rows < 0 ? '?' : rows}, ${cols < 0 ? '?' : cols}]`);
  }
}

/**
 * y = x W^T (+ b) over the last axis, W [out, in]: Gemm(transB=1) on a 2-D input, MatMul with the
 * transposed weight (+ Add) on any other rank.
 */
export function linear(ctx: EmitContext, x: string, rank: number, w: ExportWeight, bias: ExportWeight | undefined, name: string, output?: string): string {
  if (rank === 2) {
    const ins = [x, initializer(ctx, w)];
    if (bias) ins.push(initializer(ctx, bias));
    return ctx.b.node('Gemm', ins, name, { transB: 1 }, output);
  }
  const y = ctx.b.node('MatMul', [x, transposedInitializer(ctx, w)], name, {}, bias ? undefined : output);
  return bias ? ctx.b.node('Add', [y, initializer(ctx, bias)], `${name}/bias`, {}, output) : y;
}

/**
 * For the chain kinds (tt, tr, ttl) that work on rows [N, in]: the input as rows, and a finisher
 * that reshapes the result to [..., out], gives it the input's leading axes back and adds the
 * bias. Rank 2 needs nothing more; other ranks take the leading axes from Shape at run time, so
 * any batch size (and any other free axis) works.
 */
export function asRows(ctx: EmitContext, x: string, rank: number, inF: number): {
  rows: string;
  finish: (y: string, out: number, bias: ExportWeight | undefined) => string;
} {
  const name = ctx.node.name;
  const rows = rank === 2 ? x : ctx.b.node('Reshape', [x, ctx.b.int64('shape', [-1, inF])], `${name}/rows`);
  return {
    rows,
    finish(y, out, bias) {
      let target: string;
      if (rank === 2) {
        target = ctx.b.int64('shape', [-1, out]);
      } else {
        const shape = ctx.b.node('Shape', [x], `${name}/shape`);
        const lead = ctx.b.node('Slice', [shape, ctx.b.int64('start', [0]), ctx.b.int64('end', [-1])], `${name}/lead`);
        target = ctx.b.node('Concat', [lead, ctx.b.int64('dim', [out])], `${name}/target`, { axis: 0 });
      }
      const shaped = ctx.b.node('Reshape', [y, target], `${name}/out`, {}, bias ? undefined : ctx.output);
      return bias ? ctx.b.node('Add', [shaped, initializer(ctx, bias)], `${name}/bias`, {}, ctx.output) : shaped;
    },
  };
}
