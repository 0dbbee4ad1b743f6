// factorlite hil end to end on each emulated board (the real firmware in the host process, QEMU
// and simavr), the report files, a dense model refused as not fitting, faults from the command
// line, bad arguments, and no emulator left behind after a signal.
import { spawn } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PNG } from 'pngjs';
import t from 'tap';
import { cli, jsonOf } from '../support/cli.js';
import { FIXTURES, REPO_ROOT, needFashion } from '../support/require.js';
import { convertModel, needBoard, smallMlp } from '../firmware-bridge/host/device.js';
import { startEmulator } from '../../hardware-in-loop/emulators.js';

t.test('bad arguments: one line, non-zero exit', async (t) => {
  const cases: Array<[string[], RegExp]> = [
    [['hil', '--model', 'x.flm', '--data', 'fashion-mnist'], /exactly one of --port/],
    [['hil', '--model', 'x.flm', '--data', 'fashion-mnist', '--emulate', 'z80'], /--emulate z80: expected one of host, cortex-m4, avr/],
    [['hil', '--model', 'nope.flm', '--data', 'fashion-mnist', '--emulate', 'host'], /nope\.flm does not exist/],
    [['hil', '--model', join(FIXTURES, 'lenet5_fashion.onnx'), '--data', 'fashion-mnist', '--emulate', 'host'], /is not a \.flm file/],
    [['hil', '--model', 'x.flm', '--data', 'fashion-mnist', '--emulate', 'host', '--faults', 'flip=7'], /flip=7: expected a probability/],
    [['hil', '--model', 'x.flm', '--data', 'fashion-mnist', '--emulate', 'host', '--limit', '0'], /--limit 0/],
  ];
  for (const [args, re] of cases) {
    const r = cli(args);
    t.not(r.status, 0, args.join(' '));
    t.match(r.stderr.trim(), re);
    t.equal(r.stderr.trim().split('\n').length, 1, 'one line');
  }
});

// One conversion per model for the whole file (the same ranks every time): each subtest used to
// convert LeNet-5 again, six times in all. convertModel writes into t.testdir(), which each call
// empties, so the file is copied out to a folder of this file's own at once.
const keep = mkdtempSync(join(tmpdir(), 'factorlite-hil-'));
t.teardown(() => rmSync(keep, { recursive: true, force: true }));
const converted = new Map<'lenet5' | 'fc2', Promise<string | undefined>>();
function model(which: 'lenet5' | 'fc2'): Promise<string | undefined> {
  if (!converted.has(which)) {
    converted.set(which, convertModel(t, which).then((f) => {
      if (!f) return undefined;
      const own = join(keep, `${which}.flm`);
      copyFileSync(f, own);
      return own;
    }));
  }
  return converted.get(which)!;
}

type Report = {
  fits: boolean; why: string | null; upload: { bytes: number } | null; arena: { used: number } | null;
  results: null | { answered: number; unanswered: number[]; agreement: number; maxAbsLogitError: number; deviceAccuracy: number; desktopAccuracy: number; latencyUs: { p50: number }; cycles: { p50: number } | null; confusion: number[][] };
  link: { faults: null | { tx: Record<string, number>; rx: Record<string, number> }; resends: number };
  device: { board: string };
};

// FC-2 on the ATmega2560's 8 KB (its svd_dense -> relu -> dense chain runs fused, one hidden unit at
// a time); the XMEM build of the same core gets a small factorised MLP, just to run it.
const boards: Array<['host' | 'cortex-m4' | 'avr' | 'avr-xmem', 'lenet5' | 'fc2' | 'small']> = [['host', 'lenet5'], ['cortex-m4', 'lenet5'], ['avr', 'fc2'], ['avr-xmem', 'small']];
for (const [board, which] of boards) {
  t.test(`hil --emulate ${board}: a few images, device agrees with the workstation`, async (t) => {
    if (!needBoard(t, board === 'avr-xmem' ? 'avr' : board) || !needFashion(t)) return;
    const dir = t.testdir();
    const flm = which === 'small' ? smallMlp(dir) : await model(which);
    if (!flm) return;
    const out = join(dir, 'report');
    const limit = board === 'avr' ? 3 : 8;
    const r = jsonOf<Report>(cli(['hil', '--model', flm, '--emulate', board, '--data', 'fashion-mnist', '--limit', String(limit), '--out', out, '--json'], { timeout: 300_000 }), `hil ${board}`);
    t.ok(r.upload && r.upload.bytes > 0, 'uploaded');
    if (!r.results) return t.fail(`the ${board} board ran nothing: ${r.why ?? 'no reason given'}`);
    t.equal(r.results!.answered, limit, 'every sample answered');
    t.same(r.results!.unanswered, []);
    t.ok(r.results!.maxAbsLogitError < 1e-3, `logits within 1e-3 (${r.results!.maxAbsLogitError})`);
    t.equal(r.results!.agreement, 1, 'same top-1 as the workstation on every image');
    t.ok(r.results!.latencyUs.p50 > 0, 'the device reports its latency');
    if (board !== 'host') t.ok(r.results!.cycles && r.results!.cycles.p50 > 0, 'and its cycle or instruction count');
    t.equal(r.results!.confusion.flat().reduce((a, b) => a + b, 0), limit, 'confusion matrix counts every sample');
    const saved = JSON.parse(readFileSync(`${out}.json`, 'utf8'));
    t.equal(saved.samples.length, limit, 'the report file lists every sample');
    const png = PNG.sync.read(readFileSync(`${out}.png`));
    t.ok(png.width > 100 && png.height > 100, 'the PNG decodes');
  });
}

t.test('hil table output, and faults from the command line on the host board', async (t) => {
  if (!needBoard(t, 'host') || !needFashion(t)) return;
  const flm = await model('lenet5');
  if (!flm) return;
  const table = cli(['hil', '--model', flm, '--emulate', 'host', '--data', 'fashion-mnist', '--limit', '3']);
  t.equal(table.status, 0, table.stderr.trim().split('\n').at(-1));
  t.match(table.stdout, /agreement\s+100\.00%/);
  t.match(table.stdout, /samples\s+3 answered of 3/);
  const r = jsonOf<Report>(cli(['hil', '--model', flm, '--emulate', 'host', '--data', 'fashion-mnist', '--limit', '12', '--faults', 'flip=3e-4,drop=2e-4,dup=2e-4,cut=0.03,seed=5', '--timeout', '150', '--retries', '12', '--json'], { timeout: 300_000 }), 'hil --faults');
  t.equal(r.results!.answered, 12);
  t.equal(r.results!.agreement, 1);
  const f = r.link.faults!;
  const n = Object.values(f.tx).reduce((a, b) => a + b, 0) + Object.values(f.rx).reduce((a, b) => a + b, 0);
  t.ok(n > 0, `${n} faults injected`);
  t.ok(r.link.resends > 0, `${r.link.resends} resends`);
});

t.test('hil --port on a serial line someone else started (the host board), with --baud', async (t) => {
  if (!needBoard(t, 'host') || !needFashion(t)) return;
  const flm = await model('lenet5');
  if (!flm) return;
  const emu = await startEmulator('host');
  t.teardown(() => emu.stop());
  const r = jsonOf<Report>(cli(['hil', '--model', flm, '--port', emu.pty, '--baud', '57600', '--data', 'fashion-mnist', '--limit', '4', '--json']), 'hil --port');
  t.equal(r.results!.answered, 4);
  t.equal(r.results!.agreement, 1);
  t.equal(r.fits, true, 'no budget for a board given by --port: fits when the device accepts it');
});

t.test('the dense int8 LeNet-5 does not fit the Cortex-M4 budget, and the report says why', async (t) => {
  if (!needBoard(t, 'cortex-m4') || !needFashion(t)) return;
  const onnx = join(FIXTURES, 'lenet5_fashion.onnx');
  if (!existsSync(onnx)) return t.fail(`fixture ${onnx} missing`);
  const dense = join(t.testdir(), 'dense.flm');
  const c = cli(['convert', onnx, '-o', dense, '--method', 'none', '--quant', 'int8', '--json']);
  t.equal(c.status, 0, c.stderr.trim().split('\n').at(-1));
  // cortex-m4-f4: the default build alone (--emulate cortex-m4 would go on to the larger L4R5 build).
  const r = jsonOf<Report>(cli(['hil', '--model', dense, '--emulate', 'cortex-m4-f4', '--data', 'fashion-mnist', '--limit', '2', '--json']), 'hil dense');
  t.equal(r.fits, false);
  t.match(r.why ?? '', /65536 B of model flash/);
  t.equal(r.results, null, 'nothing was run');
});

for (const sig of ['SIGTERM', 'SIGINT'] as const) {
  t.test(`${sig} during a run stops the emulator too`, async (t) => {
    if (!needBoard(t, 'host') || !needFashion(t)) return;
    const flm = await model('lenet5');
    if (!flm) return;
    const child = spawn(process.execPath, [join(REPO_ROOT, 'bin/factorlite.js'), 'hil', '--model', flm, '--emulate', 'host', '--data', 'fashion-mnist', '--json'], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    const pid = await new Promise<number>((resolve, reject) => {
      child.stderr.on('data', (d) => {
        err += d;
        const m = /emulator running \(pid (\d+)/.exec(err);
        // Wait until samples are streaming, so the signal lands mid-run.
        if (m && /infer: \d+/.test(err)) resolve(Number(m[1]));
      });
      child.on('exit', () => reject(new Error(`hil exited before the run began: ${err}`)));
    });
    t.ok(alive(pid), `emulator ${pid} is running`);
    child.kill(sig);
    const code = await new Promise<string | number | null>((r) => child.on('exit', (c, s) => r(s ?? c)));
    t.equal(code, sig, `hil died of ${sig}`);
    // The emulator goes with it (allow it a moment to be reaped).
    for (let i = 0; i < 50 && alive(pid); i++) await new Promise((r) => setTimeout(r, 100));
    t.notOk(alive(pid), `emulator ${pid} is gone`);
  });
}

/** Running (a zombie waiting for a reaper counts as gone: it runs nothing and holds no pty). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}
