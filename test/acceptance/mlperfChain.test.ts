// MLPerf Tiny's four reference models through the command line, the chain a user runs (issue 18,
// "Done when"): convert -> eval --data x.npy [--labels y.npy | --targets t.npy] --json -> hil
// --model <flm> --emulate cortex-m4 --data x.npy --json. `--emulate cortex-m4` takes the smallest
// build of the Cortex-M4 port whose device accepts the model: KWS runs on the default build, IC
// (its plan's arena), VWW (its 110,592 B f32 input frame) and AD (its 640 outputs) on the L4R5
// build, each after the default build's own refusal. The models are built by scripts/mlperf_tiny.py
// (torch) into the cache; without torch or the emulator the test skips (fails under CI).
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { cli, jsonOf, python } from '../support/cli.js';
import { missing, needNumpy } from '../support/require.js';
import { needBoard } from '../firmware-bridge/host/device.js';
import { mlperfTinyModels } from '../../scripts/mlperfTiny.js';

type Hil = {
  fits: boolean;
  why: string | null;
  emulated?: { asked: string; board: string; tried: Array<{ board: string; why: string }> };
  results: null | { answered: number; unanswered: number[]; agreement: number; mode: string; maxAbsLogitError: number; cycles: { p50: number } | null };
};

// name, the build --emulate cortex-m4 must end on, why the default build refuses (if it does), samples on the device.
const CHAIN: Array<[string, string, RegExp | null, number]> = [
  ['kws', 'cortex-m4', null, 4],
  ['ic', 'cortex-m4-l4r5', /TOO_LARGE: plan arena/, 4],
  ['ad', 'cortex-m4-l4r5', /TOO_LARGE: model output larger than the response buffer/, 4],
  // VWW: one sample (its 110,592 B f32 frame crosses QEMU's UART at a few KB/s on a loaded machine)
  ['vww', 'cortex-m4-l4r5', /TOO_LARGE: model input .*larger than the frame buffer/, 1],
];

let dir: string | undefined;
t.before(() => {
  try {
    python('import torch, numpy');
  } catch {
    return;
  }
  dir = mlperfTinyModels();
});

for (const [name, board, refusal, limit] of CHAIN) {
  t.test(`${name}: convert -> eval --data -> hil --emulate cortex-m4`, async (t) => {
    if (!needNumpy(t) || !needBoard(t, 'cortex-m4-l4r5')) return;
    if (!dir) return void missing(t, '/usr/bin/python3 cannot import torch (Debian python3-torch)');
    const onnx = join(dir, `${name}.onnx`);
    const x = join(dir, `${name}_x.npy`);
    t.ok(existsSync(onnx) && existsSync(x), 'the model and its inputs were built');
    const flm = join(t.testdir(), `${name}.flm`);
    // --arena: the L4R5 build's 480 KB less 16 KB for the firmware's tables, so that each layer
    // keeps a form whose scratch fits (VWW's first convolution needs it; the others are unchanged).
    const c = jsonOf<{ ratio: number; output: string }>(
      cli(['convert', onnx, '-o', flm, '--method', 'svd', '--ratio', '2', '--quant', 'int8', '--arena', '464K', '--json'], { timeout: 900_000 }),
      `convert ${name}`,
    );
    t.ok(c.ratio >= 1.95, `${name}: ${c.ratio.toFixed(2)}x fewer parameters`);
    const labelArgs = name === 'ic' ? ['--labels', join(dir, 'ic_y.npy')] : ['--targets', join(dir, `${name}_ref.npy`)];
    const e = jsonOf<{ metric: string; samples: number; mse?: number; accuracy?: number }>(cli(['eval', flm, '--data', x, ...labelArgs, '--limit', '8', '--json'], { timeout: 300_000 }), `eval ${name}`);
    t.equal(e.metric, name === 'ic' ? 'top1' : 'values', `eval ${name}: ${e.metric}`);
    t.equal(e.samples, 8, 'eval read 8 samples');
    const run = cli(['hil', '--model', flm, '--emulate', 'cortex-m4', '--data', x, '--limit', String(limit), '--json'], { timeout: 900_000 });
    const r = jsonOf<Hil>(run, `hil ${name}`);
    t.equal(r.emulated?.asked, 'cortex-m4');
    t.equal(r.emulated?.board, board, `ran on ${board}`);
    t.match(run.stderr, new RegExp(`ran on the ${board} build`), 'stderr names the build');
    if (refusal) {
      t.equal(r.emulated?.tried.length, 1, 'the default build was tried first');
      t.match(r.emulated?.tried[0]?.why ?? '', refusal, `the default build refused: ${r.emulated?.tried[0]?.why}`);
    } else t.same(r.emulated?.tried, [], 'the default build took it');
    if (!r.results) return t.fail(`nothing ran: ${r.why}`);
    t.equal(r.results.answered, limit, 'every sample answered');
    t.same(r.results.unanswered, []);
    t.equal(r.results.agreement, 1, `the device agrees with the workstation (max abs error ${r.results.maxAbsLogitError.toExponential(2)})`);
    t.ok(r.results.cycles && r.results.cycles.p50 > 0, `instructions per inference: ${r.results.cycles?.p50}`);
  });
}

t.test('an exact build stays exact: cortex-m4-f4 refuses what only the L4R5 build takes', async (t) => {
  if (!needNumpy(t) || !needBoard(t, 'cortex-m4')) return;
  if (!dir) return void missing(t, '/usr/bin/python3 cannot import torch (Debian python3-torch)');
  const flm = join(t.testdir(), 'ad.flm');
  jsonOf(cli(['convert', join(dir, 'ad.onnx'), '-o', flm, '--method', 'none', '--quant', 'int8', '--json'], { timeout: 300_000 }), 'convert ad');
  const r = jsonOf<Hil & { refusal?: { code: string } }>(cli(['hil', '--model', flm, '--emulate', 'cortex-m4-f4', '--data', join(dir, 'ad_x.npy'), '--limit', '1', '--json'], { timeout: 300_000 }), 'hil ad f4');
  t.equal(r.results, null, 'nothing ran');
  t.equal(r.fits, false);
  t.equal(r.refusal?.code, 'TOO_LARGE');
  t.equal(r.emulated, undefined, 'no other build was tried');
});
