// Seeded shuffling and batching over a Dataset. Each epoch's order is a Fisher-Yates permutation
// drawn from its own PRNG, seeded by (seed, epoch): a run resumed at epoch e sees exactly the
// batches an uninterrupted run would, with no generator state to carry.
import type { Dataset } from '../data/datasets.js';
import { mulberry32 } from '../decompose/prng.js';

export interface Batch {
  /** Images [n, ...shape], copied into a buffer the loader reuses for the next batch. */
  images: Float32Array;
  labels: Uint8Array;
  shape: number[];
  n: number;
  /** 0-based batch index within the epoch. */
  index: number;
}

export interface LoaderOptions {
  batch: number;
  seed?: number;
  /** Default true; false keeps the dataset order (evaluation). */
  shuffle?: boolean;
  /** Drop a last, smaller batch (default false). */
  dropLast?: boolean;
}

/** A 32-bit seed for epoch `epoch` of a run seeded `seed` (integer hash, so nearby seeds differ). */
export function epochSeed(seed: number, epoch: number): number {
  let h = Math.imul((seed >>> 0) ^ 0x9e3779b9, 0x85ebca6b) >>> 0;
  h = Math.imul(h ^ (h >>> 13) ^ Math.imul(epoch + 1, 0xc2b2ae35), 0x27d4eb2f) >>> 0;
  return (h ^ (h >>> 16)) >>> 0;
}

/** A permutation of 0..n-1 from a seeded Fisher-Yates shuffle. */
export function permutation(n: number, seed: number): Uint32Array {
  const p = new Uint32Array(n);
  for (let i = 0; i < n; i++) p[i] = i;
  const u = mulberry32(seed);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(u() * (i + 1));
    const tmp = p[i]!;
    p[i] = p[j]!;
    p[j] = tmp;
  }
  return p;
}

export class BatchLoader {
  readonly batch: number;
  readonly seed: number;
  private readonly shuffle: boolean;
  private readonly dropLast: boolean;
  private readonly per: number;

  constructor(readonly ds: Dataset, o: LoaderOptions) {
    if (!Number.isInteger(o.batch) || o.batch < 1) throw new Error(`loader: batch size ${o.batch} must be a positive integer`);
    if (ds.count < 1) throw new Error(`loader: dataset ${ds.name} is empty`);
    this.batch = o.batch;
    this.seed = o.seed ?? 0;
    this.shuffle = o.shuffle ?? true;
    this.dropLast = o.dropLast ?? false;
    this.per = ds.shape.reduce((a, b) => a * b, 1);
  }

  get batchesPerEpoch(): number {
    const n = this.ds.count / this.batch;
    return this.dropLast ? Math.max(1, Math.floor(n)) : Math.ceil(n);
  }

  /** Sample order of epoch `epoch` (0-based). */
  order(epoch: number): Uint32Array {
    if (!this.shuffle) return Uint32Array.from({ length: this.ds.count }, (_, i) => i);
    return permutation(this.ds.count, epochSeed(this.seed, epoch));
  }

  /** The batches of epoch `epoch`; each yielded Batch is valid until the next one is requested. */
  *epoch(epoch: number): Generator<Batch> {
    const order = this.order(epoch);
    const { per, ds } = this;
    const images = new Float32Array(this.batch * per);
    const labels = new Uint8Array(this.batch);
    const batches = this.batchesPerEpoch;
    for (let b = 0; b < batches; b++) {
      const start = b * this.batch;
      const n = Math.min(this.batch, ds.count - start);
      for (let i = 0; i < n; i++) {
        const k = order[start + i]!;
        images.set(ds.images.subarray(k * per, (k + 1) * per), i * per);
        labels[i] = ds.labels[k]!;
      }
      yield { images: images.subarray(0, n * per), labels: labels.subarray(0, n), shape: [n, ...ds.shape], n, index: b };
    }
  }
}
