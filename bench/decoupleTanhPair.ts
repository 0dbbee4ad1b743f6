// Decoupling a small dense → tanh → dense pair (6 → 3 → 4) at degrees 3, 5, 7: fit time, fit errors,
// and the error on 2,000 fresh inputs of the polynomial alone and with the tangent extension
// outside the sampled range (the flexact layer's form). Errors against the pair's values, not
// centred. Run: npx tsx bench/decoupleTanhPair.ts (prints; the issue-13 bench comes later).
import { decoupleDenseAct } from '../converter/decompose/decouple/pair.js';
import { evaluateDecoupled } from '../converter/decompose/decouple/als.js';
import { denseActSamples } from '../converter/decompose/decouple/samples.js';
import { mulberry32, normalSource, randomNormal, relativeError } from '../converter/decompose/index.js';
const normal = normalSource(mulberry32(21));
const [inF, h, out] = [6, 3, 4];
const pair = { inputs: inF, hidden: h, outputs: out, activation: 'tanh' as const,
  w1: Float32Array.from(randomNormal(normal, h * inF, 1 / Math.sqrt(inF))), b1: Float32Array.from(randomNormal(normal, h, 0.3)),
  w2: Float32Array.from(randomNormal(normal, out * h, 1 / Math.sqrt(h))), b2: Float32Array.from(randomNormal(normal, out, 0.3)) };
const N = 300;
const u = randomNormal(normal, N * inF);
const x = randomNormal(normalSource(mulberry32(22)), 2000 * inF);
const s = denseActSamples(pair, x, 2000);
for (const D of [3, 5, 7]) {
  const t0 = performance.now();
  const fit = decoupleDenseAct(pair, u, N, 3, { degree: D, seed: 1 });
  const ms = performance.now() - t0;
  console.log(`D=${D} fit ${ms.toFixed(0)} ms, J err ${fit.jacobianError.toFixed(4)}, F err ${fit.valueError.toFixed(4)}, fresh (polynomial) ${relativeError(s.values, evaluateDecoupled(fit.fn, x, 2000, { extend: false })).toFixed(4)}, fresh (tangent) ${relativeError(s.values, evaluateDecoupled(fit.fn, x, 2000)).toFixed(4)}`);
}
