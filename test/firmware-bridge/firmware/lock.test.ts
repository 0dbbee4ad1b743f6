// withLock (support.ts), the lock around `make` into the firmware's build folder: one holder at a
// time across processes, and a lock left by a process that died is taken over.
import t from 'tap';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { withLock } from './support.js';

const dir = mkdtempSync(join(tmpdir(), 'fl-lock-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

t.test('a lock held by another live process is waited for', async (t) => {
  // The other process takes the lock folder (as withLock does), holds it 1.5 s, then removes it.
  const lock = join(dir, '.lock');
  const holder = spawn(process.execPath, ['-e', `const fs=require('fs');fs.mkdirSync(${JSON.stringify(lock)});fs.writeFileSync(${JSON.stringify(join(lock, 'pid'))},String(process.pid));console.log('held');setTimeout(()=>fs.rmSync(${JSON.stringify(lock)},{recursive:true}),1500)`], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((res) => holder.stdout!.once('data', () => res()));
  const t0 = Date.now();
  const got = withLock(dir, () => {
    t.ok(existsSync(join(dir, '.lock', 'pid')), 'held while fn runs');
    return Date.now() - t0;
  });
  t.ok(got >= 1000, `waited ${got} ms for the holder's 1.5 s`);
  t.notOk(existsSync(join(dir, '.lock')), 'released after fn');
  await new Promise((res) => holder.once('exit', res));
});

t.test("a dead process's lock is taken over; fn's exception releases it", async (t) => {
  const dead = spawnSync(process.execPath, ['-e', 'console.log(process.pid)'], { encoding: 'utf8' });
  mkdirSync(join(dir, '.lock'));
  writeFileSync(join(dir, '.lock', 'pid'), dead.stdout.trim());
  t.equal(withLock(dir, () => 42), 42, 'ran at once');
  t.throws(() => withLock(dir, () => { throw new Error('boom'); }), /boom/);
  t.notOk(existsSync(join(dir, '.lock')), 'no lock left');
});
