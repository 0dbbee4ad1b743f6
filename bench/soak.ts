// Does a long-running process stay flat? One process loads a model from its bytes, runs it once
// and disposes it, over and over (a service picking up new models, a sweep worker), then keeps one
// session and runs many inferences (a service answering requests). RSS, the JS heap and what the
// kernel backend holds are sampled along the way, after a full garbage collection.
//
//   node [--max-semi-space-size=1] --import tsx bench/soak.ts [--model m.flm] [--cycles 10000] [--inferences 100000] [--name soak] [--readme README.md | --no-readme]
//
// V8 grows its young generation (up to 16 MB of semi-spaces by default) under a steady stream of
// short-lived objects; that shows as a one-time RSS step with the JS heap in use flat.
// --max-semi-space-size=1 (a memory-constrained service's setting) keeps it at 1 MB.
//
// Without --model it compresses the LeNet-5 fixture by Tucker at ratio 10 first, in a child
// process (factorlite convert, cached under tmp/), so that this process does only what a service
// does: the converter's large, short-lived buffers would otherwise shape the allocator's RSS. Writes
// bench/results/soak.{json,md} and the README section <!-- bench:soak:start --> ... end.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { readFlm } from '../runtime/format/reader.js';
import { initKernels, defaultBackend } from '../runtime/kernels/backend.js';
import { numel } from '../runtime/ir.js';
import { Session } from '../runtime/session.js';
import { writeBenchResults } from './readme.js';
import { FIXTURES } from './lib/fixtures.js';
import { arg, numberArg } from './lib/args.js';

const ROOT = dirname(dirname(fileURLToPath(import.meta.url)));
const CYCLES = numberArg('cycles', '10000');
const INFERENCES = numberArg('inferences', '100000');
const WARM = 100;
const NAME = arg('name', 'soak');
const README = process.argv.includes('--no-readme') ? null : resolve(arg('readme', join(ROOT, 'README.md')));

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
const MB = 2 ** 20;

interface Sample { phase: 'load/dispose' | 'inference'; step: number; seconds: number; rssMB: number; heapMB: number; externalMB: number; backendLiveMB: number; wasmMemoryMB: number }

async function main(): Promise<void> {
  await initKernels(() => {});
  const backend = defaultBackend();
  let bytes: Uint8Array;
  let modelName: string;
  const given = arg('model', '');
  if (given) {
    bytes = readFileSync(given);
    modelName = given;
  } else {
    const out = join(ROOT, 'tmp', 'soak-lenet5_fashion-tucker-r10.flm');
    if (!existsSync(out)) {
      process.stderr.write('compressing lenet5_fashion.onnx (tucker, ratio 10) ...\n');
      mkdirSync(dirname(out), { recursive: true });
      const r = spawnSync(process.execPath, [join(ROOT, 'bin/factorlite.js'), 'convert', join(FIXTURES, 'lenet5_fashion.onnx'), '--method', 'tucker', '--ratio', '10', '-o', out, '--json'], { encoding: 'utf8' });
      if (r.status !== 0) throw new Error(`convert failed: ${r.stderr.trim()}`);
    }
    bytes = readFileSync(out);
    modelName = 'lenet5_fashion, tucker, ratio 10';
  }
  const probe = readFlm(bytes);
  const shape = probe.graph.inputs[0]!.shape.map((d) => (d < 0 ? 1 : d));
  const x = { shape, data: new Float32Array(numel(shape)).map((_, i) => (i % 7) / 7) };
  const t0 = performance.now();
  const samples: Sample[] = [];
  const sample = (phase: Sample['phase'], step: number) => {
    gc();
    const m = process.memoryUsage();
    const h = backend.held?.();
    samples.push({
      phase, step, seconds: (performance.now() - t0) / 1000, rssMB: m.rss / MB, heapMB: m.heapUsed / MB, externalMB: m.external / MB,
      backendLiveMB: (h?.liveBytes ?? 0) / MB, wasmMemoryMB: (h?.memoryBytes ?? 0) / MB,
    });
    const s = samples[samples.length - 1]!;
    process.stderr.write(`${phase} ${step}: rss ${s.rssMB.toFixed(1)} MB, heap ${s.heapMB.toFixed(1)} MB, external ${s.externalMB.toFixed(1)} MB, wasm memory ${s.wasmMemoryMB.toFixed(1)} MB, backend ${s.backendLiveMB.toFixed(3)} MB, ${s.seconds.toFixed(0)} s\n`);
  };
  const every = Math.max(1, Math.floor(CYCLES / 20));
  sample('load/dispose', 0);
  for (let i = 1; i <= CYCLES; i++) {
    const s = Session.create(readFlm(bytes), { backend });
    s.runBatch(x);
    s.dispose();
    if (i === WARM || i % every === 0) sample('load/dispose', i);
  }
  const session = Session.create(readFlm(bytes), { backend });
  const out = new Float32Array(1 << 16);
  const everyInf = Math.max(1, Math.floor(INFERENCES / 20));
  for (let i = 1; i <= INFERENCES; i++) {
    session.runInto([x], [out]);
    if (i === WARM || i % everyInf === 0) sample('inference', i);
  }
  session.dispose();
  const cyc = samples.filter((s) => s.phase === 'load/dispose');
  const inf = samples.filter((s) => s.phase === 'inference');
  const at = (list: Sample[], step: number) => list.find((s) => s.step === step)!;
  const cycleGrowth = cyc[cyc.length - 1]!.rssMB - at(cyc, Math.min(WARM, CYCLES)).rssMB;
  const infGrowth = inf[inf.length - 1]!.rssMB - at(inf, Math.min(WARM, INFERENCES)).rssMB;
  const flags = process.execArgv.filter((a) => a.startsWith('--max-') || a.startsWith('--semi'));
  const command = `node ${flags.map((f) => `${f} `).join('')}--import tsx bench/soak.ts${NAME !== 'soak' ? ` --name ${NAME}` : ''}${given ? ` --model ${given}` : ''} --cycles ${CYCLES} --inferences ${INFERENCES}`;
  // Held memory (JS heap, external buffers, wasm linear memory) is exact; RSS also moves with pages
  // the engine and the C allocator keep or give back, so its range after warm-up is shown too.
  const row = (name: string, list: Sample[], steps: number, growth: number) => {
    const w = at(list, Math.min(WARM, steps));
    const e = list[list.length - 1]!;
    const after = list.filter((s) => s.step >= Math.min(WARM, steps)).map((s) => s.rssMB);
    const held = (s: Sample) => s.heapMB + s.externalMB + s.wasmMemoryMB;
    return `| ${name} | ${steps} | ${w.rssMB.toFixed(1)} MB | ${e.rssMB.toFixed(1)} MB | ${growth.toFixed(2)} MB | ${Math.min(...after).toFixed(1)}..${Math.max(...after).toFixed(1)} MB | ${(held(e) - held(w)).toFixed(2)} MB | ${(e.backendLiveMB * MB).toFixed(0)} B |`;
  };
  const md = [
    `Soak (\`${command}\`, ${new Date().toISOString().slice(0, 10)}, backend ${backend.name}, model ${modelName}), each figure after a full GC:`,
    '',
    '| phase | steps | RSS after 100 | RSS at the end | RSS growth after the first 100 | RSS range after 100 | JS heap + external + wasm memory growth after 100 | backend blocks at the end |',
    '|---|---:|---:|---:|---:|---:|---:|---:|',
    row('load, run once, dispose', cyc, CYCLES, cycleGrowth),
    row('inferences on one session (live: its weights and arena)', inf, INFERENCES, infGrowth),
  ].join('\n');
  process.stdout.write(`${md}\n`);
  writeBenchResults(join(ROOT, 'bench', 'results'), NAME, { command, date: new Date().toISOString(), backend: backend.name, model: modelName, cycles: CYCLES, inferences: INFERENCES, cycleGrowthMB: cycleGrowth, inferenceGrowthMB: infGrowth, samples }, md, README);
}

main().catch((e) => {
  process.stderr.write(`bench/soak: ${(e as Error).message}\n`);
  process.exit(1);
});
