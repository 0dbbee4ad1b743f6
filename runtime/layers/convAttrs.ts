import { attrInts, attrNum, type GraphNode } from '../ir.js';
import type { Conv2dParams } from '../kernels/reference.js';
import { conv2dGeometry, convOutSize } from '../kernels/reference.js';
import type { KernelBackend } from '../kernels/backend.js';
import { checkOutput, firstInput, LayerError, needScratch, type PreparedLayer } from './kind.js';

/** Reads the conv attributes shared by every conv-shaped kind (ONNX defaults). */
export function convParams(node: GraphNode): Conv2dParams {
  const s = attrInts(node, 'strides', [1, 1]);
  const p = attrInts(node, 'pads', [0, 0, 0, 0]);
  const d = attrInts(node, 'dilations', [1, 1]);
  const group = attrNum(node, 'group', 1);
  if (s.length !== 2 || p.length !== 4 || d.length !== 2) throw new LayerError(node, 'conv attributes must be 2-D');
  if ([...s, ...d, group].some((v) => !Number.isInteger(v) || v < 1) || p.some((v) => !Number.isInteger(v) || v < 0)) {
    throw new LayerError(node, 'conv attributes out of range');
  }
  return {
    strides: [s[0]!, s[1]!],
    pads: [p[0]!, p[1]!, p[2]!, p[3]!],
    dilations: [d[0]!, d[1]!],
    group,
  };
}

export function checkNchw(node: GraphNode, shape: readonly number[], channels: number): void {
  if (shape.length !== 4 || shape[1] !== channels) {
    throw new LayerError(node, `input shape [${shape}] is not [N, ${channels}, H, W]`);
  }
}

/** Output shape and im2col scratch floats of one conv step; throws LayerError when the output is empty. */
export function convStep(node: GraphNode, xShape: readonly number[], wShape: readonly number[], p: Conv2dParams): { shape: number[]; cols: number } {
  const g = conv2dGeometry(xShape, wShape, p);
  if (!(g.shape[2]! >= 1 && g.shape[3]! >= 1)) throw new LayerError(node, `output would be empty for input [${xShape}]`);
  return g;
}

/** numel of a shape. */
export function size(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** Output height and width of a conv-shaped node for an H x W input and a kh x kw kernel (no checks). */
export function convGeometry(node: GraphNode, H: number, W: number, kh: number, kw: number) {
  const p = convParams(node);
  const OH = convOutSize(H, kh, p.strides[0], p.pads[0], p.pads[2], p.dilations[0]);
  const OW = convOutSize(W, kw, p.strides[1], p.pads[1], p.pads[3], p.dilations[1]);
  return { p, OH, OW };
}


/**
 * The bind step every layer that runs one conv2d kernel call on a formed kernel shares (dense conv,
 * dwlr_conv2d's rebuilt depthwise kernel, adtn_conv2d's expanded weight): checks the input's
 * channels and the output's shape, then runs the kernel into the output with the im2col scratch.
 */
export function convBind(node: GraphNode, kernels: KernelBackend, w: Float32Array, wShape: readonly number[],
  channels: number, bias: Float32Array | undefined, p: Conv2dParams): PreparedLayer['bind'] {
  return (inputs, output, scratch) => {
    const x = firstInput(node, inputs);
    checkNchw(node, x.shape, channels);
    const g = convStep(node, x.shape, wShape, p);
    checkOutput(node, output, g.shape);
    const cols = needScratch(node, scratch, g.cols);
    const xd = x.data;
    const xs = x.shape;
    const y = output.data;
    return () => kernels.conv2dInto(xd, xs, w, wShape, bias, p, y, cols);
  };
}
