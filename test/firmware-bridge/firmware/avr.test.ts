// The ATmega2560 port in simavr: the runner (simavr-pty), the port's UART, clock, flash store,
// EEPROM meta and watchdog reset (through the echo self-test firmware), and an MLPerf Tiny text
// session on a factorised FC-2 whose logits are compared with the Node runtime.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { SerialPort } from 'serialport';
import t, { type Test } from 'tap';
import { BridgeClient } from '../../../firmware-bridge/host/client.js';
import { FaultyTransport, parseFaultSpec, SerialTransport } from '../../../firmware-bridge/host/transport.js';
import { readFlm } from '../../../runtime/format/reader.js';
import { Session } from '../../../runtime/session.js';
import { loadDataset } from '../../../converter/data/datasets.js';
import { FASHION_DIR, needFashion, needPath, REPO_ROOT } from '../../support/require.js';
import { writeFlm } from '../../../converter/writer.js';
import { convert } from './support.js';
import { lcg, smallModel } from '../../../bench/lib/avrModel.js';

const FW = resolve(REPO_ROOT, 'firmware-bridge/firmware');
const BUILD = mkdtempSync(join(tmpdir(), 'fl-avr-'));
t.teardown(() => rmSync(BUILD, { recursive: true, force: true }));

/** avr-gcc, avr-libc and the simavr headers; a missing one skips (fails under FACTORLITE_CI=1). */
function needToolchain(t: Test): boolean {
  return needPath(t, '/usr/bin/avr-gcc', 'avr-gcc (Debian package gcc-avr)')
    && needPath(t, '/usr/lib/avr/include/avr/io.h', 'avr-libc headers (Debian package avr-libc)')
    && needPath(t, '/usr/include/simavr/sim_avr.h', 'simavr headers (Debian package libsimavr-dev)');
}

function make(t: Test, target: string): boolean {
  const r = spawnSync('make', ['-f', 'ports/avr/port.mk', target, `AVR_BUILD=${BUILD}`], { cwd: FW, encoding: 'utf8' });
  if (r.status !== 0) {
    t.fail(`make ${target} failed:\n${r.stdout}\n${r.stderr}`);
    return false;
  }
  return true;
}

/** A running simavr-pty: its stdout lines and its pty. */
class Runner {
  readonly lines: string[] = [];
  private waiters: Array<() => void> = [];
  exited: Promise<number | null>;
  private constructor(readonly proc: ChildProcess, readonly path: string) {
    this.exited = new Promise((res) => proc.once('exit', (code) => res(code)));
  }

  static async start(elf: string): Promise<Runner> {
    const proc = spawn(join(BUILD, 'simavr-pty'), ['--quiet', elf], { stdio: ['pipe', 'pipe', 'inherit'] });
    let buf = '';
    let runner: Runner | undefined;
    const path = await new Promise<string>((res, rej) => {
      const timer = setTimeout(() => rej(new Error('simavr-pty printed no pty line within 10 s')), 10000);
      proc.once('exit', (code) => rej(new Error(`simavr-pty exited (${code}) before printing its pty`)));
      proc.stdout!.on('data', (d: Buffer) => {
        buf += d.toString('utf8');
        let nl: number;
        while ((nl = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, nl);
          buf = buf.slice(nl + 1);
          if (!runner) {
            clearTimeout(timer);
            const m = /^pty (\/dev\/\S+)$/.exec(line);
            if (!m) return rej(new Error(`first line of simavr-pty is not "pty PATH": ${line}`));
            runner = new Runner(proc, m[1]!);
            res(m[1]!);
          } else {
            runner.lines.push(line);
            for (const w of runner.waiters.splice(0)) w();
          }
        }
      });
    });
    void path;
    return runner!;
  }

  async waitLine(re: RegExp, ms = 10000): Promise<string> {
    const deadline = Date.now() + ms;
    for (;;) {
      const hit = this.lines.find((l) => re.test(l));
      if (hit) return hit;
      if (Date.now() > deadline) throw new Error(`no runner line matching ${re} (got: ${this.lines.join(' | ')})`);
      await new Promise<void>((res) => {
        const timer = setTimeout(res, 200);
        this.waiters.push(() => {
          clearTimeout(timer);
          res();
        });
      });
    }
  }

  async stop(): Promise<number | null> {
    if (this.proc.exitCode === null) this.proc.kill('SIGTERM');
    return this.exited;
  }
}

/** The pty through serialport, with a receive buffer. */
class Line {
  private rx = Buffer.alloc(0);
  private waiters: Array<() => void> = [];
  private constructor(readonly port: SerialPort) {
    port.on('data', (d: Buffer) => {
      this.rx = Buffer.concat([this.rx, d]);
      for (const w of this.waiters.splice(0)) w();
    });
  }

  static open(path: string): Promise<Line> {
    return new Promise((res, rej) => {
      const port = new SerialPort({ path, baudRate: 115200, autoOpen: false, hupcl: false });
      port.open((err) => (err ? rej(err) : res(new Line(port))));
    });
  }

  write(b: Buffer | string): void {
    this.port.write(typeof b === 'string' ? Buffer.from(b, 'latin1') : b);
  }

  /** Waits until `n` bytes are buffered, then takes them. */
  async take(n: number, ms = 30000): Promise<Buffer> {
    const deadline = Date.now() + ms;
    while (this.rx.length < n) {
      if (Date.now() > deadline) throw new Error(`timed out with ${this.rx.length} of ${n} bytes`);
      await this.wait(250);
    }
    const out = this.rx.subarray(0, n);
    this.rx = this.rx.subarray(n);
    return out;
  }

  /** Takes text up to and including the first line that matches `re`. */
  async until(re: RegExp, ms = 30000): Promise<string[]> {
    const deadline = Date.now() + ms;
    for (;;) {
      const text = this.rx.toString('latin1');
      const lines = text.split('\n');
      for (let i = 0; i < lines.length - 1; i++) {
        if (re.test(lines[i]!.replace(/\r$/, ''))) {
          const used = lines.slice(0, i + 1).join('\n').length + 1;
          this.rx = this.rx.subarray(used);
          return lines.slice(0, i + 1).map((l) => l.replace(/\r$/, ''));
        }
      }
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${re}; have: ${JSON.stringify(text.slice(-300))}`);
      await this.wait(250);
    }
  }

  /** One echo-firmware command; returns its "= ..." answer. */
  async cmd(s: string): Promise<string> {
    this.write(`!${s}\n`);
    const lines = await this.until(/^= /);
    return lines[lines.length - 1]!.slice(2);
  }

  private wait(ms: number): Promise<void> {
    return new Promise((res) => {
      const timer = setTimeout(res, ms);
      this.waiters.push(() => {
        clearTimeout(timer);
        res();
      });
    });
  }

  close(): Promise<void> {
    return new Promise((res) => (this.port.isOpen ? this.port.close(() => res()) : res()));
  }
}

/** Deterministic pseudo-random bytes without '!' (the echo firmware's command prefix) or '\n'. */
function noise(n: number, seed: number): Buffer {
  const b = Buffer.alloc(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    let v = s >>> 24;
    if (v === 0x21 || v === 0x0a) v ^= 0x40;
    b[i] = v;
  }
  return b;
}

t.test('port self-test firmware in simavr: UART, clock, flash store, meta, resets', async (t) => {
  if (!needToolchain(t)) return;
  if (!make(t, 'avr-echo')) return;
  const runner = await Runner.start(join(BUILD, 'echo.elf'));
  t.match(runner.path, /^\/dev\/pts\/\d+$/, 'first stdout line names the pty');
  const line = await Line.open(runner.path);
  t.teardown(async () => {
    await line.close();
    await runner.stop();
  });

  line.write('hello avr\n');
  t.equal((await line.take(10)).toString(), 'hello avr\n', 'bytes come back through UART0');
  t.equal(await line.cmd('b'), 'boot 1', 'first boot');

  // Flow control: far more bytes in one write than every buffer on the way holds.
  const burst = noise(20000, 7);
  line.write(burst);
  t.ok((await line.take(burst.length, 120000)).equals(burst), '20000 bytes written at once all come back, in order');
  line.write('\n');
  await line.take(1);

  // The firmware stops reading for 200 ms (emulated) while 3000 bytes arrive.
  line.write('!z 200\n');
  const stall = noise(3000, 11);
  line.write(stall);
  t.same(await line.until(/^= /), ['= woke'], 'the busy firmware answers');
  t.ok((await line.take(stall.length, 60000)).equals(stall), 'bytes that arrived while the firmware did not read are not lost');
  line.write('\n');
  await line.take(1);

  // Cycle counter against a loop of known length (4 cycles per count). A measurement that a
  // Timer1 overflow interrupt falls into is longer by the interrupt's cost: take the least of 5.
  const least = async (n: number) => {
    let m = Infinity;
    for (let i = 0; i < 5; i++) m = Math.min(m, Number(/^cyc (\d+)$/.exec(await line.cmd(`d ${n}`))![1]));
    return m;
  };
  const c1 = await least(1000);
  const c2 = await least(3000);
  t.equal(c2 - c1, 8000, 'port_cycles counts CPU cycles exactly');
  const t1 = /^us (\d+) cy (\d+)$/.exec(await line.cmd('t'))!;
  // micros is read first, cycles a few instructions later; cycles wrap at 2^32 (2^28 us).
  const lag = (Math.floor(Number(t1[2]) / 16) - Number(t1[1]) + 2 ** 28) % 2 ** 28;
  t.ok(Number(t1[1]) > 0 && lag <= 16, `micros = cycles / 16 (lag ${lag} us)`);

  const cap = Number(/^cap (\d+)$/.exec(await line.cmd('k'))![1]);
  t.ok(cap > 200000 && cap < 0x3e000, `model store capacity ${cap} bytes`);

  // Store: page-wise programming with partial pages synced and continued.
  t.equal(await line.cmd('r 0 8'), 'r ffffffffffffffff', 'a fresh store reads erased');
  t.equal(await line.cmd('w 0 00112233'), 'w 0 4');
  t.equal(await line.cmd('w 4 445566'), 'w 0 3', 'odd-length write');
  t.equal(await line.cmd('s'), 'synced');
  t.equal(await line.cmd('r 0 10'), 'r 00112233445566ffffff', 'a synced partial page reads back, the rest erased');
  t.equal(await line.cmd('w 7 778899'), 'w 0 3', 'continuing at an odd offset of a synced page');
  const across = Buffer.from(Array.from({ length: 30 }, (_, i) => (0xa0 + i) & 0xff)).toString('hex');
  t.equal(await line.cmd(`w 10 ${'aa'.repeat(40)}`), 'w 0 40');
  t.equal(await line.cmd('s'), 'synced');
  t.equal(await line.cmd('r 0 12'), 'r 00112233445566778899aaaa', 'continued page');
  t.equal(await line.cmd(`w 250 ${across}`), 'w 0 30', 'a write across a page boundary');
  t.equal(await line.cmd('r 240 32'), `r ${'ff'.repeat(10)}${across.slice(0, 12)}${'ff'.repeat(16)}`,
    'the completed page is programmed, the new partial page not yet');
  t.equal(await line.cmd('s'), 'synced');
  t.equal(await line.cmd('r 248 32'), `r ffff${across}`, 'both pages programmed');
  t.equal(await line.cmd('r 50 4'), 'r ffffffff', 'gap left erased');

  // Meta in EEPROM.
  t.equal(await line.cmd('m'), 'meta none', 'no meta before one is saved');
  t.equal(await line.cmd('M 280 305419896 280 1'), 'saved');
  t.equal(await line.cmd('m'), 'meta 280 305419896 280 1');

  // Watchdog reset: the boot count grows, flash and EEPROM are kept, the runner reports it.
  t.equal(await line.cmd('x'), 'reset');
  await runner.waitLine(/^reset 1 watchdog$/);
  t.equal(await line.cmd('b'), 'boot 2', 'boot count kept in .noinit across the watchdog reset');
  t.equal(await line.cmd('m'), 'meta 280 305419896 280 1', 'meta kept');
  t.equal(await line.cmd('r 248 32'), `r ffff${across}`, 'store kept');

  // GPIO and ADC through the runner's stdin and stdout.
  runner.proc.stdin!.write('adc 2 700\nadc 3 1023\npin A 5 1\n');
  await new Promise((res) => setTimeout(res, 300));
  t.equal(await line.cmd('a 2'), 'a 700', 'analog channel 2 reads the value set on stdin');
  t.equal(await line.cmd('a 3'), 'a 1023');
  t.equal(await line.cmd('a 0'), 'a 0', 'an analog channel left alone reads 0');
  t.equal(await line.cmd('i 5'), 'i 1', 'digital input driven high on stdin');
  t.equal(await line.cmd('i 6'), 'i 0');
  t.equal(await line.cmd('o 3 1'), 'o');
  await runner.waitLine(/^pin A 3 1$/);
  t.equal(await line.cmd('o 12 1'), 'o');
  await runner.waitLine(/^pin B 7 1$/);
  t.pass('output pins show on stdout');

  // Reset pin through SIGUSR1; cycle report through SIGUSR2.
  runner.proc.kill('SIGUSR1');
  await runner.waitLine(/^reset 2 signal$/);
  t.equal(await line.cmd('b'), 'boot 3');
  t.equal(await line.cmd('r 0 12'), 'r 00112233445566778899aaaa', 'store kept across the reset pin');
  runner.proc.kill('SIGUSR2');
  const cyc = await runner.waitLine(/^cycles \d+ \d+$/);
  t.ok(Number(cyc.split(' ')[1]) > 1000000, `runner cycle report: ${cyc}`);

  await line.close();
  t.equal(await runner.stop(), 0, 'SIGTERM stops the runner cleanly');
  t.match(runner.lines[runner.lines.length - 1], /^exit \d+ \d+ stopped$/, 'last line reports the cycles');
});

t.test('simavr-pty rejects what it cannot run', async (t) => {
  if (!needToolchain(t)) return;
  if (!make(t, 'avr-runner')) return;
  const bad = join(BUILD, 'not-an-elf');
  writeFileSync(bad, 'hello');
  const r = spawnSync(join(BUILD, 'simavr-pty'), [bad], { encoding: 'utf8' });
  t.equal(r.status, 2);
  t.match(r.stderr, /not a 32-bit little-endian AVR ELF/);
  t.equal(r.stderr.trim().split('\n').length, 1, 'one line');
  const r2 = spawnSync(join(BUILD, 'simavr-pty'), [join(BUILD, 'missing.elf')], { encoding: 'utf8' });
  t.equal(r2.status, 2);
  t.match(r2.stderr, /cannot open/);
});

const argmax = (a: ArrayLike<number>) => {
  let k = 0;
  for (let i = 1; i < a.length; i++) if (a[i]! > a[k]!) k = i;
  return k;
};
const maxErr = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
};

// The device computes in IEEE binary32 like the runtime, from the same int8 factors and scales,
// in another summation order; the text dialect prints 9 significant digits.
const LOGIT_TOL = 1e-4;

t.test('a factorised model on the ATmega2560: upload, binary infer, MLPerf Tiny text session, reset; logits against the Node runtime', async (t) => {
  if (!needToolchain(t)) return;
  if (!make(t, 'avr')) return;
  const size = JSON.parse(readFileSync(join(BUILD, 'size.json'), 'utf8')) as Record<string, number>;
  t.ok(size['sram']! + 1536 <= 8192, `SRAM: ${size['sram']} bytes static, ${size['stack_left']} left for the stack`);
  t.ok(size['flash']! <= 262144, `flash: ${size['flash']} bytes of firmware, ${size['model_store']} for the model`);

  const bytes = smallModel();
  const model = readFlm(bytes);
  const mcu = model.memoryPlan?.plans.find((p) => p.profile === 'mcu');
  t.ok(mcu, 'the file carries an mcu plan');
  t.same(mcu?.values.filter((v) => v.external).map((v) => v.name), ['x', 'xf'], 'the input and its Flatten are external');
  const session = Session.create(model);
  // Fashion-MNIST test images when the Debian package is there, else deterministic noise.
  const rnd = lcg(99);
  const ds = existsSync(`${FASHION_DIR}/t10k-images-idx3-ubyte.gz`) ? loadDataset('fashion-mnist') : undefined;
  const inputs = Array.from({ length: 3 }, (_, k) => ds
    ? Uint8Array.from(ds.images.subarray(k * 784, (k + 1) * 784), (v) => Math.round(v * 255))
    : Uint8Array.from({ length: 784 }, () => Math.floor(rnd() * 256)));
  const want = inputs.map((x) => session.runBatch({ shape: [1, 1, 28, 28], data: Float32Array.from(x, (v) => v / 255) }).data);

  const runner = await Runner.start(join(BUILD, 'firmware.elf'));
  const transport = await SerialTransport.open(runner.path);
  t.teardown(async () => {
    await transport.close();
    await runner.stop();
  });
  const client = new BridgeClient(transport, { prepareTimeoutMs: 60000, firstInferTimeoutMs: 60000, timeoutMs: 2000 });
  const hello = await client.hello();
  t.equal(hello.board, 'atmega2560');
  t.equal(hello.clock_hz, 16000000);
  t.equal(hello.max_frame, 900);
  t.equal(hello.flash, size['model_store'], 'hello.flash is the store the size report computed');
  const up = await client.upload(bytes);
  t.ok(up.ready, `upload of ${bytes.length} bytes at ${up.bytesPerSecond.toFixed(0)} B/s on the pty; arena used ${up.arena_used} of ${hello.arena}`);
  t.same(up.in, [1, 1, 28, 28]);
  t.same(up.out, [1, 10]);

  const r0 = await client.infer(0, inputs[0]!);
  t.ok(maxErr(r0.y, want[0]!) <= LOGIT_TOL, `binary infer (u8): max |logit error| ${maxErr(r0.y, want[0]!).toExponential(2)}`);
  t.ok(r0.cycles !== undefined && r0.cycles > 0, `${r0.cycles} cycles, ${r0.us} us per inference at 16 MHz`);
  t.ok(Math.abs(r0.us - r0.cycles! / 16) <= 50, 'us = cycles / 16 (read a few instructions apart)');
  // (An f32 input, 3136 bytes, does not fit the 900-byte frame: 28x28 models take u8 here.)
  const r1 = await client.infer(1, inputs[1]!);
  t.ok(maxErr(r1.y, want[1]!) <= LOGIT_TOL, `binary infer, second sample: max |logit error| ${maxErr(r1.y, want[1]!).toExponential(2)}`);

  // A reset keeps the model: it is ready again after the boot, with no upload.
  const h2 = await client.reset();
  t.ok(h2.boot > hello.boot, `boot count ${hello.boot} -> ${h2.boot}`);
  t.ok(h2.model?.ready, 'the model in flash is ready again after the reset');
  await runner.waitLine(/^reset \d+ watchdog$/);
  const r2 = await client.infer(2, inputs[2]!);
  t.ok(maxErr(r2.y, want[2]!) <= LOGIT_TOL, 'infer after the reset, without uploading again');
  t.equal(client.counters.reuploads, 0);
  await client.close();

  // The MLPerf Tiny text dialect on the same line.
  const rx: string[] = [];
  let pending = '';
  const off = transport.onData((b) => {
    pending += Buffer.from(b).toString('latin1');
    let nl: number;
    while ((nl = pending.indexOf('\n')) >= 0) {
      rx.push(pending.slice(0, nl).replace(/\r$/, ''));
      pending = pending.slice(nl + 1);
    }
  });
  t.teardown(off);
  /** Sends one command; returns the answer lines before m-ready. */
  const say = async (cmd: string, ms = 60000): Promise<string[]> => {
    rx.length = 0;
    transport.write(Buffer.from(`${cmd}%`, 'latin1'));
    const deadline = Date.now() + ms;
    while (!rx.includes('m-ready')) {
      if (Date.now() > deadline) throw new Error(`no m-ready after ${cmd}%: ${JSON.stringify(rx)}`);
      await new Promise((res) => setTimeout(res, 20));
    }
    return rx.slice(0, rx.indexOf('m-ready'));
  };
  t.same(await say('name'), ['m-name-dut-[factorlite]'], 'name%');
  for (let k = 0; k < inputs.length; k++) {
    const img = inputs[k]!;
    t.same(await say(`db load ${img.length}`), [`m-[Expecting ${img.length} bytes]`], `db load ${img.length}%`);
    let last: string[] = [];
    for (let o = 0; o < img.length; o += 64) last = await say(`db ${Buffer.from(img.subarray(o, o + 64)).toString('hex')}`);
    t.same(last, ['m-load-done'], 'the last db chunk completes the buffer');
    const inf = await say('infer 1 0');
    t.match(inf, ['m-infer-start-1', /^m-lap-us-\d+$/, /^m-lap-us-\d+$/, /^m-cycles-\d+$/, 'm-infer-done', /^m-results-\[/], `infer 1 0%: ${inf.slice(0, 5).join(' | ')}`);
    const res = await say('results');
    const m = /^m-results-\[(.*)\]$/.exec(res[res.length - 1] ?? '');
    if (!m) {
      t.fail(`results%: ${res.join(' | ')}`);
      continue;
    }
    const got = m[1]!.split(',').map(Number);
    t.equal(got.length, 10, 'ten logits');
    t.ok(maxErr(got, want[k]!) <= LOGIT_TOL, `image ${k}: max |logit error| ${maxErr(got, want[k]!).toExponential(2)} <= ${LOGIT_TOL}`);
    t.equal(argmax(got), argmax(want[k]!), `image ${k}: same class`);
  }

  // Firmata on the same line: the port's pins through the core, and the model sysex.
  off();
  let fm = Buffer.alloc(0);
  const offFm = transport.onData((b) => {
    fm = Buffer.concat([fm, Buffer.from(b)]);
  });
  t.teardown(offFm);
  /** Waits for a byte sequence matching `find` in what came back; returns it and drops what precedes. */
  const expect = async (what: string, find: (b: Buffer) => [number, number] | undefined, ms = 30000): Promise<Buffer> => {
    const deadline = Date.now() + ms;
    for (;;) {
      const hit = find(fm);
      if (hit) {
        const out = fm.subarray(hit[0], hit[1]);
        fm = fm.subarray(hit[1]);
        return out;
      }
      if (Date.now() > deadline) throw new Error(`Firmata: no ${what}; got ${fm.toString('hex')}`);
      await new Promise((res) => setTimeout(res, 20));
    }
  };
  const sysex = (cmd: number) => (b: Buffer): [number, number] | undefined => {
    for (let i = 0; i + 1 < b.length; i++) {
      if (b[i] === 0xf0 && b[i + 1] === cmd) {
        const end = b.indexOf(0xf7, i);
        if (end > 0) return [i, end + 1];
      }
    }
    return undefined;
  };
  fm = Buffer.alloc(0);
  transport.write(Uint8Array.of(0xf9));
  t.same([...await expect('REPORT_VERSION', (b) => { const i = b.indexOf(0xf9); return i >= 0 && b.length >= i + 3 ? [i, i + 3] : undefined; })], [0xf9, 2, 5], 'REPORT_VERSION 2.5');
  transport.write(Uint8Array.of(0xf0, 0x6b, 0xf7));
  const caps = await expect('CAPABILITY_RESPONSE', sysex(0x6c));
  const pins: number[][] = [[]];
  for (let i = 2; i < caps.length - 1; i++) {
    if (caps[i] === 0x7f) pins.push([]);
    else pins[pins.length - 1]!.push(caps[i]!, caps[++i]!);
  }
  pins.pop();
  t.equal(pins.length, 13, 'thirteen pins');
  t.same(pins[0], [0x00, 1, 0x01, 1, 0x0b, 1], 'pin 0 (PA0): input, output, pull-up');
  t.same(pins[8], [0x00, 1, 0x02, 10], 'pin 8 (ADC0): input, 10-bit analog');
  t.same(pins[12], [0x01, 1, 0x03, 8], 'pin 12 (PB7): output, 8-bit PWM');
  // Analog: pin 9 is channel 1; the runner's stdin sets its voltage.
  runner.proc.stdin!.write('adc 1 300\n');
  transport.write(Uint8Array.of(0xf4, 9, 0x02, 0xc1, 0x01));
  const an = await expect('ANALOG_MESSAGE for channel 1', (b) => { const i = b.indexOf(0xe1); return i >= 0 && b.length >= i + 3 ? [i, i + 3] : undefined; });
  t.equal(an[1]! | (an[2]! << 7), 300, 'analog channel 1 reports the value set through the runner');
  transport.write(Uint8Array.of(0xc1, 0x00));
  // Digital output: pin 3 (PA3) shows on the runner's stdout.
  transport.write(Uint8Array.of(0xf4, 3, 0x01, 0xf5, 3, 1));
  await runner.waitLine(/^pin A 3 1$/);
  t.pass('SET_DIGITAL_PIN_VALUE drives PA3');
  // The factorlite sysex: u8 pixels as 7-bit pairs in, class and f32 logits out.
  const img = inputs[0]!;
  const req = [0xf0, 0x01];
  for (const v of img) req.push(v & 0x7f, v >> 7);
  req.push(0xf7);
  fm = Buffer.alloc(0);
  transport.write(Uint8Array.from(req));
  const ans = await expect('model sysex answer', sysex(0x01), 60000);
  t.equal(ans.length, 2 + 1 + 80 + 1, 'class + ten 4-byte logits as 7-bit pairs');
  const raw = Buffer.alloc(40);
  for (let i = 0; i < 40; i++) raw[i] = ans[3 + 2 * i]! | (ans[4 + 2 * i]! << 7);
  const logits = Array.from({ length: 10 }, (_, i) => raw.readFloatLE(4 * i));
  t.ok(maxErr(logits, want[0]!) <= LOGIT_TOL, `Firmata model run: max |logit error| ${maxErr(logits, want[0]!).toExponential(2)}`);
  t.equal(ans[2], argmax(want[0]!), 'and the class');

  // The stack never reached the statics: the runner reads the port's stack paint.
  runner.proc.kill('SIGUSR2');
  const st = /^stack (\d+) (\d+)$/.exec(await runner.waitLine(/^stack \d+ \d+$/))!;
  t.ok(Number(st[2]) > 64, `deepest stack since the reset ${st[1]} bytes, ${st[2]} bytes of SRAM never touched`);
});

t.test('FC-2 (784-1024-10) svd x10 int8 on the 8 KB ATmega2560: the hidden vector streamed (fused chain), logits against the Node runtime on Fashion-MNIST', async (t) => {
  if (!needToolchain(t) || !needFashion(t)) return;
  if (!make(t, 'avr')) return;
  const file = await convert(t, 'mlp', 'svd', 'int8');
  if (!file) return;
  // written again so that the stored plans are the current planner's (convert caches its files)
  const bytes = writeFlm(readFlm(new Uint8Array(readFileSync(file))));
  const model = readFlm(bytes);
  const mcu = model.memoryPlan?.plans.find((p) => p.profile === 'mcu');
  const svd = model.graph.nodes.findIndex((n) => n.op === 'svd_dense');
  t.same(mcu?.values.filter((v) => v.fused).map((v) => v.first), [svd, svd + 1], 'the mcu plan fuses the svd_dense and relu outputs (1,024 floats each)');
  t.ok(mcu && mcu.arena < 1024, `mcu plan arena ${mcu?.arena} bytes`);
  const session = Session.create(model);
  const ds = loadDataset('fashion-mnist');
  const n = 4;
  const inputs = Array.from({ length: n }, (_, k) => Uint8Array.from(ds.images.subarray(k * 784, (k + 1) * 784), (v) => Math.round(v * 255)));
  const want = inputs.map((x) => session.runBatch({ shape: [1, 1, 28, 28], data: Float32Array.from(x, (v) => v / 255) }).data);

  const runner = await Runner.start(join(BUILD, 'firmware.elf')); // the 8 KB build, not firmware-xmem.elf
  const transport = await SerialTransport.open(runner.path);
  t.teardown(async () => {
    await transport.close();
    await runner.stop();
  });
  const client = new BridgeClient(transport, { prepareTimeoutMs: 60000, firstInferTimeoutMs: 60000, timeoutMs: 20000 });
  const hello = await client.hello();
  t.equal(hello.board, 'atmega2560');
  const up = await client.upload(bytes);
  t.ok(up.ready, `upload of ${bytes.length} bytes; arena used ${up.arena_used} of ${hello.arena}`);
  t.ok(up.arena_used <= hello.arena, 'plan and tables fit the 4 KB arena of the 8 KB part');
  for (let k = 0; k < n; k++) {
    const r = await client.infer(k, inputs[k]!);
    t.ok(maxErr(r.y, want[k]!) <= LOGIT_TOL, `image ${k}: max |logit error| ${maxErr(r.y, want[k]!).toExponential(2)} <= ${LOGIT_TOL} (${r.cycles} cycles)`);
    t.equal(argmax(r.y), argmax(want[k]!), `image ${k}: same class as the workstation`);
  }
  await client.close();
});

t.test('faults on the ATmega2560: damaged bytes both ways and a reset mid-run; every sample answered, none wrong', async (t) => {
  if (!needToolchain(t)) return;
  if (!make(t, 'avr')) return;
  const bytes = smallModel();
  const session = Session.create(readFlm(bytes));
  const rnd = lcg(7);
  const inputs = Array.from({ length: 8 }, () => Uint8Array.from({ length: 784 }, () => Math.floor(rnd() * 256)));
  const want = inputs.map((x) => session.runBatch({ shape: [1, 1, 28, 28], data: Float32Array.from(x, (v) => v / 255) }).data);

  const runner = await Runner.start(join(BUILD, 'firmware.elf'));
  const serial = await SerialTransport.open(runner.path);
  const faulty = new FaultyTransport(serial, parseFaultSpec('flip=3e-4,drop=2e-4,dup=2e-4,cut=0.03,seed=11'));
  t.teardown(async () => {
    await serial.close();
    await runner.stop();
  });
  const client = new BridgeClient(faulty, { timeoutMs: 1500, retries: 12, prepareTimeoutMs: 60000, firstInferTimeoutMs: 60000 });
  const up = await client.upload(bytes);
  t.ok(up.ready, 'upload through the faults');
  for (let k = 0; k < inputs.length; k++) {
    if (k === 3) runner.proc.kill('SIGUSR1'); // the reset pin, while the host goes on
    const r = await client.infer(k, inputs[k]!);
    t.equal(r.id, k);
    t.ok(maxErr(r.y, want[k]!) <= LOGIT_TOL, `sample ${k}: max |logit error| ${maxErr(r.y, want[k]!).toExponential(2)}`);
  }
  await runner.waitLine(/^reset \d+ signal$/);
  const c = faulty.counts();
  const n = Object.values(c.tx).reduce((a, b) => a + b, 0) + Object.values(c.rx).reduce((a, b) => a + b, 0);
  t.ok(n > 0, `${n} bytes damaged (${JSON.stringify(c)}); ${client.counters.resends} resends, ${client.counters.resets} resets noticed, ${client.counters.reuploads} uploads again`);
  t.equal(client.counters.reuploads, 0, 'the model survived the reset in flash: no upload again');
  faulty.setEnabled(false);
  const h = await client.hello();
  t.equal(h.boot, 2, 'the device booted twice');
  t.ok(h.model?.ready, 'and its model is ready');
  await client.close();
});
