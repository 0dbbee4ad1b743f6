// factorlite train: trains mlp / lenet5 / vgg from scratch with the hidden layers in a factor kind,
// writes the .flm (and its training state) after every epoch, and reports accuracy in the runtime.
import { labelledFor, limitDataset, loadData } from '../../converter/data/datasets.js';
import { ARCH_NAMES, buildNet, LAYER_CHOICES, MODED_CHOICES, paramSummary, RESHAPED_CHOICES, type ArchName, type DenseModes, type LayerChoice } from '../../converter/train/arch.js';
import { loadCheckpoint, statePath } from '../../converter/train/checkpoint.js';
import { OPTIMIZER_KINDS, SCHEDULE_KINDS, type OptimizerKind, type ScheduleKind } from '../../converter/train/optim.js';
import { Trainer, type TrainConfig, type TrainState } from '../../converter/train/trainer.js';
import { CliError } from '../errors.js';
import { checkOutputs } from '../outputs.js';
import { log, progress, type Progress } from '../progress.js';
import { integerFlag, numberFlag } from '../flags.js';

/** Options as commander hands them over (strings); unset ones fall back to the defaults below or, with --resume, to the checkpoint. */
export interface TrainArgs {
  arch?: string;
  layer?: string;
  ratio?: string;
  /** full (default) | none: the hidden layers learn a bias or have none. */
  hiddenBias?: string;
  /** OUT/IN, e.g. 4x4x8x8/4x7x4x7: the reshape of the hidden dense layers (NetConfig.modes). */
  modes?: string;
  /** R,R,..: the ranks of the hidden dense layers (NetConfig.ranks). */
  denseRanks?: string;
  data: string;
  labels?: string;
  epochs?: string;
  batch?: string;
  lr?: string;
  optimizer?: string;
  weightDecay?: string;
  schedule?: string;
  warmup?: string;
  seed?: string;
  limit?: string;
  evalLimit?: string;
  output: string;
  json?: boolean;
  resume?: boolean;
  progress?: boolean;
}

/** --hidden-bias: the hidden layers learn a bias (full) or have none. */
export const HIDDEN_BIAS = ['full', 'none'] as const;

export const TRAIN_DEFAULTS = { epochs: 3, batch: 64, optimizer: 'adam' as OptimizerKind, schedule: 'cosine' as ScheduleKind, seed: 0 };
/** Base learning rate per optimiser when --lr is not given. */
export const DEFAULT_LR: Readonly<Record<OptimizerKind, number>> = { sgd: 0.05, adam: 0.003, adamw: 0.003 };

function bad(msg: string): CliError {
  return new CliError('BAD_ARGUMENT', msg);
}

const int = (flag: string, v: string | undefined, min: number): number | undefined => integerFlag(flag, v, min);
const num = (flag: string, v: string | undefined, ok: (x: number) => boolean, what: string): number | undefined => numberFlag(flag, v, { ok, what });

function oneOf<T extends string>(flag: string, v: string | undefined, allowed: readonly T[]): T | undefined {
  if (v === undefined) return undefined;
  if (!(allowed as readonly string[]).includes(v)) throw bad(`${flag} ${v}: expected one of ${allowed.join(', ')}`);
  return v as T;
}

/** With --resume, a flag that was given must agree with the checkpoint. */
function agree<T>(flag: string, given: T | undefined, saved: T): T {
  if (given !== undefined && given !== saved) throw bad(`${flag} ${String(given)} differs from the checkpoint's ${String(saved)} (drop the flag or start a new run)`);
  return saved;
}

/** --modes 4x4x8x8/4x7x4x7 -> { out, in }; the shape checks against the layers are buildNet's. */
export function parseModes(v: string | undefined): DenseModes | undefined {
  if (v === undefined) return undefined;
  const m = /^(\d+(?:x\d+)*)\/(\d+(?:x\d+)*)$/.exec(v.trim());
  if (!m) throw bad(`--modes ${v}: expected OUT/IN, each a list of positive integers joined by x (e.g. 4x4x8x8/4x7x4x7)`);
  const modes = { out: m[1]!.split('x').map(Number), in: m[2]!.split('x').map(Number) };
  if ([...modes.out, ...modes.in].some((x) => x < 1)) throw bad(`--modes ${v}: every mode must be at least 1`);
  if (modes.out.length !== modes.in.length) throw bad(`--modes ${v}: ${modes.out.length} output modes but ${modes.in.length} input modes (one of each per pair)`);
  return modes;
}

/** --dense-ranks 3,3,2,1 -> [3, 3, 2, 1]; the checks against the layer are buildNet's. */
export function parseDenseRanks(v: string | undefined): number[] | undefined {
  if (v === undefined) return undefined;
  if (!/^\d+(,\d+)*$/.test(v.trim())) throw bad(`--dense-ranks ${v}: expected positive integers joined by commas (e.g. 3,3,2,1)`);
  const ranks = v.trim().split(',').map(Number);
  if (ranks.some((r) => r < 1)) throw bad(`--dense-ranks ${v}: every rank must be at least 1`);
  return ranks;
}

const sameModes = (a: DenseModes | null | undefined, b: DenseModes | null | undefined) => JSON.stringify(a ?? null) === JSON.stringify(b ?? null);
const showModes = (m: DenseModes | null | undefined) => (m ? `${m.out.join('x')}/${m.in.join('x')}` : 'default');

const pct = (x: number | undefined) => (x === undefined ? '-' : `${(100 * x).toFixed(2)}%`);

export async function trainCommand(a: TrainArgs): Promise<void> {
  const arch = oneOf('--arch', a.arch, ARCH_NAMES);
  const layer = oneOf('--layer', a.layer, LAYER_CHOICES);
  const ratio = num('--ratio', a.ratio, (x) => x >= 1, 'a number >= 1');
  const biasArg = oneOf('--hidden-bias', a.hiddenBias, HIDDEN_BIAS);
  const hiddenBias = biasArg === undefined ? undefined : biasArg === 'full';
  const modes = parseModes(a.modes);
  if (modes && layer && !MODED_CHOICES.includes(layer)) throw bad(`--modes applies to --layer ${MODED_CHOICES.join('|')}, not ${layer}`);
  const denseRanks = parseDenseRanks(a.denseRanks);
  if (denseRanks && layer && !RESHAPED_CHOICES.includes(layer)) throw bad(`--dense-ranks applies to --layer ${RESHAPED_CHOICES.join('|')}, not ${layer}`);
  const epochsArg = int('--epochs', a.epochs, 1);
  const batchArg = int('--batch', a.batch, 1);
  const optArg = oneOf('--optimizer', a.optimizer, OPTIMIZER_KINDS);
  const lrArg = num('--lr', a.lr, (x) => x > 0, 'a positive number');
  const wdArg = num('--weight-decay', a.weightDecay, (x) => x >= 0, 'a number >= 0');
  const schedArg = oneOf('--schedule', a.schedule, SCHEDULE_KINDS);
  const warmupArg = int('--warmup', a.warmup, 0);
  const seedArg = int('--seed', a.seed, 0);
  const limit = int('--limit', a.limit, 1);
  const evalLimit = int('--eval-limit', a.evalLimit, 1);
  if (!a.output.endsWith('.flm')) throw bad(`-o ${a.output}: the output must be a .flm file`);
  // With --resume the -o checkpoint is read and then rewritten atomically, as it is after every epoch.
  checkOutputs({ inputs: [a.data], outputs: [a.output, statePath(a.output)] });

  let resumed: TrainState | undefined;
  let resumedModel;
  if (a.resume) {
    try {
      ({ state: resumed, model: resumedModel } = loadCheckpoint(a.output));
    } catch (e) {
      const err = e as Error & { code?: string };
      throw new CliError('BAD_INPUT', `--resume: ${err.message}`, { cause: e });
    }
  } else if (!arch || !layer) {
    throw bad(`${arch ? '--layer' : '--arch'} is required (--arch ${ARCH_NAMES.join('|')}, --layer ${LAYER_CHOICES.join('|')})`);
  }

  let config: TrainConfig;
  let netCfg;
  if (resumed) {
    const s = resumed;
    netCfg = {
      arch: agree('--arch', arch, s.net.arch) as ArchName,
      layer: agree('--layer', layer, s.net.layer) as LayerChoice,
      ratio: agree('--ratio', ratio, s.net.ratio),
      seed: agree('--seed', seedArg, s.net.seed),
      // Checkpoints from before --hidden-bias have no field: their hidden layers had a bias.
      hiddenBias: agree('--hidden-bias', biasArg, ((s.net.hiddenBias as boolean | undefined) ?? true) ? 'full' : 'none') === 'full',
      modes: s.net.modes ?? null,
      ranks: s.net.ranks ?? null,
    };
    if (denseRanks && JSON.stringify(denseRanks) !== JSON.stringify(s.net.ranks ?? null)) {
      throw bad(`--dense-ranks ${a.denseRanks} differs from the checkpoint's ${s.net.ranks ? s.net.ranks.join(',') : 'uniform ladder'} (drop the flag or start a new run)`);
    }
    if (modes && !sameModes(modes, s.net.modes)) throw bad(`--modes ${a.modes} differs from the checkpoint's ${showModes(s.net.modes)} (drop the flag or start a new run)`);
    config = {
      ...s.config,
      epochs: epochsArg ?? s.config.epochs,
      batch: agree('--batch', batchArg, s.config.batch),
      optimizer: {
        ...s.config.optimizer,
        kind: agree('--optimizer', optArg, s.config.optimizer.kind),
        lr: agree('--lr', lrArg, s.config.optimizer.lr),
      },
    };
    if (wdArg !== undefined) agree('--weight-decay', wdArg, s.config.optimizer.weightDecay);
    if (schedArg !== undefined) agree('--schedule', schedArg, s.config.schedule?.kind);
  } else {
    const kind = optArg ?? TRAIN_DEFAULTS.optimizer;
    const seed = seedArg ?? TRAIN_DEFAULTS.seed;
    netCfg = { arch: arch!, layer: layer!, ...(ratio !== undefined ? { ratio } : {}), seed, hiddenBias: hiddenBias ?? true, modes: modes ?? null, ranks: denseRanks ?? null };
    config = {
      epochs: epochsArg ?? TRAIN_DEFAULTS.epochs,
      batch: batchArg ?? TRAIN_DEFAULTS.batch,
      optimizer: { kind, lr: lrArg ?? DEFAULT_LR[kind], ...(wdArg !== undefined ? { weightDecay: wdArg } : {}) },
      schedule: { kind: schedArg ?? TRAIN_DEFAULTS.schedule, warmup: warmupArg ?? 0 },
      seed,
    };
  }

  const files = a.labels !== undefined ? { labels: a.labels } : {};
  // The architectures take [1, 28, 28] images and give 10 classes: checked before any training.
  const trainSet = labelledFor(limitDataset(loadData(a.data, 'train', files), limit), [1, 28, 28], [10], 'train');
  const testSet = labelledFor(limitDataset(loadData(a.data, 'test', files), evalLimit), [1, 28, 28], [10], 'train');
  let net;
  try {
    net = buildNet(netCfg);
  } catch (e) {
    // Only the modes or ranks can fail here (the other fields were checked above): one line naming them.
    if (!netCfg.modes && !netCfg.ranks) throw e;
    const flags = [netCfg.modes ? `--modes ${showModes(netCfg.modes)}` : '', netCfg.ranks ? `--dense-ranks ${netCfg.ranks.join(',')}` : ''].filter(Boolean).join(' ');
    throw bad(`${flags}: ${(e as Error).message.replace(/^train: /, '')}`);
  }
  const trainer = new Trainer(net, trainSet, testSet, config);
  if (resumed && resumedModel) {
    try {
      net.loadWeights(resumedModel);
      trainer.restore(resumed);
    } catch (e) {
      throw new CliError('BAD_INPUT', `--resume ${a.output}: ${(e as Error).message}`, { cause: e });
    }
  }
  const startEpoch = trainer.epoch;
  const sum = paramSummary(net);
  const hiddenCompression = sum.hiddenDenseParams / sum.hiddenParams;
  const c = net.config;
  log(
    `train ${c.arch} --layer ${c.layer}${c.layer === 'dense' ? '' : ` --ratio ${c.ratio}`}${c.hiddenBias ? '' : ' --hidden-bias none'}${c.modes ? ` --modes ${showModes(c.modes)}` : ''}${c.ranks ? ` --dense-ranks ${c.ranks.join(',')}` : ''}: ${sum.params} params ` +
      `(hidden ${sum.hiddenParams} vs ${sum.hiddenDenseParams} dense, ${hiddenCompression.toFixed(1)}x), ` +
      `${trainSet.count} training / ${testSet.count} test images of ${trainSet.name}` +
      (startEpoch > 0 ? `, resuming after epoch ${startEpoch}` : ''),
  );

  const t0 = performance.now();
  let bar: Progress | undefined;
  const showBar = a.progress !== false;
  await trainer.run({
    checkpoint: a.output,
    metadata: { 'train.data': trainSet.name, 'train.samples': trainSet.count },
    onProgress: (p) => {
      if (p.batch === 0) bar = progress(`epoch ${p.epoch + 1}/${p.epochs}`, p.batches, showBar);
      bar?.update(p.batch + 1, `loss ${p.loss.toFixed(4)} acc ${pct(p.accuracy)} lr ${p.lr.toPrecision(3)}`);
      if (p.batch + 1 === p.batches) bar?.stop();
    },
    onEpoch: (r) =>
      log(
        `epoch ${r.epoch}/${config.epochs}: loss ${r.loss.toFixed(4)}, train ${pct(r.trainAccuracy)}, ` +
          `test ${pct(r.testAccuracy)} (runtime), ${r.seconds.toFixed(1)} s, ${(r.images / r.seconds).toFixed(0)} images/s`,
      ),
  });
  const seconds = (performance.now() - t0) / 1000;

  const ran = trainer.history.slice(startEpoch);
  const trainSeconds = ran.reduce((s, r) => s + r.seconds, 0);
  const images = ran.reduce((s, r) => s + r.images, 0);
  const last = trainer.history[trainer.history.length - 1];
  const out = {
    model: a.output,
    state: statePath(a.output),
    arch: c.arch,
    layer: c.layer,
    ratio: c.ratio,
    hiddenBias: c.hiddenBias ? 'full' : 'none',
    modes: c.modes ? showModes(c.modes) : null,
    denseRanks: c.ranks,
    data: trainSet.name,
    epochs: config.epochs,
    resumedFromEpoch: startEpoch,
    batch: config.batch,
    optimizer: config.optimizer.kind,
    lr: config.optimizer.lr,
    schedule: config.schedule?.kind ?? 'constant',
    seed: c.seed,
    trainSamples: trainSet.count,
    samples: last?.testSamples ?? 0,
    accuracy: last?.testAccuracy ?? null,
    loss: last?.loss ?? null,
    trainAccuracy: last?.trainAccuracy ?? null,
    params: sum.params,
    denseParams: sum.denseParams,
    compression: sum.denseParams / sum.params,
    hiddenParams: sum.hiddenParams,
    hiddenDenseParams: sum.hiddenDenseParams,
    hiddenCompression,
    layers: net.layers,
    seconds,
    trainSeconds,
    imagesPerSecond: trainSeconds > 0 ? images / trainSeconds : 0,
    history: trainer.history,
  };
  if (a.json) {
    process.stdout.write(`${JSON.stringify(out)}\n`);
    return;
  }
  const rows = net.layers.map(
    (l) => `  ${l.name.padEnd(6)} ${l.op.padEnd(15)} ranks [${l.ranks.join(', ')}]`.padEnd(50) +
      `${String(l.params).padStart(9)} params (dense ${l.denseParams})`,
  );
  process.stdout.write(
    `${a.output}: ${c.arch} with ${c.layer} hidden layers, test accuracy ${pct(out.accuracy ?? undefined)} ` +
      `on ${out.samples} ${trainSet.name} images after ${config.epochs} epochs (${seconds.toFixed(1)} s, ` +
      `${out.imagesPerSecond.toFixed(0)} images/s)\n${rows.join('\n')}\n` +
      `  hidden layers ${sum.hiddenParams} params vs ${sum.hiddenDenseParams} dense: ${hiddenCompression.toFixed(1)}x smaller; ` +
      `whole model ${sum.params} params (${out.compression.toFixed(1)}x)\n`,
  );
}
