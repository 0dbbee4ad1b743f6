// rtr, the reshaped tensor ring: the chain closed by R0 between W^(0) and W^(1) (Su, Huang et al.,
// "Tensorial Neural Networks"); runtime kinds rtr_dense and rtr_conv2d. Everything but the name is
// shared with the other reshaped methods in methods/reshapedNet.ts.
import { reshapedMethod } from './reshapedNet.js';

export const rtr = reshapedMethod('rtr');
