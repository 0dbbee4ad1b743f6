// --threads on run / eval / bench: the cap reaches the session (run --json reports it and the
// threads each node took), the outputs equal a one-thread run's, and a bad value is a one-line
// BAD_ARGUMENT with a non-zero exit.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import t from 'tap';
import { writeNpy, readNpy } from '../../cli/npy.js';
import { hasWasmRelaxedSimd, hasWasmSimd, hasWasmThreads } from '../../runtime/kernels/backend.js';
import { cli } from '../support/cli.js';
import { FIXTURES, missing, needPath } from '../support/require.js';

const dir = mkdtempSync(join(tmpdir(), 'factorlite-threads-cli-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

t.test('run --threads 2 gives the outputs of --threads 1 and reports the threads per node', async (t) => {
  if (!hasWasmSimd() || !hasWasmThreads()) return missing(t, 'WebAssembly SIMD and threads unavailable');
  const model = resolve(FIXTURES, 'lenet5_fashion.onnx');
  if (!needPath(t, model, 'fixture lenet5_fashion.onnx')) return;
  const x = new Float32Array(16 * 784).map((_, i) => ((i * 7919) % 1000) / 1000);
  const xPath = join(dir, 'x.npy');
  writeFileSync(xPath, writeNpy([16, 1, 28, 28], x));
  const outs: Float32Array[] = [];
  for (const threads of [1, 2]) {
    const yPath = join(dir, `y${threads}.npy`);
    const r = cli(['run', model, '--input', xPath, '--output', yPath, '--threads', String(threads), '--json']);
    t.equal(r.status, 0, `--threads ${threads}: exit 0 (${r.stderr})`);
    const j = JSON.parse(r.stdout);
    t.equal(j.threadCap, threads, `--threads ${threads}: the session's cap`);
    t.equal(j.threads.length, 10, 'threads for each of the 10 nodes');
    if (threads === 2) {
      // The cost model splits some nodes at batch 16; warm-up times each both ways and keeps the
      // split only where it was at least 5% faster (on a busy machine it may keep none).
      const timed: Array<{ node: number; split: number; oneUs: number; splitUs: number }> = j.threadTimings;
      t.ok(timed.length > 0, `batch 16: the cost model split some node, timed at warm-up (${timed.length})`);
      t.ok(j.threads.every((n: number) => n >= 1 && n <= 2), `every node within the cap (${j.threads})`);
      for (const e of timed) t.equal(j.threads[e.node], e.splitUs < 0.95 * e.oneUs ? e.split : 1, `node ${e.node}: ${e.oneUs.toFixed(1)} us on one thread, ${e.splitUs.toFixed(1)} us split: ${j.threads[e.node]} kept`);
      const untimed = j.threads.filter((_: number, k: number) => !timed.some((e) => e.node === k));
      t.ok(untimed.every((n: number) => n === 1), 'nodes the cost model did not split take one thread');
    } else {
      t.ok(j.threads.every((n: number) => n === 1), 'one thread everywhere');
      t.same(j.threadTimings, [], 'nothing timed on one thread');
    }
    outs.push(readNpy(readFileSync(yPath), yPath).data);
  }
  if (hasWasmRelaxedSimd()) {
    // This Node loads the relaxed-SIMD build on one thread (fused multiply-add) and the SIMD128
    // threaded build on two: the same sums, rounded differently.
    const want = outs[0]!;
    let d = 0;
    for (let i = 0; i < want.length; i++) d = Math.max(d, Math.abs(outs[1]![i]! - want[i]!));
    const tol = 1e-4 * (1 + Math.max(...Array.from(want, Math.abs)));
    t.ok(d <= tol, `relaxed SIMD on one thread, SIMD128 on two: max abs diff ${d} <= ${tol}`);
  } else {
    t.same(Array.from(outs[1]!), Array.from(outs[0]!), 'bit for bit (batch and GEMM row splits keep the summation order)');
  }
});

t.test('--threads must be a positive integer', async (t) => {
  for (const [cmd, extra] of [['run', ['--input', 'x.npy']], ['eval', ['--data', 'fashion-mnist']], ['bench', []]] as const) {
    for (const bad of ['0', '-1', '1.5', 'many']) {
      const r = cli([cmd, 'model.flm', ...extra, '--threads', bad]);
      t.not(r.status, 0, `${cmd} --threads ${bad}: non-zero exit`);
      t.match(r.stderr, new RegExp(`--threads ${bad.replace('.', '\\.')}: expected a positive integer`), `${cmd} --threads ${bad}: names the flag`);
      t.equal(r.stderr.trim().split('\n').length, 1, 'one line');
    }
  }
});
