// Fine-tuning a compressed model by distillation from its dense original (the teacher), which runs
// in our runtime. Two phases, the recipe of the tensorial-networks paper after its decomposition:
//  1. optional, block by block: every factor-kind node learns to reproduce the teacher's output of
//     the same node (the dense model's activation there) from the teacher's input to it, by
//     relative MSE. The blocks are independent given the teacher's activations, so they train
//     side by side on the same batches, each with its own loss (summed).
//  2. end to end: loss = alpha T^2 KL(p_teacher,T || p_student,T) + (1 - alpha) CE(labels), Adam
//     with a cosine schedule, seeded batches; the teacher's logits over the training set are
//     computed once up front (batch by batch under a time bound, maxSeconds). The test split runs in
//     the runtime after every epoch.
import type { Dataset } from '../data/datasets.js';
import { argmaxRows, evaluate } from '../evaluate.js';
import type { Model } from '../../runtime/ir.js';
import { Session } from '../../runtime/session.js';
import { fromModel, type TrainableModel } from './fromModel.js';
import { BatchLoader } from './loader.js';
import { add, mul, scale, sub, sum } from './ops/elementwise.js';
import { klDistillation, softmaxCrossEntropy } from './ops/loss.js';
import { Optimizer, scheduledLr } from './optim.js';
import { backward, constant, noGrad, type Var } from './tensor.js';

export interface FinetuneOptions {
  /** End-to-end epochs over the training set (default 1; 0 runs only the block-wise phase). */
  epochs?: number;
  batch?: number;
  /** Adam base learning rate of the end-to-end phase (default 1e-3), cosine-scheduled to 0. */
  lr?: number;
  weightDecay?: number;
  /** Distillation temperature T (default 4). */
  temperature?: number;
  /** Weight of the distillation term; 1 - alpha weighs the label cross-entropy (default 0.7). */
  alpha?: number;
  /** Run the block-wise phase first (default false). */
  blockwise?: boolean;
  /** Steps of the block-wise phase (default 300). */
  blockSteps?: number;
  /** Adam learning rate of the block-wise phase (default 1e-3), cosine-scheduled. */
  blockLr?: number;
  /** Seed of the batch order (default 0). */
  seed?: number;
  /**
   * Wall-clock bound of the end-to-end phase in seconds (teacher included): from the measured
   * time per step, the number of steps is cut to what fits, and the cosine schedule is stretched
   * over that number (re-estimated as it goes), so that a cut run still ends at learning rate 0.
   * The teacher's logits are then computed batch by batch, for the batches trained on only.
   */
  maxSeconds?: number;
  evalBatch?: number;
  /** Measure the student before fine-tuning and the teacher on the test split (default true). */
  evaluateBefore?: boolean;
  /**
   * Held-out samples (not trained on, not the test split): the student is measured on them before
   * training and after every epoch, and the best of those checkpoints is returned.
   */
  validation?: Dataset;
  onProgress?: (p: FinetuneProgress) => void;
  onEpoch?: (r: FinetuneEpoch) => void;
  log?: (msg: string) => void;
}

export const FINETUNE_DEFAULTS = {
  epochs: 1, batch: 64, lr: 1e-3, temperature: 4, alpha: 0.7, blockSteps: 300, blockLr: 1e-3, seed: 0,
} as const;

export interface FinetuneProgress {
  phase: 'blockwise' | 'finetune';
  /** 0-based epoch (always 0 in the block-wise phase) and step within it. */
  epoch: number;
  epochs: number;
  step: number;
  steps: number;
  /** Running mean loss (block-wise: summed relative MSE of the blocks). */
  loss: number;
  /** Running training accuracy (end-to-end phase). */
  accuracy?: number;
  lr: number;
}

export interface FinetuneEpoch {
  /** 1-based. */
  epoch: number;
  loss: number;
  trainAccuracy: number;
  testAccuracy?: number;
  testSamples?: number;
  /** Accuracy on the validation samples (with FinetuneOptions.validation). */
  validationAccuracy?: number;
  images: number;
  seconds: number;
}

export interface BlockReport {
  node: string;
  op: string;
  /** ||student block(x_t) - teacher block(x_t)||^2 / ||teacher block(x_t)||^2 on a fixed batch. */
  relErrorBefore: number;
  relErrorAfter: number;
}

export interface Accuracy {
  accuracy: number;
  samples: number;
}

export interface FinetuneResult {
  /** The fine-tuned model: the student's graph, every trained tensor f32. */
  model: Model;
  /** Student as given (its own dtypes), fine-tuned student, teacher; on the test split. */
  before?: Accuracy;
  /** After the block-wise phase, before end-to-end training (with blockwise and a test split). */
  afterBlockwise?: Accuracy;
  after?: Accuracy;
  teacher?: Accuracy;
  history: FinetuneEpoch[];
  blocks: BlockReport[];
  params: number;
  /** With a validation set: the checkpoint returned (0 = the student before end-to-end training) and its accuracy there. */
  best?: { epoch: number; validationAccuracy: number; validationSamples: number };
  seconds: number;
  blockSeconds: number;
  teacherSeconds: number;
  /** End-to-end steps run, and the steps of the epochs asked for (fewer run: cut by maxSeconds). */
  steps: number;
  plannedSteps: number;
}

function check(cond: boolean, msg: string): void {
  if (!cond) throw new Error(`finetune: ${msg}`);
}

function accuracyOf(model: Model, ds: Dataset, batch: number): Accuracy {
  const r = evaluate(Session.create(model, { retainWeights: false }), ds, { batch });
  return { accuracy: r.accuracy, samples: r.samples };
}

/** Teacher logits of every sample of `ds`, in dataset order. */
export function teacherLogits(teacher: Session, ds: Dataset, batch = 250): { logits: Float32Array; classes: number } {
  const per = ds.shape.reduce((a, b) => a * b, 1);
  let out: Float32Array | undefined;
  let classes = 0;
  for (let start = 0; start < ds.count; start += batch) {
    const n = Math.min(batch, ds.count - start);
    const y = teacher.runBatch({ shape: [n, ...ds.shape], data: ds.images.subarray(start * per, (start + n) * per) });
    if (!out) {
      classes = y.data.length / n;
      out = new Float32Array(ds.count * classes);
    }
    out.set(y.data, start * classes);
  }
  return { logits: out ?? new Float32Array(0), classes };
}

/** sum((y - t)^2) / sum(t^2), t a constant. */
function relMse(y: Var, t: Float32Array): Var {
  let den = 0;
  for (let i = 0; i < t.length; i++) den += t[i]! * t[i]!;
  const d = sub(y, constant(t, y.shape));
  return scale(sum(mul(d, d)), 1 / Math.max(den, 1e-12));
}

interface Block {
  index: number;
  input: string;
  output: string;
}

function blockwisePhase(
  tm: TrainableModel, teacher: Session, trainSet: Dataset, o: Required<Pick<FinetuneOptions, 'batch' | 'blockSteps' | 'blockLr' | 'seed'>> & FinetuneOptions,
): BlockReport[] {
  const log = o.log ?? (() => {});
  const blocks: Block[] = [];
  // Which teacher values exist: names of the dense graph's values (import keeps node output names).
  const per = trainSet.shape.reduce((a, b) => a * b, 1);
  const probeN = Math.min(trainSet.count, 256);
  const probe = { shape: [probeN, ...trainSet.shape], data: trainSet.images.subarray(0, probeN * per) };
  const probeValues = teacher.run({ [teacher.inputNames[0]!]: probe }, true);
  tm.nodes.forEach((n, index) => {
    if (!n.factor) return;
    const ins = tm.activationInputs(n);
    const input = ins[0]!;
    const output = n.node.outputs[0]!;
    if (ins.length !== 1 || !probeValues[input] || !probeValues[output]) {
      log(`finetune: block ${n.node.name} has no matching teacher activations (${input} -> ${output}); left to the end-to-end phase`);
      return;
    }
    const want = probeValues[output]!.shape;
    const got = noGrad(() => n.apply([constant(probeValues[input]!.data, probeValues[input]!.shape)])).shape;
    if (want.length !== got.length || want.some((d, i) => d !== got[i])) {
      log(`finetune: block ${n.node.name} output [${got}] differs from the teacher's [${want}]; skipped`);
      return;
    }
    blocks.push({ index, input, output });
  });
  const measure = (): number[] => blocks.map((b) => noGrad(() => {
    const n = tm.nodes[b.index]!;
    const x = probeValues[b.input]!;
    return relMse(n.apply([constant(x.data, x.shape)]), probeValues[b.output]!.data).data[0]!;
  }));
  const before = measure();
  if (blocks.length === 0 || o.blockSteps <= 0) {
    return blocks.map((b, i) => ({ node: tm.nodes[b.index]!.node.name, op: tm.nodes[b.index]!.node.op, relErrorBefore: before[i]!, relErrorAfter: before[i]! }));
  }
  const params: Record<string, Var> = {};
  for (const b of blocks) Object.assign(params, tm.nodes[b.index]!.params);
  const opt = new Optimizer(params, { kind: 'adam', lr: o.blockLr });
  const loader = new BatchLoader(trainSet, { batch: o.batch, seed: o.seed ^ 0x5bd1e995 });
  let step = 0;
  let lossSum = 0;
  for (let epoch = 0; step < o.blockSteps; epoch++) {
    for (const b of loader.epoch(epoch)) {
      if (step >= o.blockSteps) break;
      const lr = scheduledLr({ kind: 'cosine' }, o.blockLr, step, o.blockSteps);
      const values = teacher.run({ [teacher.inputNames[0]!]: { shape: b.shape, data: b.images } }, true);
      opt.zeroGrad();
      let loss: Var | undefined;
      for (const blk of blocks) {
        const x = values[blk.input]!;
        const l = relMse(tm.nodes[blk.index]!.apply([constant(x.data, x.shape)]), values[blk.output]!.data);
        loss = loss ? add(loss, l) : l;
      }
      const lv = loss!.data[0]!;
      if (!Number.isFinite(lv)) throw new Error(`finetune: block-wise loss is ${lv} at step ${step + 1} (learning rate ${lr} too high?)`);
      backward(loss!);
      opt.step(lr);
      lossSum += lv;
      step++;
      o.onProgress?.({ phase: 'blockwise', epoch: 0, epochs: 1, step: step - 1, steps: o.blockSteps, loss: lossSum / step, lr });
    }
  }
  const after = measure();
  return blocks.map((b, i) => ({
    node: tm.nodes[b.index]!.node.name, op: tm.nodes[b.index]!.node.op, relErrorBefore: before[i]!, relErrorAfter: after[i]!,
  }));
}

/**
 * Fine-tunes `student` (any runtime model, typically a compressed .flm) against `teacher` (the
 * dense model it came from, same input and output) on `trainSet`; reports on `testSet`.
 */
export function finetune(student: Model, teacher: Model, trainSet: Dataset, testSet: Dataset | undefined, opts: FinetuneOptions = {}): FinetuneResult {
  const o = { ...FINETUNE_DEFAULTS, ...opts };
  check(Number.isInteger(o.epochs) && o.epochs >= 0, `epochs ${o.epochs} must be an integer >= 0`);
  check(Number.isInteger(o.batch) && o.batch >= 1, `batch ${o.batch} must be a positive integer`);
  check(o.lr > 0 && Number.isFinite(o.lr), `learning rate ${o.lr} must be a positive number`);
  check(o.temperature > 0 && Number.isFinite(o.temperature), `temperature ${o.temperature} must be a positive number`);
  check(o.alpha >= 0 && o.alpha <= 1, `alpha ${o.alpha} must be in [0, 1]`);
  check(Number.isInteger(o.blockSteps) && o.blockSteps >= 0, `block steps ${o.blockSteps} must be an integer >= 0`);
  check(trainSet.count >= 1, 'the training set is empty');
  check(o.maxSeconds === undefined || o.maxSeconds > 0, `max seconds ${o.maxSeconds} must be a positive number`);
  const log = o.log ?? (() => {});
  const evalBatch = o.evalBatch ?? 250;
  const t0 = performance.now();

  const tm = fromModel(student);
  const teacherSession = Session.create(teacher, { retainWeights: false });
  check(tm.inputNames.length === 1 && tm.outputNames.length === 1, 'the student must have one input and one output');
  check(teacherSession.inputNames.length === 1 && teacherSession.outputNames.length === 1, 'the teacher must have one input and one output');

  const evalBefore = o.evaluateBefore ?? true;
  let before: Accuracy | undefined;
  let teacherAcc: Accuracy | undefined;
  if (testSet && evalBefore) {
    before = accuracyOf(student, testSet, evalBatch);
    teacherAcc = accuracyOf(teacher, testSet, evalBatch);
    log(`finetune: before ${(100 * before.accuracy).toFixed(2)}%, teacher ${(100 * teacherAcc.accuracy).toFixed(2)}% on ${before.samples} test images`);
  }

  let blocks: BlockReport[] = [];
  const tb = performance.now();
  if (o.blockwise) {
    blocks = blockwisePhase(tm, teacherSession, trainSet, o);
    for (const b of blocks) log(`finetune: block ${b.node} (${b.op}) relative error ${b.relErrorBefore.toFixed(4)} -> ${b.relErrorAfter.toFixed(4)}`);
  }
  const blockSeconds = (performance.now() - tb) / 1000;
  // The three-phase recipe reports the accuracy of each phase: here, after the block-wise one.
  let afterBlockwise: Accuracy | undefined;
  if (o.blockwise && testSet && evalBefore) {
    afterBlockwise = o.epochs > 0 ? accuracyOf(tm.toModel(), testSet, evalBatch) : undefined;
    if (afterBlockwise) log(`finetune: after the block-wise phase ${(100 * afterBlockwise.accuracy).toFixed(2)}% on ${afterBlockwise.samples} test images`);
  }

  const history: FinetuneEpoch[] = [];
  let teacherSeconds = 0;
  // The best checkpoint by validation accuracy; epoch 0 is the student after the block-wise phase.
  let best: { epoch: number; acc: number; model: Model } | undefined;
  if (o.validation && o.epochs > 0) {
    const m = tm.toModel();
    best = { epoch: 0, acc: accuracyOf(m, o.validation, evalBatch).accuracy, model: m };
  }
  let step = 0;
  let total = 0;
  const planned = o.epochs * Math.ceil(trainSet.count / o.batch);
  if (o.epochs > 0) {
    const tt = performance.now();
    // Every teacher logit up front, unless a time bound may leave most batches untrained.
    const upFront = o.maxSeconds === undefined ? teacherLogits(teacherSession, trainSet, evalBatch) : undefined;
    teacherSeconds = (performance.now() - tt) / 1000;
    const params = tm.params;
    const opt = new Optimizer(params, { kind: 'adam', lr: o.lr, ...(o.weightDecay !== undefined ? { weightDecay: o.weightDecay } : {}) });
    const loader = new BatchLoader(trainSet, { batch: o.batch, seed: o.seed });
    const batches = loader.batchesPerEpoch;
    total = o.epochs * batches;
    const pred = new Uint8Array(o.batch);
    const tLoop = performance.now();
    let classes = upFront?.classes ?? 0;
    for (let e = 0; e < o.epochs && step < total; e++) {
      const te = performance.now();
      const order = loader.order(e);
      let lossSum = 0, correct = 0, seen = 0;
      for (const b of loader.epoch(e)) {
        if (step >= total) break;
        const lr = scheduledLr({ kind: 'cosine' }, o.lr, step, total);
        // The teacher's logits of this batch, in the loader's order.
        let tl: Float32Array;
        if (upFront) {
          tl = new Float32Array(b.n * classes);
          for (let i = 0; i < b.n; i++) {
            const k = order[b.index * o.batch + i]!;
            tl.set(upFront.logits.subarray(k * classes, (k + 1) * classes), i * classes);
          }
        } else {
          const tb0 = performance.now();
          tl = teacherSession.runBatch({ shape: b.shape, data: b.images }).data.slice();
          classes = tl.length / b.n;
          teacherSeconds += (performance.now() - tb0) / 1000;
        }
        opt.zeroGrad();
        const logits = tm.forward(constant(b.images, b.shape));
        check(logits.size === b.n * classes, `student logits [${logits.shape}] do not match the teacher's ${classes} classes`);
        const rows = logits.shape.length === 2 ? logits : constant(logits.data, [b.n, classes]);
        let loss: Var;
        if (o.alpha >= 1) loss = klDistillation(rows, tl, o.temperature);
        else if (o.alpha <= 0) loss = softmaxCrossEntropy(rows, b.labels);
        else loss = add(scale(klDistillation(rows, tl, o.temperature), o.alpha), scale(softmaxCrossEntropy(rows, b.labels), 1 - o.alpha));
        const lv = loss.data[0]!;
        if (!Number.isFinite(lv)) throw new Error(`finetune: loss is ${lv} at epoch ${e + 1}, batch ${b.index + 1} (learning rate ${lr} too high?)`);
        backward(loss);
        opt.step(lr);
        step++;
        lossSum += lv * b.n;
        argmaxRows(logits.data, b.n, classes, pred, 0);
        for (let i = 0; i < b.n; i++) if (pred[i] === b.labels[i]) correct++;
        seen += b.n;
        if (o.maxSeconds !== undefined && step % 4 === 0) {
          // The steps that fit the bound at the pace so far (never fewer than those run).
          const elapsed = (performance.now() - tLoop) / 1000;
          const fit = step + Math.floor(((o.maxSeconds - elapsed) * step) / elapsed);
          const cut = Math.max(step, Math.min(o.epochs * batches, fit));
          if (cut !== total) {
            if (cut < o.epochs * batches && total === o.epochs * batches) log(`finetune: ${o.maxSeconds} s allow about ${cut} of ${total} steps at ${(elapsed / step).toFixed(2)} s per step; the schedule ends there`);
            total = cut;
          }
        }
        o.onProgress?.({ phase: 'finetune', epoch: e, epochs: o.epochs, step: b.index, steps: batches, loss: lossSum / seen, accuracy: correct / seen, lr });
      }
      const r: FinetuneEpoch = { epoch: e + 1, loss: lossSum / seen, trainAccuracy: correct / seen, images: seen, seconds: (performance.now() - te) / 1000 };
      const snapshot = tm.toModel();
      if (testSet) {
        const a = accuracyOf(snapshot, testSet, evalBatch);
        r.testAccuracy = a.accuracy;
        r.testSamples = a.samples;
      }
      if (o.validation && best) {
        r.validationAccuracy = accuracyOf(snapshot, o.validation, evalBatch).accuracy;
        if (r.validationAccuracy > best.acc) best = { epoch: e + 1, acc: r.validationAccuracy, model: snapshot };
      }
      history.push(r);
      o.onEpoch?.(r);
    }
  }

  const last = best && best.epoch < history.length ? history[best.epoch - 1] : history[history.length - 1];
  if (best && best.epoch < history.length) log(`finetune: keeping epoch ${best.epoch}${best.epoch === 0 ? ' (before training)' : ''}, best on ${o.validation!.count} validation samples (${(100 * best.acc).toFixed(2)}%)`);
  const meta: Record<string, unknown> = {
    'finetune.epochs': o.epochs,
    'finetune.batch': o.batch,
    'finetune.lr': o.lr,
    'finetune.temperature': o.temperature,
    'finetune.alpha': o.alpha,
    'finetune.blockwise': o.blockwise ? o.blockSteps : 0,
    'finetune.seed': o.seed,
    'finetune.samples': trainSet.count,
    ...(last?.testAccuracy !== undefined ? { 'finetune.test_accuracy': last.testAccuracy } : {}),
  };
  const model = best ? { ...best.model, metadata: { ...best.model.metadata, ...meta } } : tm.toModel(meta);
  let after: Accuracy | undefined;
  if (testSet) after = last?.testAccuracy !== undefined ? { accuracy: last.testAccuracy, samples: last.testSamples! } : accuracyOf(model, testSet, evalBatch);
  return {
    model, ...(before ? { before } : {}), ...(after ? { after } : {}), ...(teacherAcc ? { teacher: teacherAcc } : {}),
    ...(afterBlockwise ? { afterBlockwise } : o.blockwise && after && o.epochs === 0 ? { afterBlockwise: after } : {}),
    history, blocks, params: tm.paramCount,
    ...(best ? { best: { epoch: best.epoch, validationAccuracy: best.acc, validationSamples: o.validation!.count } } : {}),
    seconds: (performance.now() - t0) / 1000, blockSeconds, teacherSeconds, steps: step, plannedSteps: planned,
  };
}
