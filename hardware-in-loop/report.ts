// A HIL report three ways: the JSON object, a table for people, and a PNG of the confusion
// matrix of the device's top-1 against the workstation's (the diagonal is agreement).
import { writeFileAtomic } from '../converter/atomicWrite.js';
import type { PNG } from 'pngjs';
import { requireOptional } from '../runtime/optionalPackage.js';
import { formatBytes, table } from '../cli/table.js';
import type { HilReport } from './hil.js';

const pngjs = (): typeof PNG => requireOptional<typeof import('pngjs')>('pngjs', 'drawing a PNG picture').PNG;

const pct = (v: number) => `${(100 * v).toFixed(2)}%`;

/** The human table: one metric per row. */
export function reportTable(r: HilReport): string {
  const rows: Array<[string, string]> = [];
  rows.push(['model', `${r.model.path} (${formatBytes(r.model.bytes)})`]);
  rows.push(['device', `${r.device.board} ${r.device.fw}: ${formatBytes(r.device.flash)} model flash, ${formatBytes(r.device.arena)} arena, max frame ${r.device.max_frame} B`]);
  if (r.budget) rows.push(['budget', `${r.budget.name}`]);
  rows.push(['fits', r.fits ? 'yes' : `NO: ${r.why ?? 'refused'}`]);
  if (r.upload) {
    const u = r.upload;
    const line = u.lineFraction !== undefined ? `, ${pct(u.lineFraction)} of the ${r.link.baud} baud line rate` : ' (unpaced line)';
    rows.push(['upload', `${u.bytes - u.resumedFrom} B in ${u.seconds.toFixed(2)} s = ${u.bytesPerSecond.toFixed(0)} B/s${line}; ${u.chunks} chunks of ${u.chunkBytes} B${u.resumedFrom ? `, resumed at ${u.resumedFrom}` : ''}`]);
  }
  if (r.arena) rows.push(['arena', `${formatBytes(r.arena.used)} used of ${formatBytes(r.arena.available)} (peak scratch ${formatBytes(r.arena.peakScratch)})`]);
  const s = r.results;
  if (s) {
    rows.push(['samples', `${s.answered} answered of ${r.data.samples} (${r.data.name})${s.unanswered.length ? `; UNANSWERED: ${s.unanswered.slice(0, 10).join(', ')}` : ''}`]);
    if (s.deviceAccuracy !== null) rows.push(['top-1 device', pct(s.deviceAccuracy)]);
    if (s.desktopAccuracy !== null) rows.push(['top-1 desktop', pct(s.desktopAccuracy)]);
    if (s.values) {
      const v = s.values;
      rows.push(['within tolerance', `${pct(v.withinTolerance)} of samples (max|device - workstation| <= ${v.tolerance} x max(1, max|workstation|))`]);
      rows.push(['device vs workstation', `MSE ${v.mse.toExponential(3)}, max abs error ${v.maxAbsError.toExponential(3)}`]);
      if (v.targets) rows.push([`vs ${v.targets.source}`, `device MSE ${v.targets.deviceMse.toExponential(3)} (max ${v.targets.deviceMaxAbsError.toExponential(3)}), workstation MSE ${v.targets.desktopMse.toExponential(3)} (max ${v.targets.desktopMaxAbsError.toExponential(3)})`]);
    } else rows.push(['agreement', pct(s.agreement)]);
    rows.push(['logit error', `max ${s.maxAbsLogitError.toExponential(3)}, mean ${s.meanAbsLogitError.toExponential(3)}`]);
    if (s.int8Full) {
      rows.push(['int8-full exact', `${pct(s.int8Full.exact)} of samples: the device's int8 outputs are the integer reference's`]);
      rows.push(['vs f32 activations', `top-1 agreement ${pct(s.int8Full.f32Agreement)}${s.int8Full.f32Accuracy !== null ? `, its top-1 ${pct(s.int8Full.f32Accuracy)}` : ''}`]);
    }
    rows.push(['latency (device)', `p50 ${s.latencyUs.p50} us, p95 ${s.latencyUs.p95} us`]);
    if (s.cycles) rows.push(['cycles (device)', `p50 ${s.cycles.p50}, p95 ${s.cycles.p95}`]);
    rows.push(['run time', `${s.seconds.toFixed(1)} s`]);
  }
  const l = r.link;
  rows.push(['link', `${l.requests} requests, ${l.resends} resends, ${l.timeouts} timeouts, ${l.badFramesSeen} bad frames received, ${l.resets} device resets, ${l.reuploads} re-uploads`]);
  if (l.faults) {
    const f = (c: Record<string, number>) => `${c['flipped']} flips, ${c['dropped']} drops, ${c['duplicated']} dups, ${c['cut']} cuts`;
    rows.push(['faults injected', `${l.faults.spec}: to device ${f(l.faults.tx)}; from device ${f(l.faults.rx)}`]);
  }
  for (const l of r.layers ?? []) {
    const what = l.nodes.length > 1 ? `${l.nodes[l.nodes.length - 1]} (fused: ${l.ops.join(' > ')})` : `${l.nodes[0]} (${l.ops[0]})`;
    rows.push([`layer ${l.first}${l.last > l.first ? `-${l.last}` : ''}`, `${l.cycles} cycles, ${l.macs} MACs${l.perMac !== null ? `, ${l.perMac.toFixed(2)} per MAC` : ''}: ${what}`]);
  }
  if (r.deviceStats) rows.push(['device stats', Object.entries(r.deviceStats).map(([k, v]) => `${k} ${v}`).join(', ')]);
  return table(['', 'hardware in the loop'], rows);
}

/** The report without the per-sample list (for stdout); the file keeps everything. */
export function reportSummary(r: HilReport): Omit<HilReport, 'samples'> {
  const { samples: _samples, ...rest } = r;
  return rest;
}

export async function writeReportJson(path: string, r: HilReport): Promise<void> {
  await writeFileAtomic(path, `${JSON.stringify(r, null, 1)}\n`);
}

// ---- the picture --------------------------------------------------------------------------

/** A 3x5 pixel font: each glyph is 5 rows of 3 bits, top row first. */
const FONT: Record<string, string> = {
  '0': '111101101101111', '1': '010110010010111', '2': '111001111100111', '3': '111001111001111',
  '4': '101101111001001', '5': '111100111001111', '6': '111100111101111', '7': '111001010010010',
  '8': '111101111101111', '9': '111101111001111', A: '010101111101101', B: '110101110101110',
  C: '011100100100011', D: '110101101101110', E: '111100110100111', F: '111100110100100',
  G: '011100101101011', H: '101101111101101', I: '111010010010111', J: '001001001101010',
  K: '101101110101101', L: '100100100100111', M: '101111111101101', N: '110101101101101',
  O: '010101101101010', P: '110101110100100', Q: '010101101110011', R: '110101110101101',
  S: '011100010001110', T: '111010010010010', U: '101101101101111', V: '101101101101010',
  W: '101101111111101', X: '101101010101101', Y: '101101010010010', Z: '111001010100111',
  '%': '101001010100101', '.': '000000000000010', ':': '000010000010000', '-': '000000111000000',
  '/': '001001010100100', '(': '010100100100010', ')': '010001001001010', '=': '000111000111000',
  ',': '000000000010100', ' ': '000000000000000',
};

type Rgb = [number, number, number];

class Canvas {
  readonly png: PNG;
  constructor(readonly width: number, readonly height: number) {
    this.png = new (pngjs())({ width, height, colorType: 6 });
    this.rect(0, 0, width, height, [255, 255, 255]);
  }
  rect(x0: number, y0: number, w: number, h: number, c: Rgb): void {
    for (let y = Math.max(0, y0); y < Math.min(this.height, y0 + h); y++) {
      for (let x = Math.max(0, x0); x < Math.min(this.width, x0 + w); x++) {
        const o = 4 * (y * this.width + x);
        this.png.data[o] = c[0];
        this.png.data[o + 1] = c[1];
        this.png.data[o + 2] = c[2];
        this.png.data[o + 3] = 255;
      }
    }
  }
  /** Text at scale s (glyph 3s x 5s, advance 4s). */
  text(x: number, y: number, s: string, scale: number, c: Rgb = [0, 0, 0]): void {
    for (const ch of s.toUpperCase()) {
      const g = FONT[ch] ?? FONT[' ']!;
      for (let r = 0; r < 5; r++) for (let k = 0; k < 3; k++) if (g[r * 3 + k] === '1') this.rect(x + k * scale, y + r * scale, scale, scale, c);
      x += 4 * scale;
    }
  }
  static textWidth(s: string, scale: number): number {
    return s.length * 4 * scale - scale;
  }
}

/**
 * The confusion matrix of device top-1 (columns) against desktop top-1 (rows): agreeing cells in
 * green, shaded by their share of the row; disagreements in red; counts written in each cell.
 */
export function confusionPng(r: HilReport): Buffer {
  const m = r.results?.confusion ?? [];
  const n = m.length;
  const cell = 44;
  const left = 70;
  const top = 78;
  const width = Math.max(left + n * cell + 20, 520);
  const height = top + n * cell + 40;
  const c = new Canvas(width, height);
  const title = r.results
    ? `${r.results.values ? 'WITHIN TOLERANCE' : 'AGREEMENT'} ${(100 * r.results.agreement).toFixed(2)}%  N=${r.data.samples}  ${r.device.board}`
    : `NO RESULTS: ${r.why ?? ''}`;
  c.text(10, 10, title, 2);
  c.text(left + (n * cell) / 2 - Canvas.textWidth('DEVICE TOP-1', 2) / 2, 36, 'DEVICE TOP-1', 2);
  // Row label, drawn one letter per line down the left edge.
  'DESKTOP'.split('').forEach((ch, i) => c.text(8, top + 10 + i * 14, ch, 2));
  for (let i = 0; i < n; i++) {
    c.text(left + i * cell + cell / 2 - 3, top - 16, String(i), 2);
    c.text(left - 18, top + i * cell + cell / 2 - 5, String(i), 2);
    const rowSum = m[i]!.reduce((a, b) => a + b, 0);
    for (let j = 0; j < n; j++) {
      const v = m[i]![j]!;
      let col: Rgb = [238, 238, 238];
      if (v > 0 && i === j) {
        const t = rowSum ? v / rowSum : 0;
        col = [Math.round(200 - 170 * t), Math.round(235 - 95 * t), Math.round(200 - 170 * t)];
      } else if (v > 0) col = [220, 40, 40];
      c.rect(left + j * cell + 1, top + i * cell + 1, cell - 2, cell - 2, col);
      if (v > 0) {
        const s = String(v);
        const sc = s.length > 4 ? 1 : 2;
        const ink: Rgb = i === j && rowSum && v / rowSum > 0.5 ? [255, 255, 255] : i === j ? [0, 0, 0] : [255, 255, 255];
        c.text(left + j * cell + (cell - Canvas.textWidth(s, sc)) / 2, top + i * cell + (cell - 5 * sc) / 2, s, sc, ink);
      }
    }
  }
  return pngjs().sync.write(c.png);
}

export async function writeReportPng(path: string, r: HilReport): Promise<void> {
  await writeFileAtomic(path, confusionPng(r));
}
