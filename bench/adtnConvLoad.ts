// Load time of .flm files with adtn layers on each way of forming W at load: the MPS expansion
// (expandMps, what the plan takes for every layer of LeNet-5 size) and the gate-by-gate rebuild of
// the 2^Q state (the previous runtime), each load in its own process (fresh JIT, fresh heap), the
// median of --reps; plus each adtn layer's plan (runtime/layers/adtnDense.ts adtnRuntimePlan).
//   node --import tsx bench/adtnConvLoad.ts --models a.flm,b.flm [--reps 5]
// Writes bench/results/adtn-conv-load.{json,md}.
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import os from 'node:os';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const arg = (k: string, d?: string) => {
  const i = process.argv.indexOf(`--${k}`);
  return i >= 0 ? process.argv[i + 1] : d;
};

if (process.argv.includes('--child')) {
  // one load: the model file read, then Session.create timed on the forced path
  const { readFlm } = await import('../runtime/format/reader.js');
  const { Session } = await import('../runtime/session.js');
  const { setAdtnRuntimeMode } = await import('../runtime/layers/adtnDense.js');
  const model = readFlm(new Uint8Array(readFileSync(arg('file')!)));
  setAdtnRuntimeMode(arg('mode') as 'expand' | 'rebuild');
  const t0 = performance.now();
  const s = Session.create(model);
  const ms = performance.now() - t0;
  s.close();
  process.stdout.write(JSON.stringify({ ms }));
  process.exit(0);
}

const { readFlm } = await import('../runtime/format/reader.js');
const { adtnRuntimePlan, nodeLayout } = await import('../runtime/layers/adtnDense.js');
const files = (arg('models') ?? '').split(',').filter(Boolean);
if (files.length === 0) {
  process.stderr.write('bench/adtnConvLoad.ts: --models a.flm[,b.flm] required\n');
  process.exit(2);
}
const reps = Number(arg('reps', '5'));
const load0 = os.loadavg()[0]!;
const rows: Array<{ file: string; params: number; layers: Array<{ name: string; op: string; q: number; depth: number; mode: string; why: string }>; expandMs: number; rebuildMs: number }> = [];
for (const file of files) {
  const model = readFlm(new Uint8Array(readFileSync(file)));
  let params = 0;
  for (const t of model.tensors.values()) params += t.shape.reduce((a, b) => a * b, 1);
  const layers = model.graph.nodes.filter((n) => n.op === 'adtn_dense' || n.op === 'adtn_conv2d').map((n) => {
    const sh = (r: string) => model.tensors.get(n.weights[r] ?? '')?.shape;
    const { l, out, inF } = nodeLayout(n, sh, (m) => {
      throw new Error(`${file}: ${n.name}: ${m}`);
    });
    const p = adtnRuntimePlan(l, out, inF);
    const mode = n.op === 'adtn_conv2d' && p.mode === 'contract' ? 'expand' : p.mode;
    return { name: n.name, op: n.op, q: l.q, depth: l.depth, mode, why: p.why };
  });
  const med = (mode: string) => {
    const t: number[] = [];
    for (let r = 0; r < reps; r++) {
      process.stderr.write(`\r${file} ${mode} ${r + 1}/${reps}   `);
      const c = spawnSync(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), '--child', '--file', file, '--mode', mode], { encoding: 'utf8' });
      if (c.status !== 0) throw new Error(`load of ${file} (${mode}) failed: ${c.stderr}`);
      t.push((JSON.parse(c.stdout) as { ms: number }).ms);
    }
    t.sort((a, b) => a - b);
    return t[Math.floor(t.length / 2)]!;
  };
  rows.push({ file, params, layers, expandMs: med('expand'), rebuildMs: med('rebuild') });
}
process.stderr.write('\n');
const load1 = os.loadavg()[0]!;
const when = new Date().toISOString().slice(0, 16);
mkdirSync(join(ROOT, 'bench', 'results'), { recursive: true });
writeFileSync(join(ROOT, 'bench', 'results', 'adtn-conv-load.json'), JSON.stringify({ when, load: [load0, load1], reps, rows }, null, 2));
const md = [
  `Load (Session.create, median of ${reps} processes) of .flm files with adtn layers, ${when} UTC, load ${load0.toFixed(1)} -> ${load1.toFixed(1)}, by \`node --import tsx bench/adtnConvLoad.ts --models ${files.join(',')} --reps ${reps}\`.`,
  '',
  '| file | params | adtn layers (op, Q, depth, plan) | load ms, MPS expansion | load ms, gate-by-gate rebuild |',
  '|---|---|---|---|---|',
  ...rows.map((r) => `| ${r.file.split('/').pop()} | ${r.params} | ${r.layers.map((l) => `${l.name} ${l.op} Q${l.q} d${l.depth} ${l.mode}`).join('; ')} | ${r.expandMs.toFixed(1)} | ${r.rebuildMs.toFixed(1)} |`),
  '',
].join('\n');
writeFileSync(join(ROOT, 'bench', 'results', 'adtn-conv-load.md'), md);
process.stdout.write(md);
