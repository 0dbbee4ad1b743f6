// factorlite deploy against a real OpenSSH server started here on loopback (Debian openssh-server),
// with a throwaway host key and user key, standing in for the Pi: its "node" is this machine's.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { writeFlm } from '../../converter/writer.js';
import { importOnnxFile } from '../../converter/onnx/index.js';
import { cli, jsonOf } from '../support/cli.js';
import { missing, needFixture } from '../support/require.js';

const SSHD = '/usr/sbin/sshd';
const KEYGEN = '/usr/bin/ssh-keygen';

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => (a && typeof a === 'object' ? resolve(a.port) : reject(new Error('no port'))));
    });
  });
}

async function waitForPort(port: number, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    const ok = await new Promise<boolean>((resolve) => {
      const c = connect(port, '127.0.0.1', () => {
        c.destroy();
        resolve(true);
      });
      c.on('error', () => resolve(false));
    });
    if (ok) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return false;
}

t.test('deploy copies the bundle over SSH, checks Node and runs a smoke inference', async (t) => {
  if (!existsSync(SSHD) || !existsSync(KEYGEN)) return void missing(t, `${SSHD} / ${KEYGEN} not found (Debian package openssh-server)`);
  const onnx = needFixture(t, 'mlp_fashion.onnx');
  if (!onnx) return;
  const dir = mkdtempSync(join(tmpdir(), 'flm-deploy-'));
  let sshd: ChildProcess | undefined;
  t.teardown(() => {
    sshd?.kill('SIGTERM');
    rmSync(dir, { recursive: true, force: true });
  });
  // Running as root, sshd wants its privilege-separation folder (Debian's service makes it at boot).
  if (process.getuid?.() === 0 && !existsSync('/run/sshd')) mkdirSync('/run/sshd', { mode: 0o755 });
  for (const k of ['host', 'user']) {
    const r = spawnSync(KEYGEN, ['-q', '-t', 'ed25519', '-N', '', '-f', join(dir, k)], { encoding: 'utf8' });
    t.equal(r.status, 0, `ssh-keygen ${k} key`);
  }
  writeFileSync(join(dir, 'authorized_keys'), readFileSync(join(dir, 'user.pub')));
  const home = join(dir, 'home');
  mkdirSync(home);
  const port = await freePort();
  writeFileSync(join(dir, 'sshd_config'), [
    `Port ${port}`, 'ListenAddress 127.0.0.1', `HostKey ${join(dir, 'host')}`, `PidFile ${join(dir, 'sshd.pid')}`,
    `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`, 'UsePAM no', 'StrictModes no', 'PasswordAuthentication no',
    'KbdInteractiveAuthentication no', 'PubkeyAuthentication yes', 'PermitRootLogin prohibit-password',
    'Subsystem sftp internal-sftp', `SetEnv PATH=${process.env['PATH']}`, '',
  ].join('\n'));
  sshd = spawn(SSHD, ['-D', '-e', '-f', join(dir, 'sshd_config')], { stdio: ['ignore', 'ignore', 'pipe'] });
  let sshdLog = '';
  sshd.stderr!.on('data', (d: Buffer) => (sshdLog += d.toString()));
  if (!(await waitForPort(port, 10_000))) {
    t.fail(`sshd did not start: ${sshdLog}`);
    return;
  }

  // The dense import is enough here: test/targets/bundle.test.ts runs factor layers on every Node.
  const model = importOnnxFile(onnx);
  const flm = join(dir, 'mlp.flm');
  writeFileSync(flm, writeFlm(model));
  const user = userInfo().username;
  const remoteDir = join(home, 'pi');
  const base = ['deploy', flm, '--host', `${user}@127.0.0.1`, '--port', String(port), '--key', join(dir, 'user'), '--dir', remoteDir];

  const r = jsonOf<{
    remote: { node: string; arch: string; dir: string };
    hostKeySha256: string;
    smoke: { worst: number; tolerance: number; shape: number[]; kernels: string };
    bundle: { files: number };
  }>(cli([...base, '--target', 'host', '--json']), 'deploy');
  t.equal(r.remote.node, process.versions.node, 'the device reports its Node version');
  t.equal(r.remote.arch, process.arch, 'and its architecture');
  t.equal(r.remote.dir, remoteDir, 'bundle folder on the device');
  t.match(r.hostKeySha256, /^[0-9a-f]{64}$/, 'host key fingerprint reported');
  t.equal(r.smoke.kernels, 'wasm-simd');
  t.same(r.smoke.shape, [1, 10]);
  t.ok(r.smoke.worst <= r.smoke.tolerance, `smoke inference matches within ${r.smoke.tolerance} (worst ${r.smoke.worst})`);
  t.ok(existsSync(join(remoteDir, 'run.mjs')) && existsSync(join(remoteDir, 'runtime/kernels/wasm/kernels.wasm')), 'files are on the device');
  // What a user then does on the device: the launcher checks and runs the copied bundle.
  const check = spawnSync(process.execPath, [join(remoteDir, 'run.mjs'), '--check', '--json'], { encoding: 'utf8', env: { ...process.env, NODE_OPTIONS: '' } });
  t.equal(check.status, 0, `the copied bundle checks on the device${check.stderr ? `: ${check.stderr}` : ''}`);

  // A device whose Node is for another architecture is refused before anything runs.
  const wrong = cli([...base, '--target', 'pi4']);
  t.equal(wrong.status, 1, 'pi4 bundle to an x64 device: exit 1');
  t.match(wrong.stderr, /^factorlite: 127\.0\.0\.1 runs Node on x64, target pi4 is arm64: pick the target that matches the device/m);

  // No Node on the device.
  const noNode = cli([...base, '--target', 'host', '--node', '/nonexistent/node']);
  t.equal(noNode.status, 1);
  t.match(noNode.stderr, /^factorlite: no Node on 127\.0\.0\.1 \(\/nonexistent\/node exited 127/m);

  // A key the server does not accept.
  spawnSync(KEYGEN, ['-q', '-t', 'ed25519', '-N', '', '-f', join(dir, 'stranger')]);
  const denied = cli(['deploy', flm, '--host', `${user}@127.0.0.1`, '--port', String(port), '--key', join(dir, 'stranger'), '--target', 'host']);
  t.equal(denied.status, 1);
  t.match(denied.stderr, /^factorlite: ssh to .*@127\.0\.0\.1:\d+: All configured authentication methods failed/m);
  t.equal(denied.stderr.split('\n').filter((l) => l.startsWith('factorlite:')).length, 1, 'one error line');
});
