// The layers kept dense (runtime kinds `dense` and `conv2d`): no decomposition, but the same
// converter parts as a factor kind, the trainable form and the ONNX and TFLite export, so that
// fine-tuning and export look every parametric kind up in one registry (methods/index.ts).
import { conv2d as conv2dOnnx } from '../export/convLayers.js';
import { dense as denseOnnx } from '../export/denseLayers.js';
import { convGeom, unsupported } from '../export/tfliteExporter.js';
import { conv2d as conv2dLayer } from '../train/layers/conv2d.js';
import { dense as denseLayer } from '../train/layers/dense.js';
import type { ConverterKind, TfliteEmitter } from './method.js';

/** TFLite: FULLY_CONNECTED. */
const denseTflite: TfliteEmitter = (ex, node, input, out) => {
  const w = ex.weight(node, 'weight');
  const [o, i] = w.shape as [number, number];
  return ex.fullyConnected(input(0), w.data, o, i, ex.optionalWeight(node, 'bias')?.data, node.name, out.name, out.act, node);
};

/** TFLite: CONV_2D, or DEPTHWISE_CONV_2D when there are as many groups as channels. */
const conv2dTflite: TfliteEmitter = (ex, node, input, out) => {
  const x = input(0);
  const w = ex.weight(node, 'weight');
  const bias = ex.optionalWeight(node, 'bias')?.data;
  const group = typeof node.attrs.group === 'number' ? node.attrs.group : 1;
  const c = x.shape[1]!;
  if (group !== 1 && group !== c) unsupported(node, `grouped convolution with ${group} groups (only 1 or depthwise)`);
  return ex.conv(x, w.data, w.shape, bias, convGeom(node), group !== 1, node.name, out.name, out.act, node);
};

export const DENSE: ConverterKind = {
  op: 'dense',
  trainable: (c) => {
    const [out, inF] = c.shape('weight');
    c.need(c.shape('weight').length === 2, 'weight must be 2-D');
    return denseLayer(inF!, out!, c.init);
  },
  onnx: denseOnnx,
  tflite: denseTflite,
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
  tflite: conv2dTflite,
};

export const PLAIN_KINDS: readonly ConverterKind[] = [DENSE, CONV2D];
