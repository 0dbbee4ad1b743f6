// Measures models on a firmware port: upload, plan arena, per-inference instruction count (QEMU
// -icount shift=0) or microseconds, and agreement with the Node runtime on Fashion-MNIST.
//   node --import tsx firmware-bridge/firmware/tools/measure.ts [--port cortex-m4|host] [--n N] [--json] model.flm...
// Builds and starts the port with hardware-in-loop/emulators.ts (make, QEMU). Progress on stderr; a table (or JSON) on stdout.
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { EmulatorError, ensureFirmware, firmwareBuildDir, startEmulator } from '../../../hardware-in-loop/emulators.js';
import { SerialTransport } from '../../host/transport.js';
import { BridgeClient } from '../../host/client.js';
import { readFlm } from '../../../runtime/format/reader.js';
import { Session } from '../../../runtime/session.js';
import { limitDataset, loadDataset } from '../../../converter/data/datasets.js';

const args = process.argv.slice(2);
let port: 'cortex-m4' | 'host' = 'cortex-m4';
let n = 20;
let json = false;
const models: string[] = [];
for (let i = 0; i < args.length; i++) {
  const a = args[i]!;
  if (a === '--port') port = args[++i] as typeof port;
  else if (a === '--n') n = Number(args[++i]);
  else if (a === '--json') json = true;
  else models.push(a);
}
if (!models.length || (port !== 'cortex-m4' && port !== 'host') || !(n > 0)) {
  process.stderr.write('usage: measure.ts [--port cortex-m4|host] [--n N] [--json] model.flm...\n');
  process.exit(1);
}
try {
  ensureFirmware(port, (line) => process.stderr.write(`${line}\n`));
} catch (e) {
  process.stderr.write(`measure: ${(e as EmulatorError).message}\n`);
  process.exit(1);
}
const size = JSON.parse(readFileSync(resolve(firmwareBuildDir(), port, 'size.json'), 'utf8')) as Record<string, number>;
const ds = limitDataset(loadDataset('fashion-mnist', 'test'), n);
const rows: Array<Record<string, unknown>> = [];
for (const file of models) {
  const bytes = new Uint8Array(readFileSync(file));
  const emulator = await startEmulator(port);
  const client = new BridgeClient(await SerialTransport.open(emulator.pty, {}), { prepareTimeoutMs: 60000, firstInferTimeoutMs: 60000 });
  const row: Record<string, unknown> = { model: file, bytes: bytes.length };
  try {
    const up = await client.upload(bytes);
    Object.assign(row, { arena_used: up.arena_used, peak_scratch: up.peak_scratch, upload_Bps: Math.round(up.bytesPerSecond) });
    const session = Session.create(readFlm(bytes));
    const ref = session.runBatch({ shape: [n, 1, 28, 28], data: ds.images.subarray(0, n * 784) }).data;
    let agree = 0;
    let maxErr = 0;
    const cyc: number[] = [];
    const us: number[] = [];
    for (let i = 0; i < n; i++) {
      const px = new Uint8Array(784);
      for (let p = 0; p < 784; p++) px[p] = Math.round(ds.images[i * 784 + p]! * 255);
      const r = await client.infer(i, px);
      let a = 0;
      let b = 0;
      for (let j = 0; j < 10; j++) {
        maxErr = Math.max(maxErr, Math.abs(r.y[j]! - ref[i * 10 + j]!));
        if (r.y[j]! > r.y[a]!) a = j;
        if (ref[i * 10 + j]! > ref[i * 10 + b]!) b = j;
      }
      if (a === b) agree++;
      if (r.cycles !== undefined) cyc.push(r.cycles);
      us.push(r.us);
      process.stderr.write(`\r${file}: ${i + 1}/${n}`);
    }
    process.stderr.write('\n');
    const med = (v: number[]) => (v.length ? [...v].sort((x, y) => x - y)[Math.floor(v.length / 2)] : undefined);
    Object.assign(row, { samples: n, agreement: agree / n, max_abs_err: maxErr, median_cycles: med(cyc), median_us: med(us) });
  } catch (e) {
    row['error'] = (e as Error).message;
  } finally {
    await client.close();
    await emulator.stop();
  }
  rows.push(row);
}
if (json) {
  process.stdout.write(JSON.stringify({ port, build: size, models: rows }, null, 2) + '\n');
} else {
  process.stdout.write(`port ${port}: flash ${size['flash']} B, RAM ${size['ram']} B (text ${size['text']}, data ${size['data']}, bss ${size['bss']})\n`);
  process.stdout.write('model | bytes | arena used | peak scratch | upload B/s | agreement | max |err| | median cycles | median us\n');
  for (const r of rows) {
    process.stdout.write(r['error'] ? `${r['model']} | ${r['bytes']} | error: ${r['error']}\n`
      : `${r['model']} | ${r['bytes']} | ${r['arena_used']} | ${r['peak_scratch']} | ${r['upload_Bps']} | ${((r['agreement'] as number) * 100).toFixed(1)}% | ${(r['max_abs_err'] as number).toExponential(2)} | ${r['median_cycles'] ?? '-'} | ${r['median_us']}\n`);
  }
}
process.exit(0);
