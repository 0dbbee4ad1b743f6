// resize: ONNX Resize (and Upsample) in nearest and linear modes over the last two axes.
// Each output coordinate maps back to the input by the ONNX coordinate transform for its axis.
import { type GraphNode } from '../ir.js';
import { MAX_RANK } from '../format/layout.js';
import { checkOutput, firstInput, LayerError, type LayerKind } from './kind.js';

function attrFloats(node: GraphNode, key: string): number[] {
  const v = node.attrs[key];
  if (!Array.isArray(v)) throw new LayerError(node, `attribute ${key} must be a list`);
  return v;
}

function attrStr(node: GraphNode, key: string, fallback: string): string {
  const v = node.attrs[key];
  return typeof v === 'string' ? v : fallback;
}

export function resizeShape(node: GraphNode, x: readonly number[]): number[] {
  const scales = attrFloats(node, 'scales');
  if (scales.length !== x.length) throw new LayerError(node, `scales [${scales}] do not fit [${x}]`);
  if (scales.slice(0, Math.max(0, x.length - 2)).some((s) => s !== 1)) throw new LayerError(node, 'only the last two axes may be resized');
  const out = x.map((d, a) => Math.floor(d * scales[a]! + 1e-6));
  if (out.some((d) => d < 1)) throw new LayerError(node, `output [${out}] is empty`);
  return out;
}

/** The input coordinate of output position `o` (ONNX coordinate_transformation_mode). */
export function sourceCoord(coord: string, o: number, scale: number, inLen: number, outLen: number): number {
  switch (coord) {
    case 'half_pixel': return (o + 0.5) / scale - 0.5;
    case 'pytorch_half_pixel': return outLen > 1 ? (o + 0.5) / scale - 0.5 : 0;
    case 'align_corners': return outLen === 1 ? 0 : (o * (inLen - 1)) / (outLen - 1);
    case 'asymmetric': return o / scale;
    case 'tf_half_pixel_for_nn': return (o + 0.5) / scale;
    default: throw new Error(`coordinate_transformation_mode ${coord} is not supported`);
  }
}

function nearestIndex(mode: string, c: number, inLen: number): number {
  let i: number;
  switch (mode) {
    case 'floor': i = Math.floor(c); break;
    case 'ceil': i = Math.ceil(c); break;
    case 'round_prefer_ceil': i = Math.floor(c + 0.5); break;
    default: i = c === Math.floor(c) + 0.5 ? Math.floor(c) : Math.round(c); break; // round_prefer_floor
  }
  return Math.min(Math.max(i, 0), inLen - 1);
}

/** Per-axis taps: two source indices and their weights for every output position. */
interface Taps { i0: Int32Array; i1: Int32Array; w1: Float32Array }

function axisTaps(mode: string, coord: string, nearest: string, scale: number, inLen: number, outLen: number): Taps {
  const t: Taps = { i0: new Int32Array(outLen), i1: new Int32Array(outLen), w1: new Float32Array(outLen) };
  for (let o = 0; o < outLen; o++) {
    const c = sourceCoord(coord, o, scale, inLen, outLen);
    if (mode === 'nearest') {
      const i = nearestIndex(nearest, c, inLen);
      t.i0[o] = i;
      t.i1[o] = i;
      continue;
    }
    const cc = Math.min(Math.max(c, 0), inLen - 1);
    const i0 = Math.floor(cc);
    t.i0[o] = i0;
    t.i1[o] = Math.min(i0 + 1, inLen - 1);
    t.w1[o] = cc - i0;
  }
  return t;
}

export const resize: LayerKind = {
  ops: ['resize'],
  mcu: {},
  attrs: {
    scales: { type: 'numbers', len: [1, MAX_RANK], above: 0, required: true },
    mode: { type: 'string', oneOf: ['nearest', 'linear'] },
    coord: { type: 'string', oneOf: ['half_pixel', 'pytorch_half_pixel', 'align_corners', 'asymmetric', 'tf_half_pixel_for_nn'] },
    nearest: { type: 'string', oneOf: ['round_prefer_floor', 'round_prefer_ceil', 'floor', 'ceil'] },
  },
  outputShape: (node, ins) => resizeShape(node, ins[0]!),
  prepare(node) {
    const mode = attrStr(node, 'mode', 'nearest');
    const coord = attrStr(node, 'coord', 'half_pixel');
    const nearest = attrStr(node, 'nearest', 'round_prefer_floor');
    if (mode !== 'nearest' && mode !== 'linear') throw new LayerError(node, `mode ${mode} is not nearest or linear`);
    try {
      sourceCoord(coord, 0, 1, 1, 1);
    } catch (e) {
      throw new LayerError(node, (e as Error).message);
    }
    return {
      bind(inputs, output) {
        const x = firstInput(node, inputs);
        if (x.shape.length < 1) throw new LayerError(node, 'input is a scalar');
        const shape = resizeShape(node, x.shape);
        checkOutput(node, output, shape);
        const scales = attrFloats(node, 'scales');
        const r = x.shape.length;
        const H = r >= 2 ? x.shape[r - 2]! : 1;
        const W = x.shape[r - 1]!;
        const OH = r >= 2 ? shape[r - 2]! : 1;
        const OW = shape[r - 1]!;
        const planes = x.data.length / (H * W);
        const th = axisTaps(mode, coord, nearest, r >= 2 ? scales[r - 2]! : 1, H, OH);
        const tw = axisTaps(mode, coord, nearest, scales[r - 1]!, W, OW);
        const xd = x.data;
        const y = output.data;
        return () => {
          let k = 0;
          for (let p = 0; p < planes; p++) {
            const base = p * H * W;
            for (let oy = 0; oy < OH; oy++) {
              const r0 = base + th.i0[oy]! * W;
              const r1 = base + th.i1[oy]! * W;
              const wy = th.w1[oy]!;
              for (let ox = 0; ox < OW; ox++) {
                const c0 = tw.i0[ox]!;
                const c1 = tw.i1[ox]!;
                const wx = tw.w1[ox]!;
                const top = xd[r0 + c0]! * (1 - wx) + xd[r0 + c1]! * wx;
                const bottom = xd[r1 + c0]! * (1 - wx) + xd[r1 + c1]! * wx;
                y[k++] = top * (1 - wy) + bottom * wy;
              }
            }
          }
        };
      },
    };
  },
};
