// Issue 5's budget on the Cortex-M4: LeNet-5 factorised with int8 factors (`convert --ratio 10
// --quant int8`, as the README says) fits 64 KB of model flash and 32 KB of arena (its conv ->
// relu -> max_pool chains run fused: docs/FORMAT.md section 7), and the device agrees with the
// workstation. A short run; bench/hil.ts runs the 1,000 images.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { cli, jsonOf } from '../support/cli.js';
import { FIXTURES, needFashion } from '../support/require.js';
import { needBoard } from '../firmware-bridge/host/device.js';

type Report = {
  fits: boolean; why: string | null; budget: { flash: number; arena: number } | null;
  upload: { bytes: number } | null; arena: { used: number } | null;
  results: null | { answered: number; unanswered: number[]; agreement: number; maxAbsLogitError: number };
};

t.test('LeNet-5 x10 int8 fits the cortex-m4 budget and agrees with the workstation', async (t) => {
  if (!needBoard(t, 'cortex-m4') || !needFashion(t)) return;
  const onnx = join(FIXTURES, 'lenet5_fashion.onnx');
  if (!existsSync(onnx)) return t.fail(`fixture ${onnx} missing`);
  const flm = join(t.testdir(), 'lenet5_r10_int8.flm');
  const c = cli(['convert', onnx, '-o', flm, '--ratio', '10', '--quant', 'int8', '--json'], { timeout: 300_000 });
  t.equal(c.status, 0, c.stderr.trim().split('\n').at(-1));
  const limit = 20;
  const r = jsonOf<Report>(cli(['hil', '--model', flm, '--emulate', 'cortex-m4', '--data', 'fashion-mnist', '--limit', String(limit), '--json'], { timeout: 300_000 }), 'hil cortex-m4');
  t.same(r.budget && [r.budget.flash, r.budget.arena], [65536, 32768], 'the budget is 64 KB of model flash and 32 KB of arena');
  t.equal(r.fits, true, `fits (${r.why ?? 'no reason given'})`);
  t.ok(r.upload && r.upload.bytes <= 65536, `model ${r.upload?.bytes} B <= 65536`);
  t.ok(r.arena && r.arena.used <= 32768, `arena used ${r.arena?.used} B (plan + tables) <= 32768`);
  if (!r.results) return t.fail('nothing was run');
  t.equal(r.results.answered, limit, 'every sample answered');
  t.same(r.results.unanswered, []);
  t.equal(r.results.agreement, 1, 'same top-1 as the workstation on every image');
  t.ok(r.results.maxAbsLogitError < 1e-3, `logits within 1e-3 (${r.results.maxAbsLogitError})`);
});
