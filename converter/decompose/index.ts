// Public surface of the decompositions: each turns a dense weight into the factors of one
// runtime/ir.ts layer kind, plus the spectra and counts that rank selection needs.

// Truncated SVD (svd_dense, svd_conv2d) and the matrix spectrum.
export { truncatedSvd, singularValues, reconstructSvd, type TruncatedSvdResult } from './svd.js';
// Tucker-2 over conv channels (tucker2_conv2d).
export { tucker2Conv, reconstructTucker2, type Tucker2Result } from './tucker2.js';
// General N-way Tucker (HOSVD + HOOI) behind Tucker-2 and TTL.
export { tucker, tuckerReconstruct, type TuckerOptions, type TuckerResult } from './tucker.js';
// CP of a conv kernel (the CP conv kind), and the N-way CP-ALS behind it.
export { cpConv, reconstructCp, type CpConvResult } from './cp.js';
export { cpAls, cpReconstruct, type CpOptions, type CpAlsResult } from './cpAls.js';
// Tucker tensor layer (ttl_dense).
export { tuckerTensorLayer, reconstructTtl, type TtlResult } from './ttl.js';
// TT-matrix (tt_dense) and tensor ring (tr_dense).
export { ttSvd, reconstructTt, type TtSvdOptions, type TtSvdResult } from './ttSvd.js';
export { tensorRing, reconstructTr, type TensorRingOptions, type TensorRingResult } from './tensorRing.js';
// Rank selection and parameter counts.
export { rankForEnergy, rankForTail, factorModes } from './rank.js';
export { paramsSvd, paramsTucker2, paramsCp, paramsTt, paramsTr, paramsTtl } from './params.js';
// Seeded PRNG, reused by tests and training initialisers for reproducible runs.
export { mulberry32, normalSource, randomNormal } from './prng.js';
// Error measure shared by reports.
export { relativeError } from './linalg.js';
// Reshaped tensorial decompositions of a kernel (rcp, rtk, rtt, rtr) and their layout.
export {
  chooseReshape, reshapeKernel, unreshapeKernel, reshapedDims, kernelShape,
  paramsRcp, paramsRtk, paramsRtt, paramsRtr, type ReshapedLayout,
} from './reshaped.js';
export {
  rcp, rtk, rtt, rtr, reconstructRcp, reconstructRtk, reconstructRtt, reconstructRtr,
  reshapedShapes, randomReshaped, type ReshapedMethod, type ReshapedResult, type ChainOptions, type RingOptions,
} from './tensorial.js';
