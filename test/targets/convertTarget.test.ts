// convert --target: writes a model that fits the profile, or refuses with the numbers.
// (--method none keeps these quick; the ratio search itself runs in the README's measured example.)
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { readFlmFile } from '../../runtime/format/reader.js';
import { checkFit } from '../../targets/fit.js';
import { getTarget } from '../../targets/profiles.js';
import { cli, jsonOf } from '../support/cli.js';
import { needFixture } from '../support/require.js';

t.test('convert --target', async (t) => {
  const onnx = needFixture(t, 'mlp_fashion.onnx');
  if (!onnx) return;
  const dir = mkdtempSync(join(tmpdir(), 'flm-target-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));

  // The dense FC-2 fits a Pi 4 as it is; f32 is kept, the widest dtype.
  const out = join(dir, 'pi4.flm');
  const r = jsonOf<{ fits: boolean; quant: string; bytes: number; fit: { modelBytes: number; arenaBytes: number; arenaBudget: number; latencyMs: number } }>(
    cli(['convert', onnx, '-o', out, '--method', 'none', '--target', 'pi4', '--json']), 'convert --target pi4');
  t.ok(r.fits);
  t.equal(r.quant, 'f32', 'no narrower dtype than needed');
  t.equal(r.bytes, statSync(out).size, 'reports the bytes written');
  const again = checkFit(await readFlmFile(out), r.bytes, getTarget('pi4'), 0.1);
  t.ok(again.fits && again.arenaBytes === r.fit.arenaBytes, 'the written file checks the same way');
  t.ok(r.fit.latencyMs > 0, 'a predicted latency');

  // A latency budget below the prediction: nothing fits without compression -> refused with numbers.
  const slow = cli(['convert', onnx, '-o', join(dir, 'slow.flm'), '--method', 'none', '--target', 'pi4', '--latency-budget', '0.000001']);
  t.equal(slow.status, 1);
  t.match(slow.stderr, /^factorlite: nothing fits pi4 after 3 candidates; the smallest \(ratio -, int8\): predicted latency [\d.]+ ms is over the 0\.000001 ms budget/m);

  // 814,090 dense parameters cannot fit an ATmega2560 (128 KB for the model) uncompressed.
  const avr = cli(['convert', onnx, '-o', join(dir, 'avr.flm'), '--method', 'none', '--target', 'atmega2560', '--json']);
  t.equal(avr.status, 1, 'refused');
  const lines = avr.stdout.trim().split('\n');
  t.equal(lines.length, 1, 'one JSON object on stdout');
  const j = JSON.parse(lines[0]!) as { fits: boolean; tried: Array<{ quant: string; modelBytes: number; modelBudget: number; arenaBytes: number }> };
  t.equal(j.fits, false);
  t.same(j.tried.map((x) => x.quant), ['f32', 'f16', 'int8'], 'every dtype tried');
  t.ok(j.tried.every((x) => x.modelBytes > x.modelBudget), 'each one over the model budget');
  t.match(avr.stderr, /^factorlite: nothing fits atmega2560 after 3 candidates; the smallest \(ratio -, int8\): model is \d+ B, more than 117964 B \(131072 B less a 10% margin\) \[DOES_NOT_FIT\]$/m);

  const bad = cli(['convert', onnx, '-o', join(dir, 'x.flm'), '--method', 'none', '--target', 'pi9']);
  t.equal(bad.status, 1);
  t.match(bad.stderr, /^factorlite: unknown target pi9; known: /);
});
