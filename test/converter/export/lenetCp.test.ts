// LeNet-5 compressed by CP (slow: CP-ALS with restarts): the ONNX export agrees with the runtime.
import t from 'tap';
import { lenetAgreement } from './lenet.js';

t.test('lenet5 cp: export agrees with the runtime on Fashion-MNIST', (t) => lenetAgreement(t, 'cp'));
