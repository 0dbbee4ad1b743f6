// A johnny-five script on a factorlite board: read an analog pin, run the model on what the
// reading selects, drive a pin from the answer. Everything pin-related is johnny-five's ordinary
// API (Sensor, Led); the model runs on the board through the factorlite Firmata sysex.
//
//   node --import tsx firmware-bridge/host/examples/sensor.ts --port /dev/ttyACM0 --model m.flm \
//        [--images /usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz] [--pin A0] [--led 13] [--runs N]
//
// The 10-bit reading picks one of the first 100 test images (a stand-in for a camera); when the
// model calls it footwear (sandal, sneaker, ankle boot) the LED goes on. One line per run on stdout:
//   {"reading":700,"image":68,"class":7,"name":"sneaker","led":true}
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { gunzipSync } from 'node:zlib';
import { FactorliteBoard } from '../johnny.js';

const CLASSES = ['t-shirt', 'trouser', 'pullover', 'dress', 'coat', 'sandal', 'shirt', 'sneaker', 'bag', 'ankle boot'];
const FOOTWEAR = new Set([5, 7, 9]);
const IMAGES = 100;

function arg(name: string, fallback?: string): string {
  const i = process.argv.indexOf(`--${name}`);
  const v = i >= 0 ? process.argv[i + 1] : fallback;
  if (v === undefined) {
    process.stderr.write(`sensor: --${name} is required\n`);
    process.exit(2);
  }
  return v;
}

/** The first `n` images of an IDX3 file (optionally gzipped) as u8 pixels. */
function readImages(path: string, n: number): Uint8Array[] {
  let b = readFileSync(path);
  if (b[0] === 0x1f && b[1] === 0x8b) b = gunzipSync(b);
  if (b.readUInt32BE(0) !== 0x803) throw new Error(`${path} is not an IDX3 image file`);
  const count = b.readUInt32BE(4);
  const size = b.readUInt32BE(8) * b.readUInt32BE(12);
  return Array.from({ length: Math.min(n, count) }, (_, i) => new Uint8Array(b.subarray(16 + i * size, 16 + (i + 1) * size)));
}

const port = arg('port');
const model = new Uint8Array(readFileSync(arg('model')));
const images = readImages(arg('images', '/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz'), IMAGES);
const pin = arg('pin', 'A0');
const ledPin = Number(arg('led', '13'));
const runs = Number(arg('runs', '0')); // 0: forever

const five = createRequire(import.meta.url)('johnny-five');
const fl = await FactorliteBoard.open(port, { model, onUpload: (r) => process.stderr.write(`sensor: model uploaded (${r.bytes} B, arena ${r.arena_used} B)\n`) });
const sensor = new five.Sensor({ pin, board: fl.board, freq: 50 });
const led = new five.Led({ pin: ledPin, board: fl.board });

let done = 0;
let busy = false;
sensor.on('data', async () => {
  if (busy) return;
  busy = true;
  const reading: number = sensor.value;
  const image = Math.min(IMAGES - 1, Math.floor((reading / 1024) * IMAGES));
  try {
    const { top1 } = await fl.runModel(images[image]!);
    const on = FOOTWEAR.has(top1);
    if (on) led.on();
    else led.off();
    process.stdout.write(`${JSON.stringify({ reading, image, class: top1, name: CLASSES[top1] ?? String(top1), led: on })}\n`);
  } catch (e) {
    process.stderr.write(`sensor: ${(e as Error).message}\n`);
  }
  busy = false;
  if (runs > 0 && ++done >= runs) {
    sensor.disable();
    // Let the LED write leave before the port closes.
    setTimeout(() => void fl.close().then(() => process.exit(0)), 100);
  }
});
