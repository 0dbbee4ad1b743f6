// The training engine: reverse-mode autodiff over typed arrays, its ops, and trainable layers
// that compute exactly what the runtime's layer kinds compute from the same factors.
export * from './tensor.js';
export * from './ops/activation.js';
export * from './ops/batchNorm.js';
export * from './ops/contract.js';
export * from './ops/conv.js';
export * from './ops/dropout.js';
export * from './ops/elementwise.js';
export * from './ops/loss.js';
export * from './ops/matmul.js';
export * from './ops/pool.js';
export * from './ops/shape.js';
export * from './layers/layer.js';
export { conv2d as conv2dLayer, convAttrs } from './layers/conv2d.js';
export { cpConv2d } from './layers/cpConv2d.js';
export { dense } from './layers/dense.js';
export { svdDense } from './layers/svdDense.js';
export { trDense, ttDense } from './layers/ttDense.js';
export { ttlDense } from './layers/ttlDense.js';
export { tucker2Conv2d } from './layers/tucker2Conv2d.js';
