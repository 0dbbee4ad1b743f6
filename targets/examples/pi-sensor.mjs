// On a Raspberry Pi: an Arduino running StandardFirmata on the Pi's serial port feeds sensor
// readings through johnny-five; the model runs on the Pi in the factorlite runtime.
//
//   npm install factorlite-runtime johnny-five
//   node pi-sensor.mjs --port /dev/ttyACM0 --model m.flm [--pins A0,A1,A2] [--every 100]
//
// The model takes one window of readings: its input shape [N, ...] gives the window size, filled
// with the latest readings of the pins in turn, each scaled from 0..1023 to [0, 1]. One JSON line per
// inference on stdout: {"t":..., "class":3, "logits":[...]}. Untested on a board (the repository's
// tests run the runtime and the johnny-five adapter on emulated boards only).
import { createRequire } from 'node:module';
import { load } from 'factorlite-runtime';

const arg = (name, fallback) => {
  const i = process.argv.indexOf(`--${name}`);
  const v = i >= 0 ? process.argv[i + 1] : fallback;
  if (v === undefined) {
    process.stderr.write(`pi-sensor: --${name} is required\n`);
    process.exit(2);
  }
  return v;
};

const m = await load(arg('model'));
const inShape = m.session.inputShapes[0].map((d, k) => (k === 0 || d < 0 ? 1 : d));
const window = inShape.reduce((a, d) => a * d, 1);
const pins = arg('pins', 'A0').split(',');
const every = Number(arg('every', '100'));

const five = createRequire(import.meta.url)('johnny-five');
const board = new five.Board({ port: arg('port'), repl: false, debug: false });
board.on('ready', () => {
  const x = new Float32Array(window);
  let filled = 0;
  const sensors = pins.map((pin) => new five.Sensor({ pin, freq: every }));
  sensors[0].on('data', () => {
    // Shift the window left by one reading per pin and append the newest readings.
    x.copyWithin(0, pins.length);
    sensors.forEach((s, k) => (x[window - pins.length + k] = s.value / 1023));
    filled = Math.min(window, filled + pins.length);
    if (filled < window) return;
    const y = m.run({ shape: inShape, data: x });
    let best = 0;
    for (let i = 1; i < y.data.length; i++) if (y.data[i] > y.data[best]) best = i;
    process.stdout.write(`${JSON.stringify({ t: Date.now(), class: best, logits: Array.from(y.data, (v) => +v.toFixed(4)) })}\n`);
  });
});
