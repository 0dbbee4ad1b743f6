// MLPerf Tiny text sessions (docs/PROTOCOL.md section 5) sent as raw text over the pty, on the
// host port and on the cortex-m4 port under QEMU; the results must equal the Node runtime's
// logits for the same image (u8 pixels / 255). The QEMU part also checks the binary upload,
// reset (boot count grows, the model store survives), the icount cycle count, and that a model
// larger than the board's 256 KB flash is refused before any byte is sent.
import t from 'tap';
import { readFileSync } from 'node:fs';
import { needFashion } from '../../support/require.js';
import { Frames, Line, argmax, buildPort, convert, fashion, reference, startDevice } from './support.js';

const TOL = 1e-3;

function hex(b: Uint8Array): string {
  return Buffer.from(b).toString('hex');
}

function parseResults(lines: string[]): number[] {
  const r = lines.find((l) => l.startsWith('m-results-['));
  if (!r) throw new Error(`no m-results line in ${JSON.stringify(lines)}`);
  return r.slice('m-results-['.length, -1).split(',').map(Number);
}

async function session(t: Test, line: Line, image: Uint8Array, ref: Float32Array): Promise<void> {
  t.same(await line.text('name%'), ['m-name-dut-[factorlite]', 'm-ready'], 'name');
  const ts = await line.text('timestamp%');
  t.match(ts[0], /^m-lap-us-\d+$/, 'timestamp');
  t.equal(ts[ts.length - 1], 'm-ready');
  t.same(await line.text(`db load ${image.length}%`), [`m-[Expecting ${image.length} bytes]`, 'm-ready'], 'db load');
  const h = hex(image);
  let last: string[] = [];
  for (let i = 0; i < h.length; i += 128) last = await line.text(`db ${h.slice(i, i + 128)}%`);
  t.same(last, ['m-load-done', 'm-ready'], 'the last db chunk completes the buffer');
  const pr = await line.text('db print%');
  t.equal(pr[0], `m-buffer-${h}`, 'db print shows the loaded bytes');
  const inf = await line.text('infer 1 0%', 60000);
  t.equal(inf[0], 'm-infer-start-1', 'infer starts');
  t.equal(inf.filter((l) => /^m-lap-us-\d+$/.test(l)).length, 2, 'two laps');
  t.ok(inf.includes('m-infer-done'), 'infer done');
  t.equal(inf[inf.length - 1], 'm-ready');
  const res = await line.text('results%');
  const y = parseResults(res);
  t.same(parseResults(inf), y, 'infer prints the same results as results%');
  t.equal(y.length, ref.length, 'one result per logit');
  let worst = 0;
  for (let i = 0; i < y.length; i++) worst = Math.max(worst, Math.abs(y[i]! - ref[i]!) / Math.max(1, Math.abs(ref[i]!)));
  t.ok(worst <= TOL, `results equal the Node runtime's logits (max scaled error ${worst.toExponential(2)})`);
  t.equal(argmax(y, 0, y.length), argmax(ref, 0, ref.length), 'same top-1');
  const unknown = await line.text('bogus%');
  t.match(unknown[0], /^e-\[Unknown command: bogus\]$/, 'unknown command answered with an error line');
}
type Test = typeof t;

t.test('host port: MLPerf Tiny session over the pty', async (t) => {
  const bin = buildPort(t, 'host');
  if (!bin || !needFashion(t)) return;
  const file = await convert(t, 'mlp', 'svd', 'int8');
  if (!file) return;
  const { u8, f32 } = fashion(1);
  const ref = reference(file, f32, 1);
  const dev = await startDevice('host', bin, ['--model', file]);
  t.teardown(() => dev.stop());
  const line = await Line.open(dev.path);
  t.teardown(() => line.close());
  await session(t, line, u8, ref);
  // the same input as f32 LE (4 x the element count)
  const f = new Uint8Array(f32.buffer, f32.byteOffset, f32.byteLength);
  t.same(await line.text(`db load ${f.length}%`), [`m-[Expecting ${f.length} bytes]`, 'm-ready']);
  const h = hex(f);
  for (let i = 0; i < h.length; i += 512) await line.text(`db ${h.slice(i, i + 512)}%`);
  const y = parseResults(await line.text('infer 2 1%'));
  let worst = 0;
  for (let i = 0; i < y.length; i++) worst = Math.max(worst, Math.abs(y[i]! - ref[i]!) / Math.max(1, Math.abs(ref[i]!)));
  t.ok(worst <= TOL, `f32 input gives the same logits (max scaled error ${worst.toExponential(2)})`);
});

t.test('cortex-m4 under QEMU: upload, MLPerf session, cycles, reset, too-large model', async (t) => {
  const elf = buildPort(t, 'cortex-m4');
  if (!elf || !needFashion(t)) return;
  const file = await convert(t, 'mlp', 'svd', 'int8');
  if (!file) return;
  const { u8, f32 } = fashion(1);
  const ref = reference(file, f32, 1);
  const dev = await startDevice('cortex-m4', elf);
  t.teardown(() => dev.stop());
  const line = await Line.open(dev.path);
  t.teardown(() => line.close());
  const frames = new Frames(line);
  const hello = await frames.call(0x01);
  t.equal(hello.kind, 0x81, 'hello answered');
  t.equal(hello.body['flash'], 256 * 1024, 'the board stores models up to 256 KB');
  t.equal(hello.body['arena'], 128 * 1024, 'arena of 128 KB');
  const boot = hello.body['boot'] as number;
  // a model larger than the flash (the dense int8 LeNet-5 is 431 KB) is refused before any byte
  const big = await frames.call(0x02, { size: 431 * 1024, crc: 1 });
  t.equal(big.kind, 0xff, 'oversized upload_begin is an error');
  t.equal(big.body['code'], 'TOO_LARGE', 'TOO_LARGE');
  const model = new Uint8Array(readFileSync(file));
  const end = await frames.upload(model);
  t.equal(end.kind, 0x84, `upload_end accepted the model ${JSON.stringify(end.body)}`);
  t.equal(end.body['ready'], true);
  // infer through a frame: u8 pixels with div 255
  const inf = await frames.call(0x05, { id: 7, x: u8, dtype: 'u8', div: 255 }, 60000);
  t.equal(inf.kind, 0x85, 'infer answered');
  t.equal(inf.body['id'], 7);
  const yb = inf.body['y'] as Uint8Array;
  const y = new Float32Array(yb.buffer.slice(yb.byteOffset, yb.byteOffset + yb.byteLength));
  let worst = 0;
  for (let i = 0; i < y.length; i++) worst = Math.max(worst, Math.abs(y[i]! - ref[i]!) / Math.max(1, Math.abs(ref[i]!)));
  t.ok(worst <= TOL, `frame infer equals the Node runtime (max scaled error ${worst.toExponential(2)})`);
  t.ok((inf.body['cycles'] as number) > 0, `instruction count reported: ${inf.body['cycles']}`);
  const again = await frames.call(0x05, { id: 8, x: u8, dtype: 'u8', div: 255 }, 60000);
  // SysTick counts 40-ns ticks (25 MHz), so the count is exact up to one tick's phase
  t.ok(Math.abs((again.body['cycles'] as number) - (inf.body['cycles'] as number)) <= 40,
    `the instruction count repeats within one 40-instruction SysTick tick (${inf.body['cycles']}, ${again.body['cycles']})`);
  // the text dialect after 200 ms of silence on the binary line
  await new Promise((r) => setTimeout(r, 300));
  await session(t, line, u8, ref);
  // reset: answered first, then the board reboots with its model store
  const rs = await frames.call(0x07);
  t.equal(rs.kind, 0x87, 'reset answered');
  await new Promise((r) => setTimeout(r, 500));
  const h2 = await frames.call(0x01);
  t.equal(h2.body['boot'], boot + 1, 'boot count grew');
  t.same((h2.body['model'] as Record<string, unknown>)['ready'], true, 'the model store survived SYSRESETREQ');
});
