// rtk, the reshaped Tucker: W^(0) [R0, kh, kw], W^(m) [R_m, T_m, S_m] and a core [R0..RM] (Su, Huang et al.,
// "Tensorial Neural Networks"); runtime kinds rtk_dense and rtk_conv2d. Everything but the name is
// shared with the other reshaped methods in methods/reshapedNet.ts.
import { reshapedMethod } from './reshapedNet.js';

export const rtk = reshapedMethod('rtk');
