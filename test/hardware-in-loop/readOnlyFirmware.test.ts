// A firmware folder that cannot be written (a global npm install owned by root, or one made
// read-only): `hil --emulate` builds the board into a cache folder keyed by the sources' hash,
// never into the package, reuses that build the next time, and a changed source builds afresh.
// Here: a copy of the firmware sources made read-only with chmod, FACTORLITE_CACHE in the test's
// own folder, the host board (make + cc).
import { appendFileSync, chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { BridgeClient } from '../../firmware-bridge/host/client.js';
import { SerialTransport } from '../../firmware-bridge/host/transport.js';
import { ensureFirmware, FIRMWARE_DIR, firmwareBuildDir, firmwareSourcesHash, startEmulator } from '../../hardware-in-loop/emulators.js';
import { needBoard } from '../firmware-bridge/host/device.js';

/** chmod every file and folder under `dir` (folders keep their x bits). */
function chmodTree(dir: string, writable: boolean): void {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) chmodTree(p, writable);
    else chmodSync(p, (statSync(p).mode & 0o555) | (writable ? 0o200 : 0));
  }
  chmodSync(dir, writable ? 0o755 : 0o555);
}

const top = mkdtempSync(join(tmpdir(), 'factorlite-rofw-'));
t.teardown(() => {
  chmodTree(top, true);
  rmSync(top, { recursive: true, force: true });
});
let n = 0;
const testDir = () => {
  const d = join(top, String(n++));
  mkdirSync(d);
  return d;
};

t.test('a read-only firmware folder builds into the cache and the board starts', async (t) => {
  if (!needBoard(t, 'host')) return;
  const root = testDir();
  const fw = join(root, 'pkg', 'firmware');
  mkdirSync(join(root, 'pkg'));
  cpSync(FIRMWARE_DIR, fw, { recursive: true, filter: (src) => src !== join(FIRMWARE_DIR, 'build') });
  const cache = join(root, 'cache');
  const before = process.env['FACTORLITE_CACHE'];
  process.env['FACTORLITE_CACHE'] = cache;
  t.teardown(() => {
    if (before === undefined) delete process.env['FACTORLITE_CACHE'];
    else process.env['FACTORLITE_CACHE'] = before;
  });
  t.equal(firmwareBuildDir(fw), join(fw, 'build'), 'a writable firmware folder builds in place, as in a checkout');
  chmodTree(fw, false);

  const hash = firmwareSourcesHash(fw);
  t.equal(hash, firmwareSourcesHash(FIRMWARE_DIR), 'the copy hashes as the sources it came from (build/ left out)');
  const want = join(cache, `firmware-${hash.slice(0, 16)}`);
  t.equal(firmwareBuildDir(fw), want, 'read-only: the cache folder named by the sources hash');

  const log: string[] = [];
  const emu = await startEmulator('host', { firmwareDir: fw, log: (l) => log.push(l) });
  t.teardown(() => emu.stop());
  t.match(log.join('\n'), /building the host firmware: make -C .* BUILD=/, 'make was told to build outside the package');
  const serial = await SerialTransport.open(emu.pty);
  const client = new BridgeClient(serial, { timeoutMs: 2000 });
  const h = await client.hello();
  t.equal(h.proto, 1, `the board built in the cache answers hello (board ${h.board})`);
  await client.close();
  await serial.close();
  await emu.stop();
  t.notOk(existsSync(join(fw, 'build')), 'nothing was written into the read-only firmware folder');
  const bin = join(want, 'host', 'fl-host');
  t.ok(existsSync(bin), `the build is in the cache: ${bin}`);

  // Reused: a second start builds nothing.
  const mtime = statSync(bin).mtimeMs;
  const log2: string[] = [];
  const launch = ensureFirmware('host', (l) => log2.push(l), fw);
  t.equal(launch.program, bin, 'the second run uses the cached build');
  t.same(log2, [], 'and builds nothing');
  t.equal(statSync(bin).mtimeMs, mtime, 'the binary is untouched');

  // A changed source is another folder, built afresh.
  const fw2 = join(root, 'pkg2', 'firmware');
  mkdirSync(join(root, 'pkg2'));
  cpSync(fw, fw2, { recursive: true });
  chmodTree(fw2, true);
  appendFileSync(join(fw2, 'ports', 'host', 'port_host.c'), '\n/* changed */\n');
  chmodTree(fw2, false);
  t.not(firmwareSourcesHash(fw2), hash, 'an edited source changes the hash');
  t.not(firmwareBuildDir(fw2), want, 'so its builds go to another cache folder');
});

t.test('no writable cache: one error naming the folders', async (t) => {
  const root = testDir();
  const fw = join(root, 'firmware');
  mkdirSync(fw);
  writeFileSync(join(fw, 'Makefile'), 'host:\n\ttrue\n');
  chmodSync(fw, 0o555);
  const blocked = join(root, 'blocked');
  writeFileSync(blocked, 'a file, not a folder');
  const before = { cache: process.env['FACTORLITE_CACHE'], tmp: process.env['TMPDIR'] };
  process.env['FACTORLITE_CACHE'] = join(blocked, 'cache');
  process.env['TMPDIR'] = join(blocked, 'tmp');
  t.teardown(() => {
    for (const [k, v] of [['FACTORLITE_CACHE', before.cache], ['TMPDIR', before.tmp]] as const) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  });
  t.throws(() => firmwareBuildDir(fw), { code: 'BUILD_FAILED', message: /is read-only and no cache folder is writable .*set FACTORLITE_CACHE/ });
});
