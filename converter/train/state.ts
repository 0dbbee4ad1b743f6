// What a training run is and what continues it: the loop's settings, one epoch's result, and the
// state a checkpoint stores (checkpoint.ts writes it, trainer.ts produces and restores it).
import type { NetConfig } from './arch.js';
import type { OptimizerOptions, OptimizerState, Schedule } from './optim.js';

export interface TrainConfig {
  /** Total epochs of the run (a resumed run continues up to this). */
  epochs: number;
  batch: number;
  optimizer: OptimizerOptions;
  schedule?: Schedule;
  /** Seed of the batch order (the net's own seed sets its initialisation). Default 0. */
  seed?: number;
  evalBatch?: number;
}

export interface EpochResult {
  /** 1-based. */
  epoch: number;
  loss: number;
  trainAccuracy: number;
  /** Test accuracy of the exported model in the runtime (absent without a test set). */
  testAccuracy?: number;
  testSamples?: number;
  images: number;
  /** Training time of the epoch, evaluation excluded. */
  seconds: number;
  lr: number;
}

/** Everything that, with the parameters, continues a run exactly (checkpoint.ts stores it). */
export interface TrainState {
  net: Required<NetConfig>;
  config: TrainConfig;
  /** Epochs completed and optimiser steps taken. */
  epoch: number;
  step: number;
  optimizer: OptimizerState;
  history: EpochResult[];
}
