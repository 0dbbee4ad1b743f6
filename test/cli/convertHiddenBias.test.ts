// convert --hidden-bias none (the factorised hidden layers written without their bias, the
// classifier keeping its own) and convert --method adtn's fallback to the random start, from the
// command line on LeNet-5: what is written, what --json reports, what stderr says, and the
// one-line refusals.
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import t from 'tap';
import { cli, jsonOf } from '../support/cli.js';
import { FIXTURES, needFashion, needPath } from '../support/require.js';

const LENET = resolve(FIXTURES, 'lenet5_fashion.onnx');

if (needFashion(t) && needPath(t, LENET, 'fixture lenet5_fashion.onnx')) {
  const dir = mkdtempSync(join(tmpdir(), 'factorlite-hbias-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const at = (n: string) => join(dir, n);
  writeFileSync(at('f1.json'), JSON.stringify({ '/f1/Gemm': [4] }));
  writeFileSync(at('f2.json'), JSON.stringify({ '/f2/Gemm': [3] }));

  t.test('bad --hidden-bias: one line, non-zero exit, nothing written', async (t) => {
    for (const [args, msg] of [
      [['--hidden-bias', 'maybe'], /--hidden-bias maybe: expected full or none/],
      [['--hidden-bias', 'none', '--correct', '--calib', 'fashion-mnist'], /--correct writes a bias on each corrected layer: it does not go with --hidden-bias none/],
    ] as Array<[string[], RegExp]>) {
      const out = at('bad.flm');
      const r = cli(['convert', LENET, '-o', out, '--method', 'svd', '--ranks', at('f1.json'), ...args]);
      t.not(r.status, 0, args.join(' '));
      t.equal(r.stderr.trim().split('\n').length, 1, 'one line');
      t.match(r.stderr, msg);
      t.notOk(existsSync(out), 'nothing written');
    }
  });

  t.test('--hidden-bias none: the factorised hidden layer has no bias, the classifier keeps its own', async (t) => {
    const out = at('nobias.flm');
    const j = jsonOf(cli(['convert', LENET, '-o', out, '--method', 'svd', '--ranks', at('f1.json'), '--hidden-bias', 'none', '--calib', 'fashion-mnist', '--json']), 'convert');
    const f1 = j.layers.find((l: { name: string }) => l.name === '/f1/Gemm');
    // 500 x 800 at rank 4: 4 * (500 + 800) = 5,200, no bias (the output correction is not tried: it would write one).
    t.same([f1.op, f1.paramsAfter], ['svd_dense', 5200]);
    t.equal(j.correction, null);
    const ins = jsonOf(cli(['inspect', out, '--json']), 'inspect');
    const roles = (name: string) => ins.layers.find((l: { name: string }) => l.name === name).tensors.map((x: { role: string }) => x.role);
    t.same(roles('/f1/Gemm'), ['u', 'v']);
    t.same(roles('/f2/Gemm'), ['weight', 'bias']);
    const e = jsonOf(cli(['eval', out, '--data', 'fashion-mnist', '--limit', '200', '--json']), 'eval');
    t.ok(e.accuracy > 0.3, `still a classifier without f1's bias: ${e.accuracy}`);
    // The default keeps it.
    const k = jsonOf(cli(['convert', LENET, '-o', at('bias.flm'), '--method', 'svd', '--ranks', at('f1.json'), '--no-correct', '--json']), 'convert');
    t.equal(k.layers.find((l: { name: string }) => l.name === '/f1/Gemm').paramsAfter, 5700);
  });

  t.test('--method adtn: a fit that captures nothing falls back to the random start, and says so', async (t) => {
    const out = at('adtn.flm');
    const r = cli(['convert', LENET, '-o', out, '--method', 'adtn', '--ranks', at('f2.json'), '--calib', 'fashion-mnist', '--json']);
    const j = jsonOf(r, 'convert');
    const f2 = j.layers.find((l: { name: string }) => l.name === '/f2/Gemm');
    t.equal(f2.init, 'random');
    t.ok(f2.fitError > 0.9, `the fit's error ${f2.fitError}`);
    t.match(r.stderr, /\/f2\/Gemm: the adtn_dense fit captured nothing of the weight \(rel\. error 0\.9\d+\); the layer starts from its random initialisation at the target variance instead/);
    // The human output says it too.
    const h = cli(['convert', LENET, '-o', at('adtn2.flm'), '--method', 'adtn', '--ranks', at('f2.json'), '--calib', 'fashion-mnist']);
    t.equal(h.status, 0);
    t.match(h.stderr, /captured nothing of the weight/);
  });
}
