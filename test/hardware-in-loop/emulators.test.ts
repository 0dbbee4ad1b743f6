// The emulator launcher: the pty it finds is a working serial line, and the emulator never
// outlives its owner (stop(), a normal exit, an uncaught error).
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { BridgeClient } from '../../firmware-bridge/host/client.js';
import { SerialTransport } from '../../firmware-bridge/host/transport.js';
import { startEmulator } from '../../hardware-in-loop/emulators.js';
import { REPO_ROOT } from '../support/require.js';
import { needBoard } from '../firmware-bridge/host/device.js';

/** Running (a zombie waiting for a reaper counts as gone). */
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

async function gone(pid: number): Promise<boolean> {
  for (let i = 0; i < 50 && alive(pid); i++) await new Promise((r) => setTimeout(r, 100));
  return !alive(pid);
}

t.test('an unknown board is a typed error', async (t) => {
  await t.rejects(startEmulator('pdp11' as never), { code: 'BAD_BOARD' });
});

for (const board of ['host', 'cortex-m4', 'avr'] as const) {
  t.test(`${board}: the pty answers hello; stop() ends the emulator`, async (t) => {
    if (!needBoard(t, board)) return;
    const emu = await startEmulator(board);
    t.teardown(() => emu.stop());
    t.match(emu.pty, /^\/dev\/pts\/\d+$/);
    t.ok(existsSync(emu.pty));
    const serial = await SerialTransport.open(emu.pty);
    const client = new BridgeClient(serial, { timeoutMs: 2000 });
    const h = await client.hello();
    t.equal(h.proto, 1);
    t.ok(h.board.length > 0, `board ${h.board}`);
    await client.close();
    await serial.close();
    await emu.stop();
    t.ok(await gone(emu.pid), 'emulator process gone after stop()');
  });
}

for (const ending of ['exit', 'throw'] as const) {
  t.test(`the emulator goes when its owner ends by ${ending}`, async (t) => {
    if (!needBoard(t, 'host')) return;
    const script = join(t.testdir(), 'owner.ts');
    writeFileSync(script, [
      `import { startEmulator } from ${JSON.stringify(join(REPO_ROOT, 'hardware-in-loop/emulators.ts'))};`,
      `const emu = await startEmulator('host');`,
      `process.stdout.write(\`\${emu.pid}\\n\`);`,
      ending === 'exit' ? 'process.exit(0);' : `throw new Error('owner failed');`,
    ].join('\n'));
    const r = spawnSync(process.execPath, ['--import', 'tsx', script], { cwd: REPO_ROOT, encoding: 'utf8', timeout: 120_000 });
    t.equal(r.status, ending === 'exit' ? 0 : 1, r.stderr.trim().split('\n').slice(-1)[0] ?? '');
    const pid = Number(r.stdout.trim());
    t.ok(pid > 0, `emulator pid ${pid}`);
    t.ok(await gone(pid), 'no orphan left');
  });
}
