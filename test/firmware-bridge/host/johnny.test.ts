// johnny-five against the emulated host-port firmware: Sensor reads a virtual analog pin, Led
// drives a virtual output, and runModel answers as the workstation runtime does; then the example
// script end to end.
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import t from 'tap';
import { decodeModelAnswer, FactorliteBoard, from7bitPairs, to7bitPairs } from '../../../firmware-bridge/host/johnny.js';
import { readFlm } from '../../../runtime/format/reader.js';
import { Session } from '../../../runtime/session.js';
import { argmax } from '../../../hardware-in-loop/hil.js';
import { REPO_ROOT } from '../../support/require.js';
import { convertModel, fashionPixels, needBoard, readModel, startDevice } from './device.js';

t.test('7-bit pair codec', async (t) => {
  const b = Uint8Array.from([0, 1, 127, 128, 200, 255]);
  t.same(to7bitPairs(b), [0, 0, 1, 0, 127, 0, 0, 1, 72, 1, 127, 1]);
  t.same([...from7bitPairs(to7bitPairs(b))], [...b]);
  const y = Float32Array.of(1.5, -2.25);
  const ans = [3, ...to7bitPairs(new Uint8Array(y.buffer))];
  const d = decodeModelAnswer(ans);
  t.equal(d.top1, 3);
  t.same([...d.logits], [1.5, -2.25]);
  t.throws(() => decodeModelAnswer([0x7f]), { code: 'NO_MODEL' });
});

const five = createRequire(import.meta.url)('johnny-five');

/** `p`, or a rejection after `ms` (so a silent board fails the test instead of hanging it). */
function within<T>(ms: number, what: string, p: Promise<T>): Promise<T> {
  return Promise.race([p, new Promise<T>((_, reject) => setTimeout(() => reject(new Error(`${what}: nothing within ${ms} ms`)), ms).unref())]);
}

if (needBoard(t, 'host')) {
  const path = await convertModel(t, "lenet5");
  const data = fashionPixels(t, 100);
  if (path && data) {
    const model = readModel(path);
    const session = Session.create(readFlm(model));
    const desktop = (i: number) => session.runBatch({ shape: [1, 1, 28, 28], data: data.ds.images.subarray(i * 784, (i + 1) * 784) }).data;

    await t.test('Sensor, Led and runModel through johnny-five', async (t) => {
      const dir = t.testdir();
      const pinsIn = join(dir, 'pins.in');
      const pinsOut = join(dir, 'pins.out');
      writeFileSync(pinsIn, 'A0 700\n');
      const { emu, serial } = await startDevice(t, 'host', { env: { FL_HOST_PINS: pinsIn, FL_HOST_PINS_OUT: pinsOut } });
      await serial.close(); // the adapter opens the port itself
      const fl = await FactorliteBoard.open(emu.pty, { model });
      t.teardown(() => fl.close());
      t.equal(fl.board.isReady, true, 'johnny-five is ready');

      const sensor = new five.Sensor({ pin: 'A0', board: fl.board, freq: 25 });
      const v = await within(5000, 'Sensor data', new Promise<number>((resolve) => sensor.once('data', () => resolve(sensor.value))));
      t.equal(v, 700, 'Sensor reads the virtual analog input');
      writeFileSync(pinsIn, 'A0 123\n');
      const v2 = await within(5000, 'Sensor change', new Promise<number>((resolve) => {
        const h = () => {
          if (sensor.value === 123) {
            sensor.off('data', h);
            resolve(sensor.value);
          }
        };
        sensor.on('data', h);
      }));
      t.equal(v2, 123, 'and follows it when it changes');
      sensor.disable();

      const led = new five.Led({ pin: 13, board: fl.board });
      led.on();
      await new Promise((r) => setTimeout(r, 200));
      t.match(readFileSync(pinsOut, 'utf8'), /^13 1 1$/m, 'Led.on() drives pin 13 high');
      led.off();
      await new Promise((r) => setTimeout(r, 200));
      t.match(readFileSync(pinsOut, 'utf8'), /^13 1 0$/m, 'Led.off() drives it low');

      for (const i of [0, 1, 2, 3, 4]) {
        const r = await fl.runModel(data.u8.subarray(i * 784, (i + 1) * 784));
        const ref = desktop(i);
        let err = 0;
        for (let k = 0; k < 10; k++) err = Math.max(err, Math.abs(ref[k]! - r.logits[k]!));
        t.ok(err < 1e-3, `image ${i}: logits within 1e-3 of the workstation (${err.toExponential(2)})`);
        t.equal(r.top1, argmax(r.logits), `image ${i}: top-1 is the largest logit`);
      }
    });

    await t.test('the example script: sensor -> model -> LED', async (t) => {
      const dir = t.testdir();
      const pinsIn = join(dir, 'pins.in');
      const pinsOut = join(dir, 'pins.out');
      writeFileSync(pinsIn, 'A0 700\n');
      const { emu, serial } = await startDevice(t, 'host', { env: { FL_HOST_PINS: pinsIn, FL_HOST_PINS_OUT: pinsOut } });
      await serial.close();
      const child = spawn(process.execPath, ['--import', 'tsx', join(REPO_ROOT, 'firmware-bridge/host/examples/sensor.ts'), '--port', emu.pty, '--model', path, '--runs', '1'], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      let err = '';
      child.stdout.on('data', (d) => (out += d));
      child.stderr.on('data', (d) => (err += d));
      const code = await new Promise<number | null>((r) => child.on('exit', r));
      t.equal(code, 0, `example exits 0 (${err.trim().split('\n').at(-1) ?? ''})`);
      const line = JSON.parse(out.trim().split('\n')[0]!);
      const image = Math.floor((700 / 1024) * 100);
      t.equal(line.reading, 700);
      t.equal(line.image, image);
      t.equal(line.class, argmax(desktop(image)), 'the class the workstation gives that image');
      const footwear = [5, 7, 9].includes(line.class);
      t.equal(line.led, footwear);
      t.match(readFileSync(pinsOut, 'utf8'), new RegExp(`^13 1 ${footwear ? 1 : 0}$`, 'm'), 'the LED pin follows');
    });
  }
}
