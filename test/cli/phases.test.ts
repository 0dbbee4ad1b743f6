// convert --phases 1|2|3: the three-phase recipe of the tensorial-networks paper as one command
// (decompose; train each factorised block to reproduce the source there; distil end to end), on the
// real FC-2 fixture with a short run. Each phase's accuracy in --json is checked against eval of
// what was written, and the argument errors are one line naming the flag.
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import t from 'tap';
import { writeNpy } from '../../cli/npy.js';
import { limitDataset, loadDataset } from '../../converter/data/datasets.js';
import { cli, cliAsync, jsonOf } from '../support/cli.js';
import { npyInt32 } from '../support/npy.js';
import { FIXTURES, needFashion, needPath } from '../support/require.js';

const SRC = resolve(FIXTURES, 'mlp_fashion.onnx');

if (needPath(t, SRC, 'fixture mlp_fashion.onnx')) {
  const dir = mkdtempSync(join(tmpdir(), 'factorlite-phases-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const at = (n: string) => join(dir, n);

  t.test('bad --phases combinations: one line naming the problem, non-zero exit, nothing written', async (t) => {
    const out = at('never.flm');
    const cases: Array<[string[], RegExp]> = [
      [['--method', 'rtt', '--ratio', '10', '--phases', '4'], /^--phases 4: expected 1, 2 or 3/],
      [['--method', 'rtt', '--ratio', '10', '--phases', 'two'], /^--phases two: expected 1, 2 or 3/],
      [['--method', 'rtt', '--ratio', '10', '--phases', '3'], /^--phases 3 needs --finetune <data>/],
      [['--method', 'rtt', '--ratio', '10', '--phases', '1', '--finetune', 'fashion-mnist'], /^--phases 1 is the decomposition alone/],
      [['--method', 'none', '--phases', '2', '--finetune', 'fashion-mnist'], /^--phases needs a factorising --method/],
      [['--method', 'rtt', '--ratio', '10', '--phases', '2', '--finetune', 'fashion-mnist', '--epochs', '2'], /^--phases 2 stops after the block-wise phase/],
      [['--method', 'rtt', '--ratio', '10', '--phases', '3', '--finetune', 'fashion-mnist', '--epochs', '0'], /^--epochs 0: expected an integer >= 1 with --phases 3/],
      [['--method', 'rtt', '--ratio', '10', '--block-steps', '5'], /^--block-steps goes with --phases 2 or 3/],
      [['--method', 'rtt', '--ratio', '10', '--phases', '3', '--finetune', 'fashion-mnist', '--block-steps', '0'], /^--block-steps 0: expected an integer >= 1/],
      [['--method', 'rtt', '--ratio', '10', '--phases', '3', '--finetune', 'fashion-mnist', '--target', 'stm32f4'], /^--phases with --target is not built/],
      [['--method', 'decouple', '--neurons', '4', '--phases', '3'], /^--phases does not apply to --method decouple/],
    ];
    for (const [args, re] of cases) {
      const r = cli(['convert', SRC, '-o', out, ...args]);
      t.not(r.status, 0, `${args.join(' ')} fails`);
      const lines = r.stderr.trim().split('\n');
      t.equal(lines.length, 1, `one line on stderr for ${args.join(' ')}: ${r.stderr}`);
      t.match(lines[0]!.replace(/^factorlite: /, ''), re, args.join(' '));
      t.equal(r.stdout, '', 'nothing on stdout');
      t.notOk(existsSync(out), 'nothing written');
    }
  });

  if (needFashion(t)) {
    // 500 training images (450 trained on, the rest validate) and the same file as the test split.
    const train = limitDataset(loadDataset('fashion-mnist', 'train'), 500);
    writeFileSync(at('x.npy'), writeNpy([500, 1, 28, 28], Float32Array.from(train.images)));
    writeFileSync(at('y.npy'), npyInt32(train.labels!));

    // Ranks given (rtt rank 4 on the hidden layer, 65x) rather than searched: the search is not under test.
    writeFileSync(at('ranks.json'), JSON.stringify({ '/f1/Gemm': [4] }));

    t.test('convert --method rtt --finetune --phases 3 reports each phase; --phases 2 stops after the block-wise one', async (t) => {
      const flm3 = at('rtt3.flm');
      const flm2 = at('rtt2.flm');
      const common = ['--method', 'rtt', '--ranks', at('ranks.json'), '--finetune', at('x.npy'), '--labels', at('y.npy'), '--block-steps', '60', '--json'];
      const [r3, r2] = await Promise.all([
        cliAsync(['convert', SRC, '-o', flm3, ...common, '--phases', '3', '--epochs', '1'], { timeout: 600_000 }),
        cliAsync(['convert', SRC, '-o', flm2, ...common, '--phases', '2'], { timeout: 600_000 }),
      ]);
      const j3 = jsonOf(r3, 'convert --phases 3');
      const j2 = jsonOf(r2, 'convert --phases 2');
      t.ok(j3.ratio > 60, `ratio ${j3.ratio}`);
      t.same(j3.phases.map((p: { phase: number; name: string }) => `${p.phase}:${p.name}`), ['1:decompose', '2:blockwise', '3:distil']);
      t.same(j2.phases.map((p: { phase: number; name: string }) => `${p.phase}:${p.name}`), ['1:decompose', '2:blockwise']);
      for (const p of [...j3.phases, ...j2.phases]) t.ok(p.accuracy > 0 && p.accuracy <= 1, `phase ${p.phase} accuracy ${p.accuracy}`);
      // Both runs start from the same decomposition and the same block-wise phase (seeded).
      t.equal(j3.phases[0].accuracy, j2.phases[0].accuracy, 'same decomposition');
      t.equal(j3.phases[1].accuracy, j2.phases[1].accuracy, 'same block-wise phase');
      t.equal(j2.finetune.epochs, 0, '--phases 2 runs no end-to-end epoch');
      t.equal(j3.finetune.epochs, 1);
      t.equal(j3.finetune.blockSteps, 60);
      // The block-wise phase brought every factorised block closer to the source's output there.
      t.ok(j3.phases[1].blocks.length >= 1, 'blocks reported');
      for (const b of j3.phases[1].blocks) t.ok(b.relErrorAfter < b.relErrorBefore, `${b.node}: ${b.relErrorBefore} -> ${b.relErrorAfter}`);
      // What was written is what the last phase measured: eval on the same split in the runtime.
      for (const [flm, j] of [[flm3, j3], [flm2, j2]] as const) {
        const e = jsonOf(cli(['eval', flm, '--data', at('x.npy'), '--labels', at('y.npy'), '--json']), 'eval');
        t.ok(Math.abs(e.accuracy - j.phases[j.phases.length - 1].accuracy) < 1e-9, `${flm}: eval ${e.accuracy} = last phase ${j.phases[j.phases.length - 1].accuracy}`);
      }
      // The human table has one row per phase.
      const h = cli(['convert', SRC, '-o', at('rtt1.flm'), '--method', 'rtt', '--ranks', at('ranks.json'), '--calib', at('x.npy'), '--phases', '1']);
      t.equal(h.status, 0, h.stderr);
      t.match(h.stdout, /phase\s+\|?\s*step/);
      t.match(h.stdout, /decompose/);
    });
  }
}
