// Measures models on a firmware port: upload, plan arena, per-inference instruction count (QEMU
// -icount shift=0) or microseconds, and agreement with the Node runtime on Fashion-MNIST.
//   node --import tsx firmware-bridge/firmware/tools/measure.ts [--port cortex-m4|host] [--n N] [--json] model.flm...
// Builds the port first (make). Progress on stderr; a table (or JSON) on stdout.
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { SerialTransport } from '../../host/transport.js';
import { BridgeClient } from '../../host/client.js';
import { readFlm } from '../../../runtime/format/reader.js';
import { Session } from '../../../runtime/session.js';
import { limitDataset, loadDataset } from '../../../converter/data/datasets.js';

const FW = resolve(dirname(fileURLToPath(import.meta.url)), '..');
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
const mk = spawnSync('make', ['-s', '-C', FW, port], { encoding: 'utf8' });
if (mk.status !== 0) {
  process.stderr.write(`measure: make ${port} failed: ${mk.stderr}\n`);
  process.exit(1);
}
const size = JSON.parse(readFileSync(resolve(FW, 'build', port, 'size.json'), 'utf8')) as Record<string, number>;
const ds = limitDataset(loadDataset('fashion-mnist', 'test'), n);
const rows: Array<Record<string, unknown>> = [];
for (const file of models) {
  const bytes = new Uint8Array(readFileSync(file));
  const proc = port === 'host'
    ? spawn(resolve(FW, 'build/host/fl-host'), [], { stdio: ['ignore', 'pipe', 'pipe'] })
    : spawn('qemu-system-arm', ['-M', 'mps2-an386', '-nographic', '-monitor', 'none', '-serial', 'pty', '-icount', 'shift=0', '-kernel', resolve(FW, 'build/cortex-m4/fw.elf')], { stdio: ['ignore', 'pipe', 'pipe'] });
  const path = await new Promise<string>((res) => {
    for (const s of [proc.stdout!, proc.stderr!]) createInterface({ input: s }).on('line', (l) => { const m = /(\/dev\/pts\/\d+)/.exec(l); if (m) res(m[1]!); });
  });
  const client = new BridgeClient(await SerialTransport.open(path, {}), { prepareTimeoutMs: 60000, firstInferTimeoutMs: 60000 });
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
    proc.kill();
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
