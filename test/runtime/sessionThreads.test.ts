// Sessions on the threaded kernels (WebAssembly threads, runtime/kernels/threads.ts): the same
// outputs as a single-threaded session (bit for bit where slices keep each output's summation
// order: batch images, GEMM row blocks; within the conformance tolerance where a batch-1 layer is
// split by output channels), no typed array allocated per call, the threads each node took
// recorded at warm-up, and workers that end on close() and never keep a process alive.
import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';
import t, { type Test } from 'tap';
import { importOnnxFile } from '../../converter/onnx/index.js';
import { numel, type Model, type Tensor } from '../../runtime/ir.js';
import { hasWasmSimd, hasWasmThreads, wasmBackend, type KernelBackend } from '../../runtime/kernels/backend.js';
import { Session } from '../../runtime/session.js';
import { FIXTURES, missing, needPath, REPO_ROOT } from '../support/require.js';
import { countAllocations } from './support/allocations.js';
import { ratio10 } from './support/models.js';

function random(n: number, seed: number): Float32Array {
  let s = seed >>> 0 || 1;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0;
    out[i] = s / 2 ** 32 - 0.5;
  }
  return out;
}

function maxAbs(a: Float32Array, b: Float32Array): number {
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i]! - b[i]!));
  return d;
}

const ready = hasWasmSimd() && hasWasmThreads();

function run(s: Session, model: Model, batch: number, seed: number): Float32Array {
  const shape = [batch, ...model.graph.inputs[0]!.shape.slice(1)];
  const x: Tensor = { shape, data: random(numel(shape), seed) };
  return s.runBatch(x).data;
}

async function models(t: Test): Promise<Array<[string, Model]>> {
  const out: Array<[string, Model]> = [];
  const onnx = resolve(FIXTURES, 'lenet5_fashion.onnx');
  if (needPath(t, onnx, 'fixture lenet5_fashion.onnx')) out.push(['LeNet-5 dense', importOnnxFile(onnx)]);
  const tucker = await ratio10(t, 'lenet5_fashion', 'tucker');
  if (tucker) out.push(['LeNet-5 tucker x10', tucker]);
  const fc = await ratio10(t, 'mlp_fashion', 'svd');
  if (fc) out.push(['FC-2 svd x10', fc]);
  return out;
}

t.test('a session with threads gives the outputs of one without', async (t) => {
  if (!ready) return missing(t, 'WebAssembly SIMD and threads unavailable');
  // The threaded module is a SIMD128 build: compare with the SIMD128 build on one thread (where the
  // engine has relaxed SIMD, wasmBackend() would load the relaxed build, whose fused multiply-add
  // rounds differently).
  const single = await wasmBackend({ simd: 'simd128' });
  // Every splittable call split (minMacsPerThread 0), 3 threads: ragged slices everywhere.
  const forced = await wasmBackend({ threads: 3, minMacsPerThread: 0 });
  t.teardown(() => forced.threads!.close());
  for (const [name, model] of await models(t)) {
    const a = Session.create(model, { backend: single });
    const b = Session.create(model, { backend: forced, threadChoice: 'model' });
    const c = Session.create(model, { backend: single, threads: 2, threadChoice: 'model' });
    t.ok(c.kernels.threads, `${name}: threads 2 on the wasm backend starts the session's own threaded kernels`);
    t.equal(c.threadCap, 2);
    for (const batch of [1, 3, 5, 32]) {
      const want = run(a, model, batch, batch);
      const forcedOut = run(b, model, batch, batch);
      const own = run(c, model, batch, batch);
      // Batch 1 splits layers by output channels (conv.c may pick another path for a slice); larger
      // batches split by images and GEMM row blocks, which sum every output in the same order.
      if (batch === 1) {
        const tol = 1e-5 * (1 + Math.max(...want.map(Math.abs)));
        t.ok(maxAbs(forcedOut, want) <= tol, `${name} batch 1, 3 threads, every call split: max abs diff ${maxAbs(forcedOut, want)} <= ${tol}`);
      } else {
        t.same(Array.from(forcedOut), Array.from(want), `${name} batch ${batch}, 3 threads, every call split: bit for bit`);
      }
      t.same(Array.from(own), Array.from(want), `${name} batch ${batch}, threads 2 by the cost model: bit for bit`);
    }
    const info = b.arenaInfo();
    t.ok(info.find((i) => i.batch === 5)!.threads.some((n) => n === 3), `${name}: some node took 3 threads at batch 5 (recorded per node)`);
    const chosen = c.arenaInfo();
    t.ok(chosen.every((i) => i.threads.length === model.graph.nodes.length && i.threads.every((n) => n === 1 || n === 2)), `${name}: threads per node within the cap`);
    a.dispose();
    b.dispose();
    await c.close();
  }
});

t.test('the cost model splits big layers only', async (t) => {
  if (!ready) return missing(t, 'WebAssembly SIMD and threads unavailable');
  const onnx = resolve(FIXTURES, 'lenet5_fashion.onnx');
  if (!needPath(t, onnx, 'fixture lenet5_fashion.onnx')) return;
  const model = importOnnxFile(onnx);
  const s = Session.create(model, { backend: await wasmBackend(), threads: 2, threadChoice: 'model' });
  run(s, model, 1, 1);
  run(s, model, 64, 2);
  const [one, many] = s.arenaInfo();
  const ops = model.graph.nodes.map((n) => n.op);
  const last = ops.length - 1;
  t.equal(ops[last], 'dense', 'the last node is the 10-way classifier');
  t.equal(one!.threads[last], 1, 'batch 1: the classifier (a few thousand multiply-adds) stays on one thread');
  t.ok(ops.every((op, k) => op === 'conv2d' || op === 'dense' || (one!.threads[k] === 1 && many!.threads[k] === 1)), 'relu, pooling and flatten never split');
  t.ok(many!.threads.filter((n) => n === 2).length >= one!.threads.filter((n) => n === 2).length, `more nodes split at batch 64 (${many!.threads}) than at 1 (${one!.threads})`);
  t.ok(ops.every((op, k) => op !== 'conv2d' || many!.threads[k] === 2), 'batch 64: every convolution takes 2 threads');
  await s.close();
});

t.test('threadChoice measure: every node the cost model splits is timed both ways and keeps the faster', async (t) => {
  if (!ready) return missing(t, 'WebAssembly SIMD and threads unavailable');
  const onnx = resolve(FIXTURES, 'lenet5_fashion.onnx');
  if (!needPath(t, onnx, 'fixture lenet5_fashion.onnx')) return;
  const model = importOnnxFile(onnx);
  const backend = await wasmBackend({ simd: 'simd128' });
  const byModel = Session.create(model, { backend, threads: 2, threadChoice: 'model' });
  const measured = Session.create(model, { backend, threads: 2 });
  const single = Session.create(model, { backend });
  const want = run(single, model, 64, 5);
  t.same(Array.from(run(measured, model, 64, 5)), Array.from(want), 'the same outputs, bit for bit (batch slices)');
  run(byModel, model, 64, 5);
  const m = measured.arenaInfo()[0]!, c = byModel.arenaInfo()[0]!;
  const split = c.threads.flatMap((n, k) => (n > 1 ? [k] : []));
  t.ok(split.length > 0, `the cost model splits some nodes at batch 64 (${split})`);
  t.same(m.threadTimings.map((e) => e.node), split, 'exactly those nodes were timed');
  for (const e of m.threadTimings) {
    t.ok(e.oneUs > 0 && e.splitUs > 0 && e.split === 2, `node ${e.node}: one thread ${e.oneUs.toFixed(1)} µs, 2 threads ${e.splitUs.toFixed(1)} µs`);
    t.equal(m.threads[e.node], e.splitUs < 0.95 * e.oneUs ? 2 : 1, `node ${e.node}: keeps the faster`);
  }
  t.ok(m.threads.every((n, k) => split.includes(k) || n === 1), 'no other node splits');
  t.same(c.threadTimings, [], "threadChoice 'model' times nothing");
  await measured.close();
  await byModel.close();
});

t.test('no typed array allocated per call with threads', async (t) => {
  if (!ready) return missing(t, 'WebAssembly SIMD and threads unavailable');
  const model = await ratio10(t, 'lenet5_fashion', 'tucker');
  if (!model) return;
  const backend: KernelBackend = await wasmBackend({ threads: 2 });
  // The cost model's split as it is (measured at warm-up, a loaded machine may keep one thread).
  const s = Session.create(model, { backend, threadChoice: 'model' });
  for (const batch of [1, 32]) {
    const shape = [batch, ...model.graph.inputs[0]!.shape.slice(1)];
    const x: Tensor = { shape, data: random(numel(shape), batch) };
    const out = new Float32Array(s.outputShapesFor([shape])[0]!.reduce((u, v) => u * v, 1));
    s.runInto([x], [out]);
    s.runInto([x], [out]);
    backend.threads!.resetThreadsUsed();
    const c = countAllocations(() => {
      for (let i = 0; i < 5; i++) s.runInto([x], [out]);
    });
    t.equal(c.total, 0, `batch ${batch}: typed arrays allocated in 5 calls: ${JSON.stringify(c.kinds)}`);
    if (batch > 1) t.equal(backend.threads!.threadsUsed(), 2, `batch ${batch}: the calls ran on 2 threads`);
  }
  s.dispose();
  await backend.threads!.close();
});

t.test('close() ends the workers; later calls run on one thread', async (t) => {
  if (!ready) return missing(t, 'WebAssembly SIMD and threads unavailable');
  const onnx = resolve(FIXTURES, 'lenet5_fashion.onnx');
  if (!needPath(t, onnx, 'fixture lenet5_fashion.onnx')) return;
  const model = importOnnxFile(onnx);
  const s = Session.create(model, { backend: await wasmBackend(), threads: 3 });
  const th = s.kernels.threads!;
  t.same(th.workerThreadIds(), [], 'no worker before a call splits (they start at the first split call)');
  const small = run(s, model, 1, 3);
  // Workers start with the first call the cost model splits (test/bench/rssTrace.test.ts: a model
  // with nothing to split starts none).
  const split1 = s.arenaInfo()[0]!.threadTimings.length > 0;
  t.equal(th.workerThreadIds().filter((id) => id > 0).length, split1 ? 2 : 0, `batch 1: ${split1 ? 'a node split, so the workers started' : 'nothing split, so no worker started'}`);
  const before = run(s, model, 64, 3);
  t.ok(s.arenaInfo()[1]!.threadTimings.length > 0, 'batch 64: the cost model split some node');
  t.equal(th.workerThreadIds().filter((id) => id > 0).length, 2, 'two live workers (the caller is the third thread)');
  await s.close();
  t.same(th.workerThreadIds(), [-1, -1], 'both workers have exited');
  t.equal(th.maxThreads(), 1, 'the kernels report one thread');
  t.same(Array.from(run(s, model, 64, 3)), Array.from(before), 'a call after close() still works, single-threaded');
  t.same(Array.from(run(s, model, 1, 3)), Array.from(small), 'batch 1 too');
  await s.close();
  t.pass('close() twice is fine');
});

t.test('a process that never closes its threaded session still exits', async (t) => {
  if (!ready) return missing(t, 'WebAssembly SIMD and threads unavailable');
  const script = `
    import { wasmBackend } from ${JSON.stringify(resolve(REPO_ROOT, 'runtime/kernels/backend.ts'))};
    const b = await wasmBackend({ threads: 2, minMacsPerThread: 0 });
    const a = new Float32Array(64 * 64).fill(1), o = new Float32Array(64 * 64);
    b.gemmNT(a, a, 64, 64, 64, undefined, o);
    process.stdout.write(String(o[0]) + ' ' + b.threads.threadsUsed());
  `;
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { encoding: 'utf8', timeout: 60_000, cwd: REPO_ROOT });
  t.equal(r.status, 0, `exit status 0 (stderr: ${r.stderr.slice(0, 300)})`);
  t.equal(r.stdout.trim(), '64 2', 'the product ran on 2 threads, then the process exited by itself');
});
