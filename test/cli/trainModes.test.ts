// train --modes OUT/IN: the reshape of the hidden dense layers of the tensorial and TT kinds chosen
// on the command line (784 = 4·7·4·7 reads an image's row and column as (4, 7) each). What the
// written .flm holds (the layout and ranks, run by the runtime through eval), and the one-line
// refusals of a bad value, a kind without modes, modes that do not multiply to the layer, and a
// --resume that would change them. train --dense-ranks R,..: the ranks of those layers instead of
// the uniform ladder, refused when they do not fit the layout's caps or the ratio's budget.
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { cli, cliAsync, jsonOf } from '../support/cli.js';
import { needFashion } from '../support/require.js';

if (needFashion(t)) {
  const dir = mkdtempSync(join(tmpdir(), 'factorlite-modes-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const at = (n: string) => join(dir, n);
  const base = ['train', '--arch', 'mlp', '--ratio', '1000', '--hidden-bias', 'none', '--data', 'fashion-mnist', '--epochs', '1', '--limit', '256', '--batch', '128', '--eval-limit', '200'];

  t.test('bad --modes: one line, non-zero exit, nothing written', async (t) => {
    for (const [args, msg] of [
      [['--layer', 'rtt', '--modes', '4x4x8x8'], /--modes 4x4x8x8: expected OUT\/IN/],
      [['--layer', 'rtt', '--modes', '4x4x0x8/4x7x4x7'], /--modes 4x4x0x8\/4x7x4x7: every mode must be at least 1/],
      [['--layer', 'rtt', '--modes', '32x32/4x7x4x7'], /--modes 32x32\/4x7x4x7: 2 output modes but 4 input modes/],
      [['--layer', 'rtt', '--modes', '4x4x8x8/4x7x4x8'], /--modes 4x4x8x8\/4x7x4x8: modes 4x4x8x8 \/ 4x7x4x8 multiply to 1024 x 896, the layer is 1024 x 784/],
      [['--layer', 'svd', '--modes', '4x4x8x8/4x7x4x7'], /--modes applies to --layer rcp\|rtk\|rtt\|rtr\|tt\|tr, not svd/],
      [['--layer', 'rtt', '--dense-ranks', '3;3'], /--dense-ranks 3;3: expected positive integers joined by commas/],
      [['--layer', 'tt', '--dense-ranks', '3,3,3'], /--dense-ranks applies to --layer rcp\|rtk\|rtt\|rtr, not tt/],
      [['--layer', 'rtt', '--modes', '8x8x4x4/4x7x4x7', '--dense-ranks', '3,3,2'], /--modes 8x8x4x4\/4x7x4x7 --dense-ranks 3,3,2: rtt on modes 8x8x4x4\/4x7x4x7 takes 4 ranks, got 3/],
      [['--layer', 'rtt', '--modes', '8x8x4x4/4x7x4x7', '--dense-ranks', '3,3,2,2'], /rtt on modes 8x8x4x4\/4x7x4x7 can hold \(at most \[3, 3, 2, 1\]\)|exceed what rtt on modes 8x8x4x4\/4x7x4x7 can hold \(at most \[3, 3, 2, 1\]\)/],
      // 3·32 + 9·56 + 9·16 + 3·28 + 1 = 829 > 803,840 / 1000 (no hidden bias).
      [['--layer', 'rtt', '--modes', '8x8x4x4/4x7x4x7', '--dense-ranks', '3,3,3,1'], /ranks \[3, 3, 3, 1\] cost 829 weights, over the ratio's budget of 803/],
    ] as Array<[string[], RegExp]>) {
      const out = at('bad.flm');
      const r = cli([...base, ...args, '-o', out]);
      t.not(r.status, 0, args.join(' '));
      t.equal(r.stderr.trim().split('\n').length, 1, `one line: ${r.stderr.trim()}`);
      t.match(r.stderr, msg);
      t.notOk(existsSync(out), 'nothing written');
    }
  });

  t.test('rtt and tt with --modes 4x4x8x8/4x7x4x7: the layout and ranks written, eval agrees', async (t) => {
    // rtt dims (T_m S_m) = 16, 28, 32, 56 and 1 (the dense layer's H W): ranks [3, 3, 3, 1] cost
    // 3·16 + 9·28 + 9·32 + 3·56 + 1 = 757 <= 803; the default balanced layout gives 721.
    // tt cores [r, T_m, S_m, r']: 3·16 + 9·28 + 9·32 + 3·56 = 756.
    for (const [layer, op, ranks, params] of [['rtt', 'rtt_dense', [3, 3, 3, 1], 757], ['tt', 'tt_dense', [3, 3, 3], 756]] as const) {
      const out = at(`${layer}.flm`);
      const j = jsonOf(await cliAsync([...base, '--layer', layer, '--modes', '4x4x8x8/4x7x4x7', '-o', out, '--json'], { timeout: 300_000 }), 'train');
      const fc1 = j.layers.find((l: { name: string }) => l.name === 'fc1');
      t.same([fc1.op, fc1.ranks, fc1.params, fc1.outModes, fc1.inModes], [op, ranks, params, [4, 4, 8, 8], [4, 7, 4, 7]], layer);
      t.equal(j.modes, '4x4x8x8/4x7x4x7');
      t.ok(j.hiddenCompression >= 1000, `hidden layer ${j.hiddenCompression}x`);
      const e = jsonOf(cli(['eval', out, '--data', 'fashion-mnist', '--limit', '200', '--json']), 'eval');
      t.equal(e.accuracy, j.accuracy, 'eval of the written file = the accuracy train reported');
    }
    // --dense-ranks instead of the uniform ladder (which stops at [2, 2, 2, 1], 409, on this layout):
    // 3·32 + 9·56 + 6·16 + 2·28 + 1 = 753.
    const out = at('ranks.flm');
    const j = jsonOf(await cliAsync([...base, '--layer', 'rtt', '--modes', '8x8x4x4/4x7x4x7', '--dense-ranks', '3,3,2,1', '-o', out, '--json'], { timeout: 300_000 }), 'train');
    const fc1 = j.layers.find((l: { name: string }) => l.name === 'fc1');
    t.same([fc1.op, fc1.ranks, fc1.params, j.denseRanks], ['rtt_dense', [3, 3, 2, 1], 753, [3, 3, 2, 1]]);
    const e = jsonOf(cli(['eval', out, '--data', 'fashion-mnist', '--limit', '200', '--json']), 'eval');
    t.equal(e.accuracy, j.accuracy, 'eval of the written file = the accuracy train reported');
    // --resume keeps the checkpoint's modes; another value is refused in one line.
    const r = cli(['train', '--data', 'fashion-mnist', '--epochs', '2', '--limit', '256', '--batch', '128', '--eval-limit', '200', '-o', at('rtt.flm'), '--resume', '--modes', '4x4x8x8/7x4x7x4']);
    t.not(r.status, 0);
    t.equal(r.stderr.trim().split('\n').length, 1, r.stderr.trim());
    t.match(r.stderr, /--modes 4x4x8x8\/7x4x7x4 differs from the checkpoint's 4x4x8x8\/4x7x4x7/);
  });
}
