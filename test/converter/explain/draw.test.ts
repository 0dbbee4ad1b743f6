// The pictures decode with pngjs to the sizes their layouts state, and the heat map is brightest
// where the importance is largest.
import { PNG } from 'pngjs';
import t from 'tap';
import { colorAt, drawBarChart, drawHeatMap } from '../../../converter/explain/draw.js';
import { rng } from './helpers.js';

function brightest(png: PNG): [number, number] {
  let best = -1, bx = 0, by = 0;
  for (let y = 0; y < png.height; y++) for (let x = 0; x < png.width; x++) {
    const o = 4 * (y * png.width + x);
    const l = 0.2126 * png.data[o]! + 0.7152 * png.data[o + 1]! + 0.0722 * png.data[o + 2]!;
    if (l > best) { best = l; bx = x; by = y; }
  }
  return [bx, by];
}

t.test('heat map: 28x28 x10, brightest cell at the most important pixel', async (t) => {
  const r = rng(2);
  const values = Array.from({ length: 784 }, () => 0.9 * r());
  values[5 * 28 + 17] = 1;
  const { png, layout } = drawHeatMap(values, 28, 28, { scale: 10 });
  const img = PNG.sync.read(png);
  t.equal(img.width, 280);
  t.equal(img.height, 280);
  t.same([layout.width, layout.height, layout.scale, layout.colorMap], [280, 280, 10, 'inferno']);
  const [x, y] = brightest(img);
  t.same([Math.floor(x / 10), Math.floor(y / 10)], [17, 5], 'brightest pixel in cell (row 5, col 17)');
});

t.test('colour map luminance rises with the value', async (t) => {
  let prev = -1;
  for (let k = 0; k <= 64; k++) {
    const [r, g, b] = colorAt(k / 64, 'inferno');
    const l = 0.2126 * r + 0.7152 * g + 0.0722 * b;
    t.ok(l >= prev - 1e-9, `t=${k / 64}`);
    prev = l;
  }
  t.same(colorAt(0), [0, 0, 4]);
  t.same(colorAt(1), [252, 255, 164]);
});

t.test('bar chart: size and bars as the layout says', async (t) => {
  const values = [1, 5, 2, 10, 0];
  const { png, layout } = drawBarChart([{ name: 'terms', values, order: 'desc' }, { name: 'maps', values: Array.from({ length: 300 }, (_, i) => i) }]);
  const img = PNG.sync.read(png);
  t.equal(img.width, layout.width);
  t.equal(img.height, layout.height);
  t.equal(layout.panels.length, 2);
  const p = layout.panels[0]!;
  t.same(p.indices, [3, 1, 2, 0, 4], 'sorted largest first');
  t.equal(p.max, 10);
  // The first bar (value 10) fills the panel to its top; the last (0) leaves the background.
  const px = (x: number, y: number) => Array.from(img.data.subarray(4 * (y * img.width + x), 4 * (y * img.width + x) + 3));
  t.notSame(px(p.x + 1, p.y + 1), [235, 235, 235], 'tallest bar reaches the top');
  t.same(px(p.x + 4 * p.slot + 1, p.y + p.height - 1), [235, 235, 235], 'zero bar is empty');
  t.same(px(p.x + 1 * p.slot + 1, p.y + 1), [235, 235, 235], 'half bar does not reach the top');
  t.notSame(px(p.x + 1 * p.slot + 1, p.y + p.height - 2), [235, 235, 235], 'half bar stands on the bottom');
});
