// rtt, the reshaped tensor train: a chain W^(1) .. W^(M), W^(0) [RM, kh, kw] at its end (Su, Huang et al.,
// "Tensorial Neural Networks"); runtime kinds rtt_dense and rtt_conv2d. Everything but the name is
// shared with the other reshaped methods in methods/reshapedNet.ts.
import { reshapedMethod } from './reshapedNet.js';

export const rtt = reshapedMethod('rtt');
