// runtime/kernels/threads.ts's lazy pool: no worker until the first dispatch, workers from then on;
// and a lazy pool whose workers cannot start runs their slices on the calling thread (`local`).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { hasWasmThreads, ThreadPool } from '../../../runtime/kernels/threads.js';
import { missing, REPO_ROOT } from '../../support/require.js';

t.test('a lazy pool starts its workers at the first dispatch', async (t) => {
  if (!hasWasmThreads()) return missing(t, 'WebAssembly threads');
  const module = new WebAssembly.Module(readFileSync(join(REPO_ROOT, 'runtime', 'kernels', 'wasm', 'kernels-mt.wasm')));
  const memory = new WebAssembly.Memory({ initial: 128, maximum: 65536, shared: true });
  // Two workers' stacks and TLS blocks (about 0.9 MB each) high in the 8 MB memory; the calls below are idle slots only.
  const blocks = [{ stack: 60 * 65536, tls: 64 * 65536 }, { stack: 80 * 65536, tls: 96 * 65536 }];
  const pool = new ThreadPool({ module, memory, names: ['gemm_block'], blocks, lazy: true });
  t.teardown(() => pool.close());
  t.equal(pool.started, false);
  t.same(pool.threadIds, [], 'no worker before a dispatch');
  let ran = 0;
  pool.idleFrom(0);
  pool.dispatch(() => { ran++; });
  t.equal(ran, 1, 'the caller ran its own part');
  t.equal(pool.started, true);
  t.equal(pool.threadIds.filter((id) => id > 0).length, 2, 'two workers after it');
  await pool.close();
  t.same(pool.threadIds, [-1, -1], 'both exited on close()');
});

t.test('a lazy pool whose workers cannot start runs their slices on the calling thread', async (t) => {
  const module = new WebAssembly.Module(new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0]));
  // A memory that is not shared cannot go to a worker: starting one throws.
  const memory = new WebAssembly.Memory({ initial: 1 });
  const calls: number[][] = [];
  const local = [(...a: number[]) => { calls.push(a.slice(0, 3)); }];
  const pool = new ThreadPool({ module, memory, names: ['f'], blocks: [{ stack: 0, tls: 0 }, { stack: 0, tls: 0 }], lazy: true, local });
  pool.set(0, 0, 1, 2, 3);
  pool.set(1, 0, 4, 5, 6);
  let own = 0;
  pool.dispatch(() => { own++; });
  t.same(calls, [[1, 2, 3], [4, 5, 6]], 'each worker slot ran here, in order');
  t.equal(own, 1);
  t.equal(pool.started, false, 'no worker runs');
  pool.idleFrom(1);
  pool.dispatch(() => { own++; });
  t.same(calls.length, 3, 'an idle slot is skipped');
  t.equal(own, 2);
  const strict = new ThreadPool({ module, memory, names: ['f'], blocks: [{ stack: 0, tls: 0 }], lazy: true });
  t.throws(() => strict.dispatch(() => {}), 'without `local` the failure to start is an error');
  await pool.close();
});
