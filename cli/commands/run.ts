import { readFileSync } from 'node:fs';
import { writeFileAtomic } from '../../converter/atomicWrite.js';
import { Session } from '../../runtime/session.js';
import { Int8Session } from '../../runtime/int8full/session.js';
import { isInt8Full } from '../../runtime/int8full/params.js';
import { CliError } from '../errors.js';
import { loadModel } from '../modelFile.js';
import { readNpy, writeNpy } from '../npy.js';
import { checkOutputs } from '../outputs.js';
import { threadsFlag } from '../flags.js';

/** The files `--output y.npy` names for a model with several outputs: y.0.npy, y.1.npy, ... in the graph's order. */
export function outputFiles(output: string, count: number): string[] {
  if (count === 1) return [output];
  const stem = output.toLowerCase().endsWith('.npy') ? output.slice(0, -4) : output;
  return Array.from({ length: count }, (_, k) => `${stem}.${k}.npy`);
}

export async function runCommand(path: string, a: { input: string; output?: string; threads?: string; json?: boolean }): Promise<void> {
  const threads = threadsFlag(a.threads);
  if (a.output) checkOutputs({ inputs: [path, a.input], outputs: [a.output] });
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(a.input);
  } catch {
    throw new CliError('BAD_INPUT', `input file ${a.input} cannot be read`);
  }
  const x = readNpy(bytes, a.input);
  const { model } = loadModel(path);
  // An int8-full file runs on the integer kernels (its definition), any other on the f32 session.
  const session = isInt8Full(model) ? Int8Session.create(model) : Session.create(model, { threads });
  if (session.inputNames.length !== 1) {
    throw new CliError('BAD_INPUT', `${path}: run --input feeds one input; this model has ${session.inputNames.length} (${session.inputNames.join(', ')})`);
  }
  if (session.outputNames.length > 1) return runSeveral(path, a, session, x, threads);
  const t0 = performance.now();
  const y = session.runBatch(x);
  const ms = performance.now() - t0;
  // Threads each node took under the --threads cap (the cost model's split, kept where the
  // warm-up timing found it faster), and those timings, for --json.
  const arena = session instanceof Session ? session.arenaInfo()[0] : undefined;
  const threadInfo = session instanceof Session ? { threadCap: session.threadCap, threads: arena?.threads ?? [], threadTimings: arena?.threadTimings ?? [] } : {};
  if (session instanceof Session) await session.close();
  if (a.output) await writeFileAtomic(a.output, writeNpy(y.shape, y.data));
  if (a.json) {
    process.stdout.write(`${JSON.stringify({ model: path, input: a.input, output: a.output ?? null, shape: y.shape, milliseconds: ms, ...threadInfo, ...(a.output ? {} : { data: Array.from(y.data) }) })}\n`);
  } else if (!a.output) {
    const cols = y.shape[y.shape.length - 1] ?? 1;
    for (let r = 0; r < y.data.length / cols; r++) process.stdout.write(`${Array.from(y.data.subarray(r * cols, (r + 1) * cols), (v) => v.toFixed(5)).join(' ')}\n`);
  } else {
    process.stderr.write(`wrote ${a.output} [${y.shape}] in ${ms.toFixed(1)} ms\n`);
  }
}

/** A model with one input and several outputs: every output, each its own .npy (outputFiles) or JSON entry. */
async function runSeveral(path: string, a: { input: string; output?: string; json?: boolean }, session: Session | Int8Session, x: ReturnType<typeof readNpy>, threads: number): Promise<void> {
  const names = session.outputNames;
  const files = a.output ? outputFiles(a.output, names.length) : [];
  if (a.output) checkOutputs({ inputs: [path, a.input], outputs: files });
  const t0 = performance.now();
  const ys = session.run({ [session.inputNames[0]!]: x });
  const ms = performance.now() - t0;
  if (session instanceof Session) await session.close();
  for (let k = 0; k < files.length; k++) await writeFileAtomic(files[k]!, writeNpy(ys[names[k]!]!.shape, ys[names[k]!]!.data as Float32Array));
  const outputs = names.map((name, k) => ({ name, shape: ys[name]!.shape, ...(a.output ? { file: files[k] } : { data: Array.from(ys[name]!.data) }) }));
  if (a.json) {
    process.stdout.write(`${JSON.stringify({ model: path, input: a.input, milliseconds: ms, threadCap: threads, outputs })}\n`);
  } else if (!a.output) {
    for (const o of outputs) {
      process.stdout.write(`# output ${o.name} [${o.shape}]\n`);
      const y = ys[o.name]!;
      const cols = y.shape[y.shape.length - 1] ?? 1;
      for (let r = 0; r < y.data.length / cols; r++) process.stdout.write(`${Array.from(y.data.subarray(r * cols, (r + 1) * cols), (v) => v.toFixed(5)).join(' ')}\n`);
    }
  } else {
    process.stderr.write(`wrote ${outputs.map((o, k) => `${files[k]} [${o.shape}]`).join(', ')} in ${ms.toFixed(1)} ms\n`);
  }
}
