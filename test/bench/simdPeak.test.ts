// bench/peak/simdpeak.wasm, the WebAssembly SIMD peak microbenchmark that bench/kernels.ts divides
// the GEMM by: every chain computes what the same chain computed in JavaScript gives, lane by lane,
// for every round (a kernel that skipped or merged steps would time less work than it counts); the
// relaxed build's madd chains likewise, in a Node started with the relaxed-SIMD flag; and the
// committed modules are what bench/peak/build.sh makes of simdpeak.c.
import { execFileSync, spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { CHAINS, FLOP_PER_ROUND, OPS_PER_ROUND, laneSeed, loadSimdPeak, type PeakKernel } from '../../bench/lib/simdPeak.js';
import { RELAXED_SIMD_FLAG } from '../../bench/lib/runBench.js';

const ROOT = dirname(dirname(dirname(fileURLToPath(import.meta.url))));
const f = Math.fround;

/** The chains of `kind` after `rounds` rounds, in float32 arithmetic, one rounding per operation. */
function expected(kind: Exclude<PeakKernel, 'madd'>, rounds: number, m: number, d: number): number[] {
  const out: number[] = [];
  for (let c = 0; c < CHAINS[kind]; c++) {
    for (let v of laneSeed(c)) {
      for (let r = 0; r < rounds; r++) {
        if (kind === 'mulAdd') v = f(f(v * m) + d);
        else if (kind === 'mulOnly') v = f(v * m);
        else v = f(v + d);
      }
      out.push(v);
    }
  }
  return out;
}

t.test('each SIMD128 chain computes every round it counts', async (t) => {
  const peak = loadSimdPeak();
  const m = 1.0625;
  const d = -0.375;
  for (const kind of ['mulAdd', 'mulOnly', 'addOnly'] as const) {
    for (const rounds of [0, 1, 7]) {
      const got = Array.from(peak.run(kind, rounds, m, d));
      t.same(got, expected(kind, rounds, m, d), `${kind}, ${rounds} rounds`);
    }
  }
  t.throws(() => peak.run('mulAdd', -1), /non-negative integer/);
  // The flop count behind the GFLOP/s: 4 lanes per f32x4 operation, 2 for a multiply-add.
  t.equal(FLOP_PER_ROUND.mulAdd, 96);
  t.equal(OPS_PER_ROUND.mulAdd, 24);
  t.equal(FLOP_PER_ROUND.madd, 80);
});

t.test('the relaxed build: madd chains, fused or not, in a Node with relaxed SIMD', (t) => {
  // A child with the flag (Node 20 has relaxed SIMD only behind it); the module is loaded directly
  // so the child needs no TypeScript loader.
  const script = `
    const { readFileSync } = require('node:fs');
    const bytes = readFileSync(${JSON.stringify(join(ROOT, 'bench', 'peak', 'simdpeak-relaxed.wasm'))});
    const x = new WebAssembly.Instance(new WebAssembly.Module(bytes), {}).exports;
    x.madd(5, 1.0625, -0.375, 1024);
    process.stdout.write(JSON.stringify(Array.from(new Float32Array(x.memory.buffer, 1024, 40))));`;
  const r = spawnSync(process.execPath, [RELAXED_SIMD_FLAG, '-e', script], { encoding: 'utf8', timeout: 60_000 });
  t.equal(r.status, 0, `child ran (${r.stderr.trim().split('\n').pop() ?? ''})`);
  const got = JSON.parse(r.stdout) as number[];
  t.equal(got.length, CHAINS.madd * 4);
  let bad = 0;
  for (let c = 0; c < CHAINS.madd; c++) {
    laneSeed(c).forEach((seed, lane) => {
      // Each step is fused (one rounding) or not (two); the proposal lets the engine choose, so
      // follow both and accept either at every step.
      let states = new Set([seed]);
      for (let s = 0; s < 5; s++) {
        const next = new Set<number>();
        for (const v of states) {
          next.add(f(v * 1.0625 - 0.375)); // the product of two floats is exact in a double: one rounding
          next.add(f(f(v * 1.0625) - 0.375));
        }
        states = next;
      }
      if (!states.has(got[4 * c + lane]!)) bad++;
    });
  }
  t.equal(bad, 0, 'every lane is 5 multiply-adds of its seed');
  t.end();
});

t.test('the committed modules are a fresh build of simdpeak.c', (t) => {
  const has = spawnSync('sh', ['-c', 'command -v clang-16 && command -v wasm-ld'], { encoding: 'utf8' }).status === 0;
  if (!has && !process.env['FACTORLITE_CI']) {
    t.skip('clang-16 / wasm-ld not installed (CI installs them)');
    t.end();
    return;
  }
  const out = execFileSync('bash', [join(ROOT, 'bench', 'peak', 'build.sh'), '--check'], { encoding: 'utf8' });
  t.match(out, /simdpeak\.wasm is up to date/);
  t.match(out, /simdpeak-relaxed\.wasm is up to date/);
  t.end();
});
