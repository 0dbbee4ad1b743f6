// Pictures of the explanations, encoded with pngjs: a heat map (a grid of values in [0, 1], each
// cell a scale x scale square, coloured through a perceptual colour map) and a bar chart (one
// horizontal panel per vector, one bar per value, heights relative to the panel's largest value).
// No text is drawn; each drawer returns the layout, which the command puts in its JSON.
import type { PNG } from 'pngjs';
import { requireOptional } from '../../runtime/optionalPackage.js';

const pngjs = (): typeof PNG => requireOptional<typeof import('pngjs')>('pngjs', 'drawing a PNG picture').PNG;

export type Rgb = [number, number, number];

/** Anchors of matplotlib's inferno at t = 0, 1/8, ..., 1 (interpolated linearly in between). */
const INFERNO: Rgb[] = [
  [0, 0, 4], [31, 12, 72], [85, 15, 109], [136, 34, 106], [186, 54, 85],
  [227, 89, 51], [249, 140, 10], [249, 201, 50], [252, 255, 164],
];
/** Anchors of viridis at t = 0, 1/8, ..., 1. */
const VIRIDIS: Rgb[] = [
  [68, 1, 84], [71, 44, 122], [59, 81, 139], [44, 113, 142], [33, 144, 141],
  [39, 173, 129], [92, 200, 99], [170, 220, 50], [253, 231, 37],
];
export const COLOR_MAPS = { inferno: INFERNO, viridis: VIRIDIS } as const;
export type ColorMapName = keyof typeof COLOR_MAPS;

/** The colour of t in [0, 1] (clamped; NaN as 0). */
export function colorAt(t: number, map: ColorMapName = 'inferno'): Rgb {
  const a = COLOR_MAPS[map];
  const x = Number.isFinite(t) ? Math.min(1, Math.max(0, t)) : 0;
  const f = x * (a.length - 1);
  const i = Math.min(a.length - 2, Math.floor(f));
  const u = f - i;
  const lo = a[i]!, hi = a[i + 1]!;
  return [0, 1, 2].map((c) => Math.round(lo[c]! + (hi[c]! - lo[c]!) * u)) as Rgb;
}

function canvas(width: number, height: number, bg: Rgb): PNG {
  const png = new (pngjs())({ width, height, colorType: 6 });
  for (let p = 0; p < width * height; p++) {
    png.data[4 * p] = bg[0];
    png.data[4 * p + 1] = bg[1];
    png.data[4 * p + 2] = bg[2];
    png.data[4 * p + 3] = 255;
  }
  return png;
}

function fillRect(png: PNG, x0: number, y0: number, w: number, h: number, c: Rgb): void {
  for (let y = Math.max(0, y0); y < Math.min(png.height, y0 + h); y++) {
    for (let x = Math.max(0, x0); x < Math.min(png.width, x0 + w); x++) {
      const o = 4 * (y * png.width + x);
      png.data[o] = c[0];
      png.data[o + 1] = c[1];
      png.data[o + 2] = c[2];
      png.data[o + 3] = 255;
    }
  }
}

export interface HeatMapLayout {
  type: 'heatmap';
  width: number;
  height: number;
  /** Grid cell (column x, row y) covers pixels [x*scale, (x+1)*scale) x [y*scale, (y+1)*scale). */
  cols: number;
  rows: number;
  scale: number;
  colorMap: ColorMapName;
  /** Value 0 is the colour map's first anchor (dark), 1 its last (bright). */
  range: [number, number];
}

/** A heat map of `values` (row-major rows x cols, in [0, 1]) as a PNG. */
export function drawHeatMap(values: ArrayLike<number>, cols: number, rows: number, opts: { scale?: number; colorMap?: ColorMapName } = {}): { png: Buffer; layout: HeatMapLayout } {
  if (values.length !== cols * rows) throw new Error(`draw: ${values.length} values for a ${rows}x${cols} heat map`);
  const scale = opts.scale ?? 10;
  const colorMap = opts.colorMap ?? 'inferno';
  const png = canvas(cols * scale, rows * scale, [0, 0, 0]);
  for (let y = 0; y < rows; y++) {
    for (let x = 0; x < cols; x++) fillRect(png, x * scale, y * scale, scale, scale, colorAt(values[y * cols + x]!, colorMap));
  }
  return {
    png: pngjs().sync.write(png),
    layout: { type: 'heatmap', width: cols * scale, height: rows * scale, cols, rows, scale, colorMap, range: [0, 1] },
  };
}

export interface BarPanelInput {
  name: string;
  values: number[];
  /** 'desc': bars sorted largest first (the order is reported); 'index': bar k is values[k]. */
  order?: 'desc' | 'index';
}

export interface BarPanelLayout {
  name: string;
  /** Panel rectangle in pixels (light grey background); bars stand on its bottom edge. */
  x: number;
  y: number;
  width: number;
  height: number;
  bars: number;
  /** Bar k starts at x + k*slot and is barWidth wide; its height is value / max * height. */
  slot: number;
  barWidth: number;
  max: number;
  order: 'desc' | 'index';
  /** For 'desc': the index into `values` of each bar, left to right. */
  indices?: number[];
}

export interface BarChartLayout {
  type: 'bars';
  width: number;
  height: number;
  /** Bars are coloured by their height through this colour map (short dark, tall bright). */
  colorMap: ColorMapName;
  panels: BarPanelLayout[];
}

const MARGIN = 10;
const PANEL_H = 120;
const PLOT_W = 768;
const PANEL_BG: Rgb = [235, 235, 235];

/** Bar panels stacked top to bottom, on white, each PLOT_W wide at most. */
export function drawBarChart(panels: BarPanelInput[], opts: { colorMap?: ColorMapName } = {}): { png: Buffer; layout: BarChartLayout } {
  if (panels.length === 0) throw new Error('draw: a bar chart needs at least one panel');
  const colorMap = opts.colorMap ?? 'viridis';
  const laid: Array<{ p: BarPanelLayout; vals: number[] }> = panels.map((panel, k) => {
    const n = Math.max(1, panel.values.length);
    const slot = Math.max(1, Math.min(16, Math.floor(PLOT_W / n)));
    const barWidth = slot >= 3 ? slot - 1 : slot;
    const order = panel.order ?? 'index';
    const indices = order === 'desc' ? [...panel.values.keys()].sort((a, b) => panel.values[b]! - panel.values[a]! || a - b) : undefined;
    const vals = indices ? indices.map((i) => panel.values[i]!) : [...panel.values];
    const max = Math.max(0, ...vals.filter(Number.isFinite));
    const p: BarPanelLayout = {
      name: panel.name, x: MARGIN, y: MARGIN + k * (PANEL_H + MARGIN), width: slot * n, height: PANEL_H,
      bars: panel.values.length, slot, barWidth, max, order, ...(indices ? { indices } : {}),
    };
    return { p, vals };
  });
  const width = 2 * MARGIN + Math.max(...laid.map((l) => l.p.width));
  const height = MARGIN + panels.length * (PANEL_H + MARGIN);
  const png = canvas(width, height, [255, 255, 255]);
  for (const { p, vals } of laid) {
    fillRect(png, p.x, p.y, p.width, p.height, PANEL_BG);
    vals.forEach((v, k) => {
      const t = p.max > 0 && Number.isFinite(v) ? Math.max(0, v) / p.max : 0;
      const h = Math.round(t * p.height);
      if (h > 0) fillRect(png, p.x + k * p.slot, p.y + p.height - h, p.barWidth, h, colorAt(0.15 + 0.85 * t, colorMap));
    });
  }
  return { png: pngjs().sync.write(png), layout: { type: 'bars', width, height, colorMap, panels: laid.map((l) => l.p) } };
}

export interface CurvePanelInput {
  /** y at evenly spaced x from x[0] to x[x.length − 1] (the same length as y). */
  x: number[];
  y: number[];
  /** The part of x drawn on a lighter background (a branch's fitted range); none when absent. */
  band?: [number, number];
}

export interface CurvePanelLayout {
  /** Panel rectangle in pixels; column c of it shows x = x0 + c / (width − 1) · (x1 − x0). */
  x: number;
  y: number;
  width: number;
  height: number;
  x0: number;
  x1: number;
  /** Pixel row r of the panel shows value y1 − r / (height − 1) · (y1 − y0). */
  y0: number;
  y1: number;
  /** The band's pixel columns [from, to] (inclusive), when there is one. */
  band?: [number, number];
}

export interface CurveGridLayout {
  type: 'curves';
  width: number;
  height: number;
  cols: number;
  rows: number;
  panels: CurvePanelLayout[];
}

const CURVE_W = 140;
const CURVE_H = 100;
const BAND_BG: Rgb = [250, 250, 250];
const OUT_BG: Rgb = [222, 222, 222];
const AXIS: Rgb = [170, 170, 170];
const LINE: Rgb = [33, 102, 172];

/**
 * Small multiples: one panel per curve in a grid of about √n columns, each curve on its own y
 * scale, its band on a lighter ground, the axis y = 0 in grey where it is in view. The curve is
 * drawn by joining consecutive pixel columns with vertical runs, so steep parts stay connected.
 */
export function drawCurveGrid(curves: CurvePanelInput[]): { png: Buffer; layout: CurveGridLayout } {
  if (curves.length === 0) throw new Error('draw: a curve grid needs at least one curve');
  const cols = Math.ceil(Math.sqrt(curves.length));
  const rows = Math.ceil(curves.length / cols);
  const width = MARGIN + cols * (CURVE_W + MARGIN);
  const height = MARGIN + rows * (CURVE_H + MARGIN);
  const png = canvas(width, height, [255, 255, 255]);
  const panels = curves.map((c, k): CurvePanelLayout => {
    if (c.x.length !== c.y.length || c.x.length < 2) throw new Error(`draw: curve ${k} needs as many x as y, at least 2`);
    const px = MARGIN + (k % cols) * (CURVE_W + MARGIN);
    const py = MARGIN + Math.floor(k / cols) * (CURVE_H + MARGIN);
    const x0 = c.x[0]!, x1 = c.x[c.x.length - 1]!;
    const finite = c.y.filter(Number.isFinite);
    let y0 = Math.min(0, ...finite), y1 = Math.max(0, ...finite);
    if (!(y1 > y0)) { y0 -= 1; y1 += 1; }
    const pad = 0.05 * (y1 - y0);
    y0 -= pad;
    y1 += pad;
    const col = (x: number) => Math.round(((x - x0) / (x1 - x0 || 1)) * (CURVE_W - 1));
    const row = (y: number) => Math.round(((y1 - y) / (y1 - y0)) * (CURVE_H - 1));
    fillRect(png, px, py, CURVE_W, CURVE_H, c.band ? OUT_BG : BAND_BG);
    let band: [number, number] | undefined;
    if (c.band) {
      band = [Math.max(0, col(c.band[0])), Math.min(CURVE_W - 1, col(c.band[1]))];
      fillRect(png, px + band[0], py, band[1] - band[0] + 1, CURVE_H, BAND_BG);
    }
    fillRect(png, px, py + row(0), CURVE_W, 1, AXIS);
    // The value at every pixel column, interpolated linearly between the given points.
    let prev: number | undefined;
    for (let cx = 0; cx < CURVE_W; cx++) {
      const x = x0 + (cx / (CURVE_W - 1)) * (x1 - x0);
      const f = ((x - x0) / (x1 - x0 || 1)) * (c.x.length - 1);
      const i = Math.min(c.x.length - 2, Math.max(0, Math.floor(f)));
      const u = f - i;
      const y = c.y[i]! + (c.y[i + 1]! - c.y[i]!) * u;
      if (!Number.isFinite(y)) { prev = undefined; continue; }
      const r = Math.min(CURVE_H - 1, Math.max(0, row(y)));
      const lo = prev === undefined ? r : Math.min(prev, r);
      const hi = prev === undefined ? r : Math.max(prev, r);
      fillRect(png, px + cx, py + lo, 1, hi - lo + 1, LINE);
      prev = r;
    }
    return { x: px, y: py, width: CURVE_W, height: CURVE_H, x0, x1, y0, y1, ...(band ? { band } : {}) };
  });
  return { png: pngjs().sync.write(png), layout: { type: 'curves', width, height, cols, rows, panels } };
}
