// LeNet-5 compressed by SVD, Tucker, TT and TR: the ONNX export agrees with the runtime.
// (CP, the slowest to compress, runs in lenetCp.test.ts so that tap can run both files at once.)
import t from 'tap';
import { lenetAgreement } from './lenet.js';

for (const method of ['svd', 'tucker', 'tt', 'tr'] as const) {
  t.test(`lenet5 ${method}: export agrees with the runtime on Fashion-MNIST`, (t) => lenetAgreement(t, method));
}
