// The sweep of models users bring: every model of scripts/user_models.py, exported by PyTorch at
// its default opset and at 11, 13 and 17, with and without a dynamic batch axis, through
// factorlite. In process, for every variant: import, run on the reference and WebAssembly
// kernels, through a .flm, and exported back to ONNX, each against onnxruntime-node on the
// original file (1e-4 relative). Through the command line, for the default-opset export with a
// fixed batch (the tutorials' way): convert --method none, inspect (mcu plan), run and eval
// against onnxruntime, convert --ratio 4 --calib x.npy, eval, export and onnxruntime on the
// export. Prints a table (model x step -> ok / error) and writes it as JSON.
//
//   node --import tsx scripts/userModelsSweep.ts [--out DIR] [--json FILE] [--no-cli] [--cached] [--timeout S] [NAME...]
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import * as ort from 'onnxruntime-node';
import { outputFiles } from '../cli/commands/run.js';
import { readNpy, writeNpy } from '../cli/npy.js';
import { exportOnnx } from '../converter/export/index.js';
import { importOnnx } from '../converter/onnx/import.js';
import { writeFlm } from '../converter/writer.js';
import { readFlm } from '../runtime/format/reader.js';
import type { Model, Tensor } from '../runtime/ir.js';
import { hasWasmSimd, referenceBackend, wasmBackend, type KernelBackend } from '../runtime/kernels/backend.js';
import { Session } from '../runtime/session.js';

const ROOT = resolve(import.meta.dirname, '..');
const PYTHON = '/usr/bin/python3';
const TOL = 1e-4;
let lastDims: number[] = [];

interface Meta { shape: number[]; inputs?: number[][]; outputs?: number; kind: 'classes' | 'values'; expect: 'ok' | 'refused'; defaultOpset: number; variants: string[] }
type X = { shape: number[]; data: Float32Array };

const args = process.argv.slice(2);
const opt = (name: string) => {
  const i = args.indexOf(name);
  if (i < 0) return undefined;
  const v = args[i + 1];
  args.splice(i, 2);
  return v;
};
const outDir = resolve(opt('--out') ?? join(ROOT, 'tmp/user-models'));
const jsonOut = opt('--json');
const noCli = args.includes('--no-cli');
// --cached: keep the exports already in --out (a model is exported again only if its .json is missing).
const cached = args.includes('--cached');
// --timeout S: the limit of one command-line step (convert --ratio 4 on a torchvision model takes
// minutes on a loaded machine).
const CLI_TIMEOUT_S = Number(opt('--timeout') ?? 3600);
const names = args.filter((a) => !a.startsWith('--'));

function relDiff(a: Float32Array, b: Float32Array): number {
  if (a.length !== b.length) return Infinity;
  let num = 0;
  let den = 0;
  for (let i = 0; i < a.length; i++) {
    num = Math.max(num, Math.abs(a[i]! - b[i]!));
    den = Math.max(den, Math.abs(b[i]!));
  }
  return num / Math.max(den, 1e-12);
}

/** ORT outputs of an ONNX file on xs (one batch per input, in order), fed in chunks of `batch` (a
 * fixed-batch export) or at once; every output, each batch-first, concatenated in order. */
async function ortRun(bytes: Uint8Array | string, xs: X | X[], batch?: number): Promise<Float32Array> {
  const ins = Array.isArray(xs) ? xs : [xs];
  const s = await ort.InferenceSession.create(bytes as any);
  const n = ins[0]!.shape[0]!;
  const step = batch ?? n;
  const parts: Float32Array[][] = s.outputNames.map(() => []);
  let dims: readonly number[] = [];
  for (let i = 0; i < n; i += step) {
    const b = Math.min(step, n - i);
    const feed: Record<string, ort.Tensor> = {};
    ins.forEach((x, k) => {
      const per = x.data.length / n;
      feed[s.inputNames[k]!] = new ort.Tensor('float32', x.data.slice(i * per, (i + b) * per), [b, ...x.shape.slice(1)]);
    });
    const out = await s.run(feed);
    s.outputNames.forEach((o, k) => parts[k]!.push(out[o]!.data as Float32Array));
    dims = out[s.outputNames[0]!]!.dims;
  }
  lastDims = [n, ...dims.slice(1)];
  return concat(parts.flat());
}

function concat(parts: Float32Array[]): Float32Array {
  const all = new Float32Array(parts.reduce((a, p) => a + p.length, 0));
  let o = 0;
  for (const p of parts) { all.set(p, o); o += p.length; }
  return all;
}

/** Our outputs on xs, every output concatenated in the graph's order (as ortRun gives them). */
function runOurs(model: Model, xs: X[], backend: KernelBackend): Float32Array {
  const feed: Record<string, Tensor> = {};
  xs.forEach((x, k) => { feed[model.graph.inputs[k]!.name] = { shape: x.shape, data: x.data } as Tensor; });
  const y = Session.create(model, { backend }).run(feed);
  return concat(model.graph.outputs.map((o) => y[o]!.data as Float32Array));
}

function cli(argv: string[]): { ok: boolean; json?: any; err: string } {
  const r = spawnSync(process.execPath, [join(ROOT, 'bin/factorlite.js'), ...argv], { cwd: ROOT, encoding: 'utf8', timeout: CLI_TIMEOUT_S * 1000, env: { ...process.env, FACTORLITE_DEBUG: '' }, maxBuffer: 1 << 26 });
  const last = (r.stderr ?? '').trim().split('\n').filter((l) => l.trim()).at(-1);
  const err = r.signal ? `killed by ${r.signal} after the ${CLI_TIMEOUT_S} s limit (--timeout)${last ? `; last line: ${last.split('\r').at(-1)}` : ''}` : last ?? `exit ${r.status}`;
  if (r.status !== 0) return { ok: false, err };
  try {
    return { ok: true, json: argv.includes('--json') ? JSON.parse(r.stdout) : undefined, err: '' };
  } catch {
    return { ok: false, err: `stdout is not one JSON object: ${r.stdout.slice(0, 120)}` };
  }
}

/** What `run --output yf` wrote: yf, or yf's stem .0.npy, .1.npy, ... for a model of several outputs, concatenated in order (as ortRun gives them). */
function readRun(yf: string, outputs: number): Float32Array {
  const files = outputFiles(yf, outputs);
  return concat(files.map((f) => readNpy(readFileSync(f), f).data as Float32Array));
}

const argmaxes = (y: Float32Array, n: number) => {
  const per = y.length / n;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    let b = 0;
    for (let j = 1; j < per; j++) if (y[i * per + j]! > y[i * per + b]!) b = j;
    out[i] = b;
  }
  return out;
};

async function main() {
  mkdirSync(outDir, { recursive: true });
  // Round 1 (user_models.py) and round 2 (user_models2.py, torchvision and friends): each script
  // writes the models of its own list.
  const all: string[] = [];
  for (const script of ['user_models.py', 'user_models2.py']) {
    const list = spawnSync(PYTHON, [join(ROOT, 'scripts', script), '--list'], { encoding: 'utf8' });
    if (list.status !== 0) throw new Error(`${script} --list failed: ${list.stderr.slice(-2000)}`);
    const own = list.stdout.trim().split('\n');
    const mine = names.length ? names.filter((n) => own.includes(n)) : own;
    if (!mine.length) continue;
    const todo = cached ? mine.filter((n) => !existsSync(join(outDir, `${n}.json`))) : mine;
    if (todo.length) {
      process.stderr.write(`exporting ${todo.length} models with ${script}\n`);
      const gen = spawnSync(PYTHON, [join(ROOT, 'scripts', script), outDir, ...todo], { encoding: 'utf8' });
      if (gen.status !== 0) throw new Error(`${script} failed: ${gen.stderr.slice(-2000)}`);
    }
    all.push(...mine);
  }
  const unknown = names.filter((n) => !all.includes(n));
  if (unknown.length) throw new Error(`unknown model ${unknown.join(', ')}`);
  const backends: Array<[string, KernelBackend]> = [['reference', referenceBackend]];
  if (hasWasmSimd()) backends.push(['wasm', await wasmBackend()]);
  const rows: Array<Record<string, string>> = [];
  for (const name of all) {
    const meta = JSON.parse(readFileSync(join(outDir, `${name}.json`), 'utf8')) as Meta;
    const nIn = meta.inputs?.length ?? 1;
    const nOut = meta.outputs ?? 1;
    const x64s = Array.from({ length: nIn }, (_, k) => readNpy(readFileSync(join(outDir, `${name}.x${k ? k : ''}.npy`)), `${name}.x${k ? k : ''}.npy`));
    const x64 = x64s[0]!;
    const row: Record<string, string> = { model: name };
    // In process: every variant.
    const failures: string[] = [];
    let refusal = '';
    for (const v of meta.variants) {
      const file = join(outDir, `${name}.${v}.onnx`);
      const bytes = readFileSync(file);
      const dyn = v.endsWith('_dyn');
      const b = dyn ? 3 : v.endsWith('_b1') ? 1 : 2;
      const x = x64s.map((a) => ({ shape: [b, ...a.shape.slice(1)], data: a.data.slice(0, b * a.data.length / 64) }));
      try {
        const theirs = await ortRun(bytes, x);
        const model = importOnnx(bytes, { sourceName: `${name}.${v}.onnx` });
        const stored = readFlm(writeFlm(model));
        for (const [bk, backend] of backends) {
          const d = relDiff(runOurs(stored, x, backend), theirs);
          if (!(d <= TOL)) failures.push(`${v} ${bk} ${d.toExponential(1)}`);
        }
        const back = await ortRun(exportOnnx(stored, { opset: 13 }), x);
        const de = relDiff(back, theirs);
        if (!(de <= TOL)) failures.push(`${v} export ${de.toExponential(1)}`);
      } catch (e) {
        const msg = (e as Error).message.split('\n')[0]!;
        if (meta.expect === 'refused') refusal = msg;
        else failures.push(`${v}: ${msg}`);
      }
    }
    row.variants = meta.expect === 'refused' ? (refusal ? `refused: ${refusal}` : 'NOT REFUSED') : failures.length ? `FAIL ${failures.slice(0, 3).join('; ')}` : `ok (${meta.variants.length})`;
    // The command line takes one input batch (run --input, eval --data): two-input models stop here.
    if (nIn > 1) row.none = 'one input only';
    if (!noCli && meta.expect === 'ok' && nIn === 1) {
      const src = join(outDir, `${name}.opsetD.onnx`);
      const xf = join(outDir, `${name}.x.npy`);
      const dense = join(outDir, `${name}.dense.flm`);
      const r4 = join(outDir, `${name}.r4.flm`);
      const ref = await ortRun(src, x64, 2);
      const refFile = join(outDir, `${name}.ort.npy`);
      writeFileSync(refFile, writeNpy(lastDims, ref));
      const labels = join(outDir, `${name}.y.npy`);
      writeFileSync(labels, writeNpy([64], argmaxes(ref, 64)));
      const c0 = cli(['convert', src, '--method', 'none', '-o', dense, '--json']);
      row.none = c0.ok ? 'ok' : `ERR ${c0.err}`;
      if (c0.ok) {
        const ins = cli(['inspect', dense, '--json']);
        row.mcu = !ins.ok ? `ERR ${ins.err}` : ins.json.firmware.mcuPlan ? 'plan' : `no: ${JSON.stringify(ins.json.firmware.missingOps)}`;
        const yf = join(outDir, `${name}.dense.y.npy`);
        const rr = cli(['run', dense, '--input', xf, '--output', yf]);
        if (rr.ok) {
          const ours = readRun(yf, nOut);
          const d = relDiff(ours, ref);
          row.run = d <= TOL ? `ok ${d.toExponential(0)}` : `DIFF ${d.toExponential(1)}`;
        } else row.run = `ERR ${rr.err}`;
        const ev = meta.kind === 'classes'
          ? cli(['eval', dense, '--data', xf, '--labels', labels, '--json'])
          : cli(['eval', dense, '--data', xf, '--targets', refFile, '--json']);
        row.eval = !ev.ok ? `ERR ${ev.err}` : meta.kind === 'classes' ? (ev.json.correct === 64 ? 'ok 64/64' : `DIFF ${ev.json.correct}/64`) : ev.json.maxAbsError <= TOL * 10 ? `ok mse ${Number(ev.json.mse).toExponential(0)}` : `DIFF max ${ev.json.maxAbsError}`;
      }
      // The columns so far, before the long step (convert --ratio 4 of a torchvision model takes minutes).
      process.stderr.write(`partial ${JSON.stringify(row)}\n`);
      const c4 = cli(['convert', src, '--ratio', '4', '--calib', xf, '-o', r4, '--json']);
      row.ratio4 = c4.ok ? `ok ${Number(c4.json.ratio ?? c4.json.compression?.ratio ?? NaN).toFixed(2)}x` : `ERR ${c4.err}`;
      if (c4.ok) {
        const ins = cli(['inspect', r4, '--json']);
        row.mcu4 = !ins.ok ? `ERR ${ins.err}` : ins.json.firmware.mcuPlan ? 'plan' : `no: ${JSON.stringify(ins.json.firmware.missingOps)}`;
        const e4 = join(outDir, `${name}.r4.onnx`);
        const ex = cli(['export', r4, '-o', e4, '--json']);
        if (ex.ok) {
          const yf = join(outDir, `${name}.r4.y.npy`);
          const rr = cli(['run', r4, '--input', xf, '--output', yf]);
          if (rr.ok) {
            const d = relDiff(await ortRun(e4, x64), readRun(yf, nOut));
            row.export4 = d <= TOL ? `ok ${d.toExponential(0)}` : `DIFF ${d.toExponential(1)}`;
          } else row.export4 = `ERR run: ${rr.err}`;
        } else row.export4 = `ERR ${ex.err}`;
      }
    }
    rows.push(row);
    process.stderr.write(`${JSON.stringify(row)}\n`);
  }
  const cols = ['model', 'variants', 'none', 'mcu', 'run', 'eval', 'ratio4', 'mcu4', 'export4'];
  const lines = [`| ${cols.join(' | ')} |`, `|${cols.map(() => '---').join('|')}|`, ...rows.map((r) => `| ${cols.map((c) => (r[c] ?? '-').replace(/\|/g, '/')).join(' | ')} |`)];
  process.stdout.write(`${lines.join('\n')}\n`);
  if (jsonOut) writeFileSync(jsonOut, JSON.stringify(rows, null, 1));
}

await main();
