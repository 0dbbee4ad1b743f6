// rcp, the reshaped CP: W^(0) [R, kh, kw] and W^(m) [R, T_m, S_m] share one rank R (Su, Huang et al.,
// "Tensorial Neural Networks"); runtime kinds rcp_dense and rcp_conv2d. Everything but the name is
// shared with the other reshaped methods in methods/reshapedNet.ts.
import { reshapedMethod } from './reshapedNet.js';

export const rcp = reshapedMethod('rcp');
