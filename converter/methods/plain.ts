// The layers kept dense (runtime kinds `dense` and `conv2d`): no decomposition, but the same two
// converter parts as a factor kind, the trainable form and the ONNX export, so that fine-tuning and
// export look every parametric kind up in one registry (methods/index.ts).
import { conv2d as conv2dOnnx } from '../export/convLayers.js';
import { dense as denseOnnx } from '../export/denseLayers.js';
import { conv2d as conv2dLayer } from '../train/layers/conv2d.js';
import { dense as denseLayer } from '../train/layers/dense.js';
import type { ConverterKind } from './method.js';

export const DENSE: ConverterKind = {
  op: 'dense',
  trainable: (c) => {
    const [out, inF] = c.shape('weight');
    c.need(c.shape('weight').length === 2, 'weight must be 2-D');
    return denseLayer(inF!, out!, c.init);
  },
  onnx: denseOnnx,
};

export const CONV2D: ConverterKind = {
  op: 'conv2d',
  trainable: (c) => {
    const ws = c.shape('weight');
    c.need(ws.length === 4, 'weight must be 4-D');
    const p = c.conv();
    return conv2dLayer(ws[1]! * p.group, ws[0]!, [ws[2]!, ws[3]!], p, c.init);
  },
  onnx: conv2dOnnx,
};

export const PLAIN_KINDS: readonly ConverterKind[] = [DENSE, CONV2D];
