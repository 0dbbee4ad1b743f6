// The training loop: seeded batches, forward, softmax cross-entropy, backward, optimiser step;
// after each epoch the test split runs in the runtime on the exported model (so the accuracy
// reported is the accuracy of the file), and an optional checkpoint is written.
import type { Dataset } from '../data/datasets.js';
import { argmaxRows, evaluate } from '../evaluate.js';
import type { Model } from '../../runtime/ir.js';
import { Session } from '../../runtime/session.js';
import type { Net, NetConfig } from './arch.js';
import { saveCheckpoint } from './checkpoint.js';
import { BatchLoader } from './loader.js';
import { softmaxCrossEntropy } from './ops/loss.js';
import { Optimizer, scheduledLr } from './optim.js';
import { backward, constant, noGrad } from './tensor.js';
import type { EpochResult, TrainConfig, TrainState } from './state.js';

export type { EpochResult, TrainConfig, TrainState } from './state.js';


export interface TrainProgress {
  /** 0-based epoch and batch. */
  epoch: number;
  epochs: number;
  batch: number;
  batches: number;
  /** Running mean loss and accuracy over the epoch so far. */
  loss: number;
  accuracy: number;
  lr: number;
}

export interface RunOptions {
  onProgress?: (p: TrainProgress) => void;
  onEpoch?: (r: EpochResult) => void;
  /** Write `<path>` (.flm) and its state sidecar after every epoch. */
  checkpoint?: string;
  /** Metadata added to the exported model (e.g. 'train.data'). */
  metadata?: Record<string, unknown>;
}

export class Trainer {
  readonly optimizer: Optimizer;
  readonly loader: BatchLoader;
  /** Epochs completed. */
  epoch = 0;
  /** Optimiser steps taken (the schedule's clock). */
  step = 0;
  readonly history: EpochResult[] = [];

  constructor(readonly net: Net, readonly trainSet: Dataset, readonly testSet: Dataset | undefined, readonly config: TrainConfig) {
    if (!Number.isInteger(config.epochs) || config.epochs < 1) throw new Error(`train: epochs ${config.epochs} must be a positive integer`);
    this.loader = new BatchLoader(trainSet, { batch: config.batch, seed: config.seed ?? 0 });
    this.optimizer = new Optimizer(net.params, config.optimizer);
  }

  get totalSteps(): number {
    return this.config.epochs * this.loader.batchesPerEpoch;
  }

  lrAt(step: number): number {
    return scheduledLr(this.config.schedule ?? { kind: 'constant' }, this.config.optimizer.lr, step, this.totalSteps);
  }

  /** Logits of a batch [n, 1, 28, 28] from the training graph, without recording it. */
  logits(images: Float32Array, n: number): Float32Array {
    const shape = [n, ...this.trainSet.shape];
    return noGrad(() => this.net.forward(constant(images, shape))).data;
  }

  /** One pass over the training set; then the test split in the runtime. */
  trainEpoch(onProgress?: (p: TrainProgress) => void): EpochResult {
    const e = this.epoch;
    const batches = this.loader.batchesPerEpoch;
    const t0 = performance.now();
    let lossSum = 0, correct = 0, seen = 0, lr = 0;
    const pred = new Uint8Array(this.config.batch);
    for (const b of this.loader.epoch(e)) {
      lr = this.lrAt(this.step);
      this.optimizer.zeroGrad();
      const logits = this.net.forward(constant(b.images, b.shape));
      const loss = softmaxCrossEntropy(logits, b.labels);
      if (!Number.isFinite(loss.data[0]!)) {
        throw new Error(`train: loss is ${loss.data[0]} at epoch ${e + 1}, batch ${b.index + 1} (learning rate ${lr} too high?)`);
      }
      backward(loss);
      this.optimizer.step(lr);
      this.step++;
      lossSum += loss.data[0]! * b.n;
      const classes = logits.size / b.n;
      argmaxRows(logits.data, b.n, classes, pred, 0);
      for (let i = 0; i < b.n; i++) if (pred[i] === b.labels[i]) correct++;
      seen += b.n;
      onProgress?.({ epoch: e, epochs: this.config.epochs, batch: b.index, batches, loss: lossSum / seen, accuracy: correct / seen, lr });
    }
    const seconds = (performance.now() - t0) / 1000;
    this.epoch++;
    const r: EpochResult = { epoch: this.epoch, loss: lossSum / seen, trainAccuracy: correct / seen, images: seen, seconds, lr };
    if (this.testSet) {
      const ev = this.evaluate(this.testSet);
      r.testAccuracy = ev.accuracy;
      r.testSamples = ev.samples;
    }
    this.history.push(r);
    return r;
  }

  /** Accuracy of the exported model in a runtime Session: what a user of the .flm gets. */
  evaluate(ds: Dataset): { accuracy: number; samples: number } {
    const session = Session.create(this.net.toModel(), { retainWeights: false });
    const r = evaluate(session, ds, { batch: this.config.evalBatch ?? 250 });
    return { accuracy: r.accuracy, samples: r.samples };
  }

  /** Trains the remaining epochs, checkpointing after each one if asked. */
  async run(o: RunOptions = {}): Promise<EpochResult[]> {
    while (this.epoch < this.config.epochs) {
      const r = this.trainEpoch(o.onProgress);
      if (o.checkpoint) await saveCheckpoint(o.checkpoint, this.exportModel(o.metadata), this.state());
      o.onEpoch?.(r);
    }
    return this.history;
  }

  /** The runtime model with the training summary in its metadata. */
  exportModel(metadata: Record<string, unknown> = {}): Model {
    const last = this.history[this.history.length - 1];
    return this.net.toModel({
      'train.epoch': this.epoch,
      'train.step': this.step,
      'train.optimizer': this.config.optimizer.kind,
      ...(last?.testAccuracy !== undefined ? { 'train.test_accuracy': last.testAccuracy } : {}),
      ...metadata,
    });
  }

  state(): TrainState {
    return {
      net: { ...this.net.config },
      config: structuredClone(this.config),
      epoch: this.epoch,
      step: this.step,
      optimizer: this.optimizer.state(),
      history: this.history.map((h) => ({ ...h })),
    };
  }

  /** Continues from a checkpoint's state; the parameters come separately (Net.loadWeights). */
  restore(s: TrainState): void {
    const a = s.net, b = this.net.config;
    if (a.arch !== b.arch || a.layer !== b.layer || a.ratio !== b.ratio) {
      throw new Error(`train: checkpoint is ${a.arch}/${a.layer}/ratio ${a.ratio}, this model is ${b.arch}/${b.layer}/ratio ${b.ratio}`);
    }
    if (s.config.batch !== this.config.batch || (s.config.seed ?? 0) !== (this.config.seed ?? 0)) {
      throw new Error(`train: checkpoint used batch ${s.config.batch} and seed ${s.config.seed ?? 0}, this run batch ${this.config.batch} and seed ${this.config.seed ?? 0}`);
    }
    if (s.step !== s.epoch * this.loader.batchesPerEpoch) {
      throw new Error(`train: checkpoint has ${s.step} steps over ${s.epoch} epochs, but an epoch here is ${this.loader.batchesPerEpoch} batches (different data, --limit or --batch?)`);
    }
    this.optimizer.loadState(s.optimizer);
    this.epoch = s.epoch;
    this.step = s.step;
    this.history.length = 0;
    this.history.push(...s.history.map((h) => ({ ...h })));
  }
}
