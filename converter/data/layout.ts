// Dataset images are [C, H, W]; a model imported from TFLite takes NHWC. This puts a batch of
// images in the layout of the model's first input.
import type { Tensor } from '../../runtime/ir.js';

/** True when `inputShape` ([-1, H, W, C]) is the NHWC form of the dataset's [C, H, W]. */
export function wantsNhwc(inputShape: readonly number[] | undefined, dsShape: readonly number[]): boolean {
  if (!inputShape || inputShape.length !== 4 || dsShape.length !== 3) return false;
  const [c, h, w] = dsShape as [number, number, number];
  const [, a, b, d] = inputShape as [number, number, number, number];
  const nchw = inputShape[1] === c && b === w && inputShape[2] === h;
  return !nchw && a === h && b === w && d === c;
}

/** `n` images [C, H, W] as the model's input tensor: NCHW, or NHWC when the model asks for it. */
export function imagesAsInput(inputShape: readonly number[] | undefined, dsShape: readonly number[], data: Float32Array, n: number): Tensor {
  if (!wantsNhwc(inputShape, dsShape)) return { shape: [n, ...dsShape], data };
  const [c, h, w] = dsShape as [number, number, number];
  if (c === 1) return { shape: [n, h, w, 1], data };
  const out = new Float32Array(n * c * h * w);
  for (let i = 0; i < n; i++) for (let ch = 0; ch < c; ch++) for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {
    out[((i * h + y) * w + x) * c + ch] = data[((i * c + ch) * h + y) * w + x]!;
  }
  return { shape: [n, h, w, c], data: out };
}
