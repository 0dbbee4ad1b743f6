// Hardware in the loop: upload a model to a device, stream a test set through it, and compare
// every answer with the workstation runtime on the same inputs.
import { imagesAsInput } from '../converter/data/layout.js';
import { BridgeClient, BridgeError, type ClientOptions, type Hello, type StepCount, type UploadReport } from '../firmware-bridge/host/client.js';
import { crc32 } from '../firmware-bridge/host/frame.js';
import type { ByteTransport, FaultyTransport } from '../firmware-bridge/host/transport.js';
import type { DataSource } from '../converter/data/datasets.js';
import { readFlm } from '../runtime/format/reader.js';
import type { Model } from '../runtime/ir.js';
import { nodeMacs } from '../targets/fit.js';
import { Session } from '../runtime/session.js';
import { Int8Session } from '../runtime/int8full/session.js';
import { isInt8Full } from '../runtime/int8full/params.js';
import type { BoardKind } from './emulators.js';

/** What a target part offers a model: stored-model bytes and arena bytes. */
export interface Budget {
  name: string;
  flash: number;
  arena: number;
}

/**
 * The budgets of the issues: a Cortex-M4 part with 64 KB for the model and 32 KB of arena; and for
 * MLPerf Tiny's models, what the firmware's STM32L4R5ZI build gives them (NUCLEO-L4R5ZI, the board
 * of MLPerf Tiny's published Cortex-M4 results: 1.5 MB of its 2 MB flash, 480 KB of its 640 KB SRAM).
 */
export const BUDGETS: Partial<Record<BoardKind, Budget>> = {
  'cortex-m4': { name: 'cortex-m4 (64 KB model flash, 32 KB arena)', flash: 64 * 1024, arena: 32 * 1024 },
  'cortex-m4-l4r5': { name: 'cortex-m4-l4r5 (STM32L4R5ZI: 1.5 MB model flash, 480 KB arena)', flash: 1536 * 1024, arena: 480 * 1024 },
};

export interface Percentiles {
  p50: number;
  p95: number;
  mean: number;
  max: number;
}

export interface HilReport {
  model: { path: string; bytes: number; crc: number };
  device: Pick<Hello, 'fw' | 'board' | 'boot' | 'arena' | 'flash' | 'max_frame' | 'clock_hz'>;
  data: { name: string; samples: number };
  /** The model fits the budget and the device accepted it. */
  fits: boolean;
  budget: Budget | null;
  /** Why it does not fit, when it does not. */
  why: string | null;
  /** The device's own refusal of the upload (TOO_LARGE, MODEL_INVALID), when it refused. */
  refusal?: { code: string; message: string } | null;
  /**
   * With `hil --emulate cortex-m4`: the build that ran, chosen as the smallest Cortex-M4 build
   * whose device accepted the model, and the builds tried before it with their refusals.
   */
  emulated?: { asked: string; board: BoardKind; tried: Array<{ board: BoardKind; why: string }> };
  upload: (Omit<UploadReport, 'in' | 'out' | 'ready'> & { inShape: number[]; outShape: number[] }) | null;
  arena: { used: number; peakScratch: number; available: number } | null;
  results: null | {
    answered: number;
    /** Sample ids without exactly one answer (must be empty). */
    unanswered: number[];
    /** 'classes': top-1 against labels; 'values': outputs compared as values (no labels, or targets). */
    mode: 'classes' | 'values';
    /** Top-1 accuracy against the labels (null without labels). */
    deviceAccuracy: number | null;
    desktopAccuracy: number | null;
    /** Share of samples where the device agrees with the workstation: same top-1 ('classes'), within tolerance ('values'). */
    agreement: number;
    /** Value outputs: errors of the device against the workstation, and against targets when given. */
    values: null | {
      /** A sample is within tolerance when max|device - workstation| <= tolerance * max(1, max|workstation|). */
      tolerance: number;
      withinTolerance: number;
      mse: number;
      maxAbsError: number;
      targets: null | { source: string; deviceMse: number; desktopMse: number; deviceMaxAbsError: number; desktopMaxAbsError: number };
    };
    maxAbsLogitError: number;
    meanAbsLogitError: number;
    /**
     * An int8-full model (metadata quant.int8_full): the workstation runs its integer definition
     * (Int8Session), so agreement is exact or not. `exact`: share of samples whose outputs are the
     * very same (the same int8 logits, dequantised); `f32`: the same file with f32 activations
     * (the int8-weights model a reader ignoring the key runs): its top-1 accuracy and the device's
     * top-1 agreement with it.
     */
    int8Full?: { exact: number; f32Agreement: number; f32Accuracy: number | null };
    latencyUs: Percentiles;
    cycles: Percentiles | null;
    /** confusion[desktop][device]: how often the device said `device` where the desktop said `desktop`. */
    confusion: number[][];
    seconds: number;
  };
  link: {
    baud: number | null;
    requests: number;
    resends: number;
    timeouts: number;
    discarded: number;
    resets: number;
    reuploads: number;
    badFramesSeen: number;
    faults: null | { spec: string; tx: Record<string, number>; rx: Record<string, number> };
  };
  deviceStats: Record<string, number> | null;
  /**
   * Where the time of the last inference went, step by step (a node, or a fused chain run as one),
   * when the firmware records it (stats.layers): its nodes, the MACs of those nodes counted from
   * the graph (nodeMacs, targets/fit.ts), the device's count (instructions on the emulated
   * Cortex-M4) and their ratio (null without MACs).
   */
  layers?: LayerCount[] | null;
  /** Per sample: [label, device top-1, desktop top-1, device us]. */
  samples: Array<[number, number, number, number]>;
  /** Per sample, in the order of `samples`: max |device - workstation| over its outputs (null in JSON when not finite). */
  logitErrors?: number[];
}

export interface LayerCount {
  first: number;
  last: number;
  /** Node names and ops, first..last. */
  nodes: string[];
  ops: string[];
  macs: number;
  cycles: number;
  perMac: number | null;
}

/** The device's per-step counts named from the graph, with each step's MACs. */
export function layerCounts(model: Model, steps: StepCount[]): LayerCount[] {
  const macs = nodeMacs(model);
  const nodes = model.graph.nodes;
  return steps.map((s) => {
    if (s.last >= nodes.length) throw new BridgeError('PROTOCOL', `stats.layers names node ${s.last}; the model has ${nodes.length}`);
    const span = nodes.slice(s.first, s.last + 1);
    const m = Math.round(macs.slice(s.first, s.last + 1).reduce((a, b) => a + b, 0));
    return { first: s.first, last: s.last, nodes: span.map((n) => n.name), ops: span.map((n) => n.op), macs: m, cycles: s.cycles, perMac: m > 0 ? s.cycles / m : null };
  });
}

export interface HilOptions {
  modelBytes: Uint8Array;
  modelPath: string;
  transport: ByteTransport;
  /** Samples; class labels (data.labels) make a 'classes' run, their absence a 'values' run. */
  data: DataSource;
  /** Target outputs [count, ...outputs] for a 'values' run (compared with both device and workstation). */
  targets?: { data: Float32Array; source: string };
  /** Relative tolerance of a 'values' run (default 1e-3). */
  tolerance?: number;
  board?: BoardKind;
  budget?: Budget | null;
  client?: ClientOptions;
  /** The fault wrapper, when the transport is one (its counts go into the report). */
  faults?: { transport: FaultyTransport; spec: string };
  onProgress?: (phase: 'upload' | 'infer', done: number, total: number) => void;
  /** Called after each answered sample (tests use it to reset the device mid-run). */
  onSample?: (id: number) => void | Promise<void>;
  log?: (line: string) => void;
}

export function percentiles(values: number[]): Percentiles {
  if (values.length === 0) return { p50: 0, p95: 0, mean: 0, max: 0 };
  const s = [...values].sort((a, b) => a - b);
  const at = (q: number) => s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))]!;
  return { p50: at(0.5), p95: at(0.95), mean: s.reduce((a, b) => a + b, 0) / s.length, max: s[s.length - 1]! };
}

export function argmax(v: ArrayLike<number>, from = 0, n = v.length): number {
  let best = 0;
  for (let i = 1; i < n; i++) if (v[from + i]! > v[from + best]!) best = i;
  return best;
}

/** The dataset's pixels as u8 when every value is k/255 (then the device divides by 255), else undefined. */
export function asU8Pixels(images: Float32Array): Uint8Array | undefined {
  const u8 = new Uint8Array(images.length);
  for (let i = 0; i < images.length; i++) {
    const k = Math.round(images[i]! * 255);
    if (k < 0 || k > 255 || Math.fround(k / 255) !== images[i]) return undefined;
    u8[i] = k;
  }
  return u8;
}

export async function runHil(o: HilOptions): Promise<HilReport> {
  const log = o.log ?? (() => {});
  const client = new BridgeClient(o.transport, { ...o.client, log });
  const ds = o.data;
  const per = ds.shape.reduce((a, b) => a * b, 1);
  const budget = o.budget === undefined ? (o.board ? BUDGETS[o.board] ?? null : null) : o.budget;
  const report: HilReport = {
    model: { path: o.modelPath, bytes: o.modelBytes.length, crc: crc32(o.modelBytes) },
    device: { fw: '', board: '', boot: 0, arena: 0, flash: 0, max_frame: 0, clock_hz: 0 },
    data: { name: ds.name, samples: ds.count },
    fits: false,
    budget,
    why: null,
    upload: null,
    arena: null,
    results: null,
    link: { baud: o.transport.baud ?? null, requests: 0, resends: 0, timeouts: 0, discarded: 0, resets: 0, reuploads: 0, badFramesSeen: 0, faults: null },
    deviceStats: null,
    layers: null,
    samples: [],
    logitErrors: [],
  };
  let model: Model | undefined;
  const finishLink = async () => {
    Object.assign(report.link, {
      requests: client.counters.requests,
      resends: client.counters.resends,
      timeouts: client.counters.timeouts,
      discarded: client.counters.discarded,
      resets: client.counters.resets,
      reuploads: client.counters.reuploads,
      badFramesSeen: Object.values(client.parser.counters.dropped).reduce((a, b) => a + b, 0),
    });
    if (o.faults) {
      const c = o.faults.transport.counts();
      report.link.faults = { spec: o.faults.spec, tx: { ...c.tx }, rx: { ...c.rx } };
      // The device's own counters are read on a clean line.
      o.faults.transport.setEnabled(false);
    }
    try {
      const { layers, layers_lost: lost, ...stats } = await client.stats();
      report.deviceStats = { ...stats, ...(lost !== undefined ? { layers_lost: lost } : {}) };
      if (layers && layers.length && model) report.layers = layerCounts(model, layers);
    } catch (e) {
      log(`hil: stats failed: ${(e as Error).message}`);
    }
  };

  try {
    const hello = await client.hello();
    report.device = { fw: hello.fw, board: hello.board, boot: hello.boot, arena: hello.arena, flash: hello.flash, max_frame: hello.max_frame, clock_hz: hello.clock_hz };
    log(`hil: device ${hello.board} (${hello.fw}), ${hello.flash} B model flash, ${hello.arena} B arena, max frame ${hello.max_frame} B`);

    // The workstation reference, on the very values the device computes from the u8 pixels.
    model = readFlm(o.modelBytes);
    const session = Session.create(model);
    const int8 = isInt8Full(model) ? Int8Session.create(model) : undefined;
    let exact = 0;
    let f32Agree = 0;
    let f32Correct = 0;
    const u8 = asU8Pixels(ds.images.subarray(0, ds.count * per));

    if (budget && o.modelBytes.length > budget.flash) {
      report.why = `model is ${o.modelBytes.length} B, more than the ${budget.flash} B of model flash of ${budget.name}`;
    }
    let up: UploadReport;
    try {
      up = await client.upload(o.modelBytes, (have, total) => o.onProgress?.('upload', have, total));
    } catch (e) {
      if (e instanceof BridgeError && e.fromDevice && (e.code === 'TOO_LARGE' || e.code === 'MODEL_INVALID')) {
        report.fits = false;
        if (e.upload) report.upload = { ...e.upload, arena_used: 0, peak_scratch: 0, inShape: [], outShape: [] };
        report.refusal = { code: e.code, message: e.message.replace(/^device refused upload_\w+: /, '') };
        const dev = `the device refused it: ${report.refusal.message}`;
        report.why = report.why ? `${report.why}; ${dev}` : dev;
        await finishLink();
        return report;
      }
      throw e;
    }
    report.upload = {
      bytes: up.bytes, resumedFrom: up.resumedFrom, sentBytes: up.sentBytes, chunkBytes: up.chunkBytes, chunks: up.chunks,
      seconds: up.seconds, bytesPerSecond: up.bytesPerSecond, lineFraction: up.lineFraction, arena_used: up.arena_used,
      peak_scratch: up.peak_scratch, inShape: up.in, outShape: up.out,
    };
    report.arena = { used: up.arena_used, peakScratch: up.peak_scratch, available: hello.arena };
    const why: string[] = report.why ? [report.why] : [];
    if (budget && up.arena_used > budget.arena) why.push(`its arena needs ${up.arena_used} B, more than the ${budget.arena} B of ${budget.name}`);
    report.fits = why.length === 0;
    report.why = why.length ? why.join('; ') : null;

    const outN = up.out.reduce((a, b) => a * b, 1);
    const labels = ds.labels;
    const mode: 'classes' | 'values' = labels && !o.targets ? 'classes' : 'values';
    const tolerance = o.tolerance ?? 1e-3;
    const classes = mode === 'classes' ? outN : 0;
    const confusion = Array.from({ length: classes }, () => new Array<number>(classes).fill(0));
    let within = 0;
    let sqErr = 0;
    const tgt = { devSq: 0, deskSq: 0, devMax: 0, deskMax: 0 };
    const answers = new Uint16Array(ds.count);
    const us: number[] = [];
    const cycles: number[] = [];
    let devCorrect = 0;
    let deskCorrect = 0;
    let agree = 0;
    let maxErr = 0;
    let sumErr = 0;
    let nErr = 0;
    const t0 = performance.now();
    for (let i = 0; i < ds.count; i++) {
      const img = ds.images.subarray(i * per, (i + 1) * per);
      const r = u8 ? await client.infer(i, u8.subarray(i * per, (i + 1) * per), 255) : await client.infer(i, img);
      if (r.id !== i) throw new BridgeError('PROTOCOL', `sample ${i}: the answer is for sample ${r.id}`);
      answers[i]!++;
      const input = imagesAsInput(session.inputShapes[0], ds.shape, img, 1);
      const f32 = session.runBatch(input).data;
      const ref = int8 ? int8.runBatch(input).data : f32;
      if (ref.length !== r.y.length) throw new BridgeError('PROTOCOL', `sample ${i}: the device gave ${r.y.length} outputs, the workstation ${ref.length}`);
      let sampleMax = 0;
      let refMax = 0;
      for (let k = 0; k < ref.length; k++) {
        const d = Math.abs(ref[k]! - r.y[k]!);
        if (!(d <= sampleMax)) sampleMax = Number.isNaN(d) ? Infinity : d;
        refMax = Math.max(refMax, Math.abs(ref[k]!));
        sumErr += d;
        sqErr += d * d;
        nErr++;
      }
      if (!(sampleMax <= maxErr)) maxErr = sampleMax;
      if (o.targets) {
        const t = o.targets.data;
        for (let k = 0; k < ref.length; k++) {
          const want = t[i * ref.length + k]!;
          const dd = Math.abs(r.y[k]! - want);
          const dr = Math.abs(ref[k]! - want);
          tgt.devSq += dd * dd;
          tgt.deskSq += dr * dr;
          if (!(dd <= tgt.devMax)) tgt.devMax = Number.isNaN(dd) ? Infinity : dd;
          if (!(dr <= tgt.deskMax)) tgt.deskMax = Number.isNaN(dr) ? Infinity : dr;
        }
      }
      const dev = argmax(r.y);
      const desk = argmax(ref);
      const label = labels?.[i] ?? -1;
      if (int8) {
        if (ref.every((v, k) => Object.is(v, r.y[k]))) exact++;
        if (argmax(f32) === dev) f32Agree++;
        if (argmax(f32) === label) f32Correct++;
      }
      if (dev === label) devCorrect++;
      if (desk === label) deskCorrect++;
      const close = sampleMax <= tolerance * Math.max(1, refMax);
      if (close) within++;
      if (mode === 'classes' ? dev === desk : close) agree++;
      if (desk < classes && dev < classes) confusion[desk]![dev]!++;
      us.push(r.us);
      if (r.cycles !== undefined) cycles.push(r.cycles);
      report.samples.push([label, dev, desk, r.us]);
      report.logitErrors!.push(sampleMax);
      o.onProgress?.('infer', i + 1, ds.count);
      await o.onSample?.(i);
    }
    const unanswered: number[] = [];
    answers.forEach((n, i) => {
      if (n !== 1) unanswered.push(i);
    });
    report.results = {
      answered: ds.count - unanswered.length,
      unanswered,
      mode,
      deviceAccuracy: labels && ds.count ? devCorrect / ds.count : null,
      desktopAccuracy: labels && ds.count ? deskCorrect / ds.count : null,
      agreement: ds.count ? agree / ds.count : 0,
      values: mode === 'classes' ? null : {
        tolerance,
        withinTolerance: ds.count ? within / ds.count : 0,
        mse: nErr ? sqErr / nErr : 0,
        maxAbsError: maxErr,
        targets: o.targets && nErr ? {
          source: o.targets.source, deviceMse: tgt.devSq / nErr, desktopMse: tgt.deskSq / nErr,
          deviceMaxAbsError: tgt.devMax, desktopMaxAbsError: tgt.deskMax,
        } : null,
      },
      maxAbsLogitError: maxErr,
      meanAbsLogitError: nErr ? sumErr / nErr : 0,
      ...(int8 && ds.count ? { int8Full: { exact: exact / ds.count, f32Agreement: f32Agree / ds.count, f32Accuracy: labels ? f32Correct / ds.count : null } } : {}),
      latencyUs: percentiles(us),
      cycles: cycles.length ? percentiles(cycles) : null,
      confusion,
      seconds: (performance.now() - t0) / 1000,
    };
    await finishLink();
    return report;
  } finally {
    await client.close();
  }
}
