// Losses over logits [N, C]: softmax cross-entropy with integer labels (mean over the batch), and
// Hinton's distillation loss T^2 KL(softmax(t/T) || softmax(s/T)) averaged over the batch, the
// teacher logits being constants. Both keep the softmax for their backward.
import { gradOf, result, Var } from '../tensor.js';

function dims(logits: Var): [number, number] {
  if (logits.shape.length !== 2) throw new Error(`train: loss needs logits [N, C], got [${logits.shape}]`);
  return logits.shape as [number, number];
}

/** Row-wise softmax of logits / T into out (f64 accumulation); returns each row's log-sum-exp of logits / T. */
function softmaxRows(z: Float32Array, N: number, C: number, T: number, out: Float64Array): Float64Array {
  const lse = new Float64Array(N);
  for (let n = 0; n < N; n++) {
    const o = n * C;
    let m = -Infinity;
    for (let c = 0; c < C; c++) m = Math.max(m, z[o + c]! / T);
    let s = 0;
    for (let c = 0; c < C; c++) {
      const e = Math.exp(z[o + c]! / T - m);
      out[o + c] = e;
      s += e;
    }
    for (let c = 0; c < C; c++) out[o + c]! /= s;
    lse[n] = m + Math.log(s);
  }
  return lse;
}

export function softmaxCrossEntropy(logits: Var, labels: ArrayLike<number>): Var {
  const [N, C] = dims(logits);
  if (labels.length !== N) throw new Error(`train: ${labels.length} labels for ${N} rows`);
  const p = new Float64Array(N * C);
  const lse = softmaxRows(logits.data, N, C, 1, p);
  let loss = 0;
  for (let n = 0; n < N; n++) {
    const y = labels[n]!;
    if (!Number.isInteger(y) || y < 0 || y >= C) throw new Error(`train: label ${y} at row ${n} is not in [0, ${C})`);
    loss += lse[n]! - logits.data[n * C + y]!;
  }
  return result(Float32Array.of(loss / N), [], [logits], (g) => {
    const gl = gradOf(logits);
    if (!gl) return;
    const k = g[0]! / N;
    for (let n = 0; n < N; n++) {
      const o = n * C;
      for (let c = 0; c < C; c++) gl[o + c]! += k * (p[o + c]! - (c === labels[n] ? 1 : 0));
    }
  });
}

/** T^2 / N * sum_n KL(p_t || p_s) with p = softmax(logits / T); gradient T / N (p_s - p_t). */
export function klDistillation(student: Var, teacher: Var | Float32Array, temperature = 4): Var {
  const [N, C] = dims(student);
  const t = teacher instanceof Var ? teacher.data : teacher;
  if (t.length !== N * C) throw new Error(`train: teacher logits have ${t.length} values, student [${student.shape}]`);
  const T = temperature;
  const ps = new Float64Array(N * C);
  const pt = new Float64Array(N * C);
  const lseS = softmaxRows(student.data, N, C, T, ps);
  const lseT = softmaxRows(t, N, C, T, pt);
  let loss = 0;
  for (let n = 0; n < N; n++) {
    for (let c = 0; c < C; c++) {
      const i = n * C + c;
      const q = pt[i]!;
      if (q > 0) loss += q * ((t[i]! / T - lseT[n]!) - (student.data[i]! / T - lseS[n]!));
    }
  }
  return result(Float32Array.of((T * T * loss) / N), [], [student], (g) => {
    const gs = gradOf(student);
    if (!gs) return;
    const k = (g[0]! * T) / N;
    for (let i = 0; i < N * C; i++) gs[i]! += k * (ps[i]! - pt[i]!);
  });
}
