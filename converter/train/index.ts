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
export { dense } from './layers/dense.js';
// The trainable forms of the factor kinds live with their method (converter/methods/).
export { cpConv2d } from '../methods/cp.js';
export { svdConv2d, svdDense } from '../methods/svd.js';
export { trDense } from '../methods/tr.js';
export { ttDense } from '../methods/tt.js';
export { ttlDense } from '../methods/ttl.js';
export { tucker2Conv2d } from '../methods/tucker2.js';
