// The long fuzz run of .flm files (bench/fuzzFlm.ts): reader + session + one inference on each
// kernel backend, and every Nth mutant through the firmware's host build with the differential
// check. Stops after --count mutants or --minutes, whichever comes first, and reports the exact
// count it ran.
//
//   node --import tsx bench/fuzz.ts [--count 1000000] [--minutes 60] [--seed 1] [--firmware-every 50] [--readme README.md | --no-readme]
//
// Writes bench/results/fuzz.{json,md} and the README section <!-- bench:fuzz:start --> ... end.
// Findings (untyped errors, slow calls, firmware disagreements) are saved under tmp/fuzz/.
import { spawnSync } from 'node:child_process';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { hasWasmSimd, referenceBackend, wasmBackend, type KernelBackend } from '../runtime/kernels/backend.js';
import { fuzzFlm, type FuzzResult } from './fuzzFlm.js';
import { writeBenchResults } from './readme.js';
import { arg, numberArg } from './lib/args.js';

const ROOT = dirname(dirname(fileURLToPath(import.meta.url)));
const COUNT = numberArg('count', '1000000');
const MINUTES = numberArg('minutes', '60');
const SEED = numberArg('seed', '1');
const FW_EVERY = numberArg('firmware-every', '50');
const README = process.argv.includes('--no-readme') ? null : resolve(arg('readme', join(ROOT, 'README.md')));
const CHUNK = 5000;

async function main(): Promise<void> {
  const backends: KernelBackend[] = [referenceBackend];
  if (hasWasmSimd()) backends.push(await wasmBackend());
  const fwDir = join(ROOT, 'firmware-bridge/firmware');
  const made = spawnSync('make', ['-s', '-C', fwDir, 'host'], { encoding: 'utf8' });
  const firmware = made.status === 0 ? join(fwDir, 'build/host/fl-host') : undefined;
  if (!firmware) process.stderr.write(`firmware host build failed, no differential check: ${made.stderr}\n`);
  const deadline = Date.now() + MINUTES * 60_000;
  const total: FuzzResult = { mutants: 0, accepted: 0, refused: {}, sessionRefused: {}, inferences: 0, firmwareChecked: 0, firmwareAgreed: 0, findings: [], seconds: 0 };
  const add = (a: Record<string, number>, b: Record<string, number>) => { for (const [k, v] of Object.entries(b)) a[k] = (a[k] ?? 0) + v; };
  // Chunks with their own seeds, so that the run can stop at the deadline and each chunk replays alone.
  for (let chunk = 0; total.mutants < COUNT && Date.now() < deadline; chunk++) {
    const r = fuzzFlm({ count: Math.min(CHUNK, COUNT - total.mutants), seed: SEED * 100003 + chunk, backends, ...(firmware ? { firmware } : {}), firmwareEvery: FW_EVERY, saveDir: join(ROOT, 'tmp', 'fuzz') });
    total.mutants += r.mutants; total.accepted += r.accepted; total.inferences += r.inferences;
    total.firmwareChecked += r.firmwareChecked; total.firmwareAgreed += r.firmwareAgreed; total.seconds += r.seconds;
    add(total.refused, r.refused); add(total.sessionRefused, r.sessionRefused);
    total.findings.push(...r.findings.map((f) => ({ ...f, what: `chunk ${chunk}: ${f.what}` })));
    process.stderr.write(`${total.mutants} mutants, ${total.accepted} accepted, ${total.inferences} inferences, ${total.firmwareChecked} firmware checks, ${total.findings.length} findings, ${total.seconds.toFixed(0)} s\n`);
  }
  const command = `node --import tsx bench/fuzz.ts --count ${COUNT} --minutes ${MINUTES} --seed ${SEED} --firmware-every ${FW_EVERY}`;
  const refusedTotal = Object.values(total.refused).reduce((a, b) => a + b, 0);
  const md = [
    `Fuzz (\`${command}\`, ${new Date().toISOString().slice(0, 10)}, backends ${backends.map((b) => b.name).join(' + ')}): **${total.mutants.toLocaleString('en')} mutated .flm files** in ${(total.seconds / 60).toFixed(1)} min`
      + `${total.mutants < COUNT ? ` (stopped by the --minutes budget before ${COUNT.toLocaleString('en')})` : ''}.`,
    '',
    '| outcome | count |',
    '|---|---:|',
    `| refused by the reader with an FLM_ code | ${refusedTotal} (${Object.keys(total.refused).length} different codes) |`,
    `| accepted by the reader | ${total.accepted} |`,
    `| one inference run (per backend) | ${total.inferences} |`,
    `| session refused with a typed code (per backend) | ${Object.values(total.sessionRefused).reduce((a, b) => a + b, 0)} |`,
    `| untyped errors, crashes, calls over 5 s | ${total.findings.filter((f) => !f.what.includes('firmware')).length} |`,
    `| firmware (host build, every ${FW_EVERY}th mutant): checked / clean and agreeing | ${total.firmwareChecked} / ${total.firmwareAgreed} |`,
  ].join('\n');
  process.stdout.write(`${md}\n`);
  writeBenchResults(join(ROOT, 'bench', 'results'), 'fuzz', { command, date: new Date().toISOString(), ...total, findings: total.findings.slice(0, 100) }, md, README);
}

main().catch((e) => {
  process.stderr.write(`bench/fuzz: ${(e as Error).message}\n`);
  process.exit(1);
});
