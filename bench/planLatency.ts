// Latency of compressed plans of one model, interleaved in one process: for each .flm, our runtime
// (wasm-simd, one thread) and onnxruntime-node on the same file exported to ONNX (the factorised
// graph), and onnxruntime-node on the dense original. Engines take turns in blocks of --block
// calls for --rounds rounds, so a change of load on the shared machine hits all of them alike; the
// figures are p50 over all timed calls and the ratios ours / ORT factorised and ours / ORT dense.
//
//   node --import tsx bench/planLatency.ts --vs MODEL.onnx --flm A.flm[,B.flm...] [--batch 1,32]
//        [--rounds 20] [--block 20] [--warmup-ms 1000] [--name plan-latency] [--json]
//
// Writes bench/results/<name>.{json,md}. Each .flm's plan (ops, ranks) and multiply-adds come from
// its header (runtime/describe.ts), so the table says which plan each row is.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as ort from 'onnxruntime-node';
import { exportOnnx } from '../converter/export/index.js';
import { readFlm } from '../runtime/format/reader.js';
import { wasmBackend } from '../runtime/kernels/backend.js';
import { Session } from '../runtime/session.js';
import { summarize } from '../runtime/describe.js';
import { arg, numberArg } from './lib/args.js';

const ROOT = dirname(dirname(fileURLToPath(import.meta.url)));
const VS = arg('vs', '');
const FLMS = arg('flm', '').split(',').filter(Boolean);
const BATCHES = arg('batch', '1,32').split(',').map(Number);
const ROUNDS = numberArg('rounds', '20');
const BLOCK = numberArg('block', '20');
const WARMUP_MS = numberArg('warmup-ms', '1000');
const NAME = arg('name', 'plan-latency');
if (!VS || FLMS.length === 0) {
  process.stderr.write('bench/planLatency: give --vs MODEL.onnx and --flm A.flm[,B.flm...]\n');
  process.exit(2);
}

interface Engine {
  label: string;
  call: () => Promise<void> | void;
  times: number[];
}

const p50 = (v: number[]): number => {
  const s = [...v].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? NaN;
};

function input(shape: number[]): Float32Array {
  const n = shape.reduce((a, b) => a * b, 1);
  return new Float32Array(n).map((_, i) => Math.sin(i * 0.37));
}

async function ortEngine(label: string, bytes: Uint8Array, shape: number[]): Promise<Engine> {
  const s = await ort.InferenceSession.create(bytes);
  const feeds = { [s.inputNames[0]!]: new ort.Tensor('float32', input(shape), shape) };
  return { label, call: async () => { await s.run(feeds); }, times: [] };
}

async function main(): Promise<void> {
  const kernels = await wasmBackend();
  const load0 = loadavg();
  const plans = FLMS.map((f) => {
    const model = readFlm(readFileSync(f));
    const layers = summarize(model);
    return { file: f, model, layers };
  });
  const rows: Array<Record<string, unknown>> = [];
  const md: string[] = [];
  for (const batch of BATCHES) {
    const engines: Engine[] = [];
    let shape: number[] = [];
    for (const p of plans) {
      const s = Session.create(p.model, { backend: kernels });
      shape = s.inputShapes[0]!.map((d, i) => (i === 0 || d < 0 ? batch : d));
      const x = [{ shape, data: input(shape) }];
      const y = [new Float32Array(s.outputShapesFor([shape])[0]!.reduce((a, b) => a * b, 1))];
      engines.push({ label: `ours ${basename(p.file)}`, call: () => s.runInto(x, y), times: [] });
      engines.push(await ortEngine(`ORT ${basename(p.file)} exported`, exportOnnx(p.model), shape));
    }
    engines.push(await ortEngine(`ORT dense ${basename(VS)}`, readFileSync(VS), shape));
    // Warm-up: every engine for WARMUP_MS, in turn.
    for (const e of engines) {
      const t0 = performance.now();
      while (performance.now() - t0 < WARMUP_MS) await e.call();
    }
    for (let r = 0; r < ROUNDS; r++) {
      for (const e of engines) {
        for (let i = 0; i < BLOCK; i++) {
          const t0 = performance.now();
          await e.call();
          e.times.push(performance.now() - t0);
        }
      }
      process.stderr.write(`bench/planLatency: batch ${batch}, round ${r + 1}/${ROUNDS}\n`);
    }
    const dense = p50(engines[engines.length - 1]!.times);
    md.push(`Batch ${batch}:`, '', '| engine | p50 ms | ours / ORT factorised | ours / ORT dense |', '|---|---|---|---|');
    for (let k = 0; k < engines.length; k++) {
      const e = engines[k]!;
      const ms = p50(e.times);
      const ours = e.label.startsWith('ours ');
      const fact = ours ? ms / p50(engines[k + 1]!.times) : null;
      md.push(`| ${e.label} | ${ms.toPrecision(3)} | ${fact === null ? '' : fact.toFixed(2)} | ${ours ? (ms / dense).toFixed(2) : ''} |`);
      rows.push({ batch, engine: e.label, p50Ms: ms, calls: e.times.length, ...(ours ? { vsFactorised: fact, vsDense: ms / dense } : {}) });
    }
    md.push('');
  }
  const load1 = loadavg();
  const head = `${new Date().toISOString()}, Node ${process.version}; ${ROUNDS} rounds of ${BLOCK} calls per engine, interleaved, after ${WARMUP_MS} ms of warm-up each; load average (1, 5, 15 min) ${load0.map((v) => v.toFixed(2)).join(' ')} at the start, ${load1.map((v) => v.toFixed(2)).join(' ')} at the end. `
    + `Made by \`node --import tsx bench/planLatency.ts --vs ${basename(VS)} --flm ${FLMS.map((f) => basename(f)).join(',')} --batch ${BATCHES.join(',')} --rounds ${ROUNDS} --block ${BLOCK}\`.`;
  const plansMd = plans.map((p) => `- ${basename(p.file)}: ${p.layers.map((l) => `${l.op}${l.ranks.length ? ` [${l.ranks.join(',')}]` : ''}`).join(', ')}`);
  const text = [head, '', ...md, 'Plans:', '', ...plansMd].join('\n');
  mkdirSync(join(ROOT, 'bench', 'results'), { recursive: true });
  writeFileSync(join(ROOT, 'bench', 'results', `${NAME}.md`), `${text}\n`);
  writeFileSync(join(ROOT, 'bench', 'results', `${NAME}.json`), `${JSON.stringify({ date: new Date().toISOString(), load: { start: load0, end: load1 }, vs: basename(VS), flms: FLMS.map((f) => basename(f)), rows }, null, 1)}\n`);
  process.stdout.write(`${text}\n`);
}

await main();
