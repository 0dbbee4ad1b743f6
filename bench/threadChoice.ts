// One thread, the cost model's split, and the measured choice (runtime/session.ts threadChoice),
// in one process on the same threaded kernels, runs interleaved so all three see the same load.
//
//   node --import tsx bench/threadChoice.ts [--models bench/out/resnet8_auto_r4.flm,...] [--batch 1,32] [--runs 60]
//
// The .flm files are those bench/runtime.ts writes to bench/out/ (run it first). Prints medians
// per model and batch, which nodes each session split, and the warm-up timings behind the choice.
import { existsSync } from 'node:fs';
import { loadavg } from 'node:os';
import { readFlmFile } from '../runtime/format/reader.js';
import { wasmBackendSync } from '../runtime/kernels/backend.js';
import { Session } from '../runtime/session.js';
import { arg, numberArg } from './lib/args.js';

const MODELS = arg('models', 'bench/out/lenet5_fashion_auto_r10.flm,bench/out/resnet8_auto_r4.flm').split(',');
const BATCHES = arg('batch', '1,32').split(',').map(Number);
const RUNS = numberArg('runs', '60');
const load = () => loadavg().map((v) => v.toFixed(2)).join(' ');

const single = wasmBackendSync({ simd: 'simd128' });
const threaded = wasmBackendSync({ threads: 2, simd: 'simd128' });
console.log(`Node ${process.version}; ${RUNS} interleaved runs per batch; load average at the start ${load()}. Made by \`node --import tsx bench/threadChoice.ts --models ${MODELS.join(',')} --batch ${BATCHES.join(',')} --runs ${RUNS}\`.`);
for (const file of MODELS) {
  if (!existsSync(file)) throw new Error(`${file} not found (bench/runtime.ts writes it)`);
  const model = await readFlmFile(file);
  const ss = [
    Session.create(model, { backend: single }),
    Session.create(model, { backend: threaded, threads: 2, threadChoice: 'model' }),
    Session.create(model, { backend: threaded, threads: 2 }),
  ];
  for (const batch of BATCHES) {
    const shape = ss[0]!.inputShapes[0]!.map((d, i) => (i === 0 || d < 0 ? batch : d));
    const x = new Float32Array(shape.reduce((a, b) => a * b, 1));
    for (let i = 0; i < x.length; i++) x[i] = Math.sin(i * 0.37);
    const feeds = { [ss[0]!.inputNames[0]!]: { shape, data: x } };
    const times: number[][] = [[], [], []];
    for (let r = 0; r < RUNS + 10; r++) {
      for (let k = 0; k < 3; k++) {
        const t0 = performance.now();
        ss[k]!.run(feeds);
        if (r >= 10) times[k]!.push((performance.now() - t0) * 1000);
      }
    }
    const [one, model2, measured] = times.map((v) => v.sort((a, b) => a - b)[v.length >> 1]!) as [number, number, number];
    const info = (s: Session) => s.arenaInfo().find((i) => i.batch === batch)!;
    const split = (s: Session) => info(s).threads.flatMap((n, k) => (n > 1 ? [k] : [])).join(',') || 'none';
    const timings = info(ss[2]!).threadTimings.map((e) => `${e.node}: ${e.oneUs.toFixed(0)}/${e.splitUs.toFixed(0)}`).join(', ');
    console.log(`${file} batch ${batch}: one thread ${one.toFixed(0)} µs; cost model's split ${model2.toFixed(0)} µs (${(model2 / one).toFixed(2)}×, nodes ${split(ss[1]!)}); measured choice ${measured.toFixed(0)} µs (${(measured / one).toFixed(2)}×, nodes ${split(ss[2]!)}; warm-up µs one/split: ${timings || '-'})`);
  }
  for (const s of ss) s.dispose();
}
console.log(`load average at the end ${load()}`);
await threaded.threads!.close();
