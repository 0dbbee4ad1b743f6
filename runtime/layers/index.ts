// The layer kinds (registry.ts) and the contract they follow (kind.ts).
export { LAYER_KINDS } from './registry.js';
export { runLayer } from './runLayer.js';
export type { BoundRun, LayerContext, LayerKind, PreparedLayer, Weight, WeightShape } from './kind.js';
export { LayerError } from './kind.js';
