// Whole models on two builds of kernels.wasm, interleaved in one process: the same .flm files run
// by a Session on the older module (--before) and on this checkout's kernels.wasm, alternating
// call by call, at each batch size. Per-image latency (median and fastest of --rounds calls per
// engine after --warmup-ms of warm-up each); the ratio after / before of the fastest and of the
// medians. One thread, SIMD128 builds. With --before-runtime DIR instead of --before, "before" is
// another checkout's whole runtime (its Session, layers and kernels, e.g. a git worktree of main):
// a change to the TypeScript runtime measured the same way.
//
//   node --import tsx bench/modelsBeforeAfter.ts (--before OLD.wasm | --before-runtime DIR) --models A.flm,B.flm
//        [--batch 1,32] [--rounds 200] [--warmup-ms 500] [--out FILE.md]
import { readFileSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { wasmBackend, type KernelBackend } from '../runtime/kernels/backend.js';
import { readFlm } from '../runtime/format/reader.js';
import { Session } from '../runtime/session.js';
import { arg, numberArg } from './lib/args.js';

const BEFORE_RUNTIME = arg('before-runtime', '');
const BEFORE = arg('before', '') || (BEFORE_RUNTIME && `the runtime of ${BEFORE_RUNTIME}`);
const MODELS = arg('models', '').split(',').filter(Boolean);
const BATCHES = arg('batch', '1,32').split(',').map(Number);
const ROUNDS = numberArg('rounds', '200');
const WARMUP_MS = numberArg('warmup-ms', '500');
const OUT = arg('out', '');
if (!BEFORE || MODELS.length === 0) throw new Error('usage: (--before OLD.wasm | --before-runtime DIR) --models A.flm[,B.flm]');

async function beforeRuntime(dir: string): Promise<{ backend: KernelBackend; Session: typeof Session }> {
  const file = (f: string) => pathToFileURL(join(resolve(dir), f)).href;
  try {
    const b = (await import(file('runtime/kernels/backend.ts'))) as { wasmBackend: typeof wasmBackend };
    const s = (await import(file('runtime/session.ts'))) as { Session: typeof Session };
    return { backend: await b.wasmBackend({ simd: 'simd128' }), Session: s.Session };
  } catch (e) {
    throw new Error(`--before-runtime ${dir}: not a checkout whose runtime loads (${(e as Error).message})`);
  }
}
const old = BEFORE_RUNTIME ? await beforeRuntime(BEFORE_RUNTIME) : { backend: await wasmBackend({ bytes: readFileSync(BEFORE) }), Session };
const before = old.backend;
const after = await wasmBackend({ simd: 'simd128' });
const median = (v: number[]): number => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)]!;
const lines = [
  `Whole models, per-image latency in µs, ${BEFORE_RUNTIME ? BEFORE : `kernels.wasm of ${BEFORE}`} (before) and of this checkout (after), one Session each on the same .flm, calls alternating, ${ROUNDS} timed calls each after ${WARMUP_MS} ms of warm-up; Node ${process.version}, ${new Date().toISOString()}, load average ${loadavg().map((v) => v.toFixed(2)).join(' ')} at the start. Made by \`node --import tsx bench/modelsBeforeAfter.ts ${BEFORE_RUNTIME ? `--before-runtime ${BEFORE_RUNTIME}` : `--before ${BEFORE}`} --models ${MODELS.map((m) => basename(m)).join(',')} --batch ${BATCHES.join(',')} --rounds ${ROUNDS} --warmup-ms ${WARMUP_MS}\`.`,
  '',
  '| model | batch | before median | after median | before fastest | after fastest | after / before (fastest) | after / before (median) |',
  '|---|---|---|---|---|---|---|---|',
];
for (const file of MODELS) {
  const model = readFlm(readFileSync(file));
  const sessions = [old.Session.create(model, { backend: before }), Session.create(model, { backend: after })];
  for (const batch of BATCHES) {
    const s0 = sessions[0]!;
    const shape = s0.inputShapes[0]!.map((d, i) => (i === 0 || d < 0 ? batch : d));
    const n = shape.reduce((a, b) => a * b, 1);
    const x = new Float32Array(n);
    for (let i = 0; i < n; i++) x[i] = Math.sin(i * 0.37);
    const feeds = { [s0.inputNames[0]!]: { shape, data: x } };
    const outs = sessions.map((s) => s.run(feeds));
    // Same answers (within float rounding of different summation orders).
    const a = Object.values(outs[0]!)[0]!.data as Float32Array, b = Object.values(outs[1]!)[0]!.data as Float32Array;
    let d = 0, m = 0;
    for (let i = 0; i < a.length; i++) { d = Math.max(d, Math.abs(a[i]! - b[i]!)); m = Math.max(m, Math.abs(a[i]!)); }
    if (!(d <= 1e-3 * Math.max(1, m))) throw new Error(`${file} batch ${batch}: before and after differ by ${d}`);
    for (const s of sessions) for (const end = performance.now() + WARMUP_MS; performance.now() < end;) s.run(feeds);
    const t: number[][] = [[], []];
    for (let r = 0; r < ROUNDS; r++)
      for (let k = 0; k < 2; k++) {
        const t0 = performance.now();
        sessions[k]!.run(feeds);
        t[k]!.push(((performance.now() - t0) * 1000) / batch);
      }
    const [mb, ma] = [median(t[0]!), median(t[1]!)];
    const [fb, fa] = [Math.min(...t[0]!), Math.min(...t[1]!)];
    lines.push(`| ${basename(file)} | ${batch} | ${mb.toFixed(1)} | ${ma.toFixed(1)} | ${fb.toFixed(1)} | ${fa.toFixed(1)} | ${(fa / fb).toFixed(2)} | ${(ma / mb).toFixed(2)} |`);
    process.stderr.write(`${lines.at(-1)}\n`);
  }
}
const md = lines.join('\n');
process.stdout.write(`${md}\n`);
if (OUT) writeFileSync(OUT, `${md}\n`);
