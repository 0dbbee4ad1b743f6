// convert --modes on the real LeNet-5 fixture (f1 800 -> 500 reads its input as 50 channels x 4 x 4,
// here 10x5x4x4): the given reshape is what the written layers hold (inspect --json "modes", the
// factor shapes and the parameter count of the formula), the result runs the same in the factorlite
// runtime and in onnxruntime on its `export`, a "modes" entry of a --ranks file does the same for
// a conv (rtt) and for tt, and a bad value is refused in one line naming the layer and the mismatch.
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import * as ort from 'onnxruntime-node';
import t from 'tap';
import { planCompression, type CompressOptions } from '../../converter/compress.js';
import { parseModesFlag } from '../../converter/methods/layerModes.js';
import { importOnnxFile } from '../../converter/onnx/index.js';
import { readFlm } from '../../runtime/format/reader.js';
import { Session } from '../../runtime/session.js';
import { cli, cliAsync, jsonOf } from '../support/cli.js';
import { FIXTURES, needPath } from '../support/require.js';

const SRC = resolve(FIXTURES, 'lenet5_fashion.onnx');

if (needPath(t, SRC, 'fixture lenet5_fashion.onnx')) {
  const dir = mkdtempSync(join(tmpdir(), 'factorlite-convert-modes-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const at = (n: string) => join(dir, n);
  const ranks = (name: string, v: unknown) => {
    writeFileSync(at(name), JSON.stringify(v));
    return at(name);
  };
  type Layer = { name: string; op: string; ranks: number[]; params: number; modes?: string; tensors: Array<{ role: string; shape: number[] }> };
  const inspect = async (f: string) => jsonOf<{ layers: Layer[] }>(await cliAsync(['inspect', f, '--json']), 'inspect').layers;
  const byName = (ls: Layer[]) => Object.fromEntries(ls.map((l) => [l.name, l]));

  t.test('--modes layer=OUT/IN with rtt: written as given, runtime = onnxruntime on the export', async (t) => {
    const out = at('rtt.flm');
    const r = ranks('rtt.json', { '/f1/Gemm': { method: 'rtt', ranks: [2, 2, 2, 1] }, '/f2/Gemm': { method: 'rtt', ranks: [2, 2, 2, 1] } });
    const j = jsonOf(await cliAsync(['convert', SRC, '--method', 'rtt', '--ranks', r, '--modes', 'f1=5x5x4x5/10x5x4x4,/f2/Gemm=1x1x1x10/5x5x4x5', '-o', out, '--json']), 'convert');
    const l = byName(await inspect(out));
    t.equal(l['/f1/Gemm']!.modes, '5x5x4x5/10x5x4x4');
    t.equal(l['/f2/Gemm']!.modes, '1x1x1x10/5x5x4x5');
    t.notOk(l['/c2/Conv']!.modes, 'a layer left dense has no modes');
    // rtt: W^(1) [R1, T1, S1], W^(m) [R(m-1), Rm, Tm, Sm], W^(0) [RM, 1, 1].
    t.same(l['/f1/Gemm']!.tensors.filter((x) => x.role.startsWith('factor.')).map((x) => [x.role, x.shape]), [
      ['factor.0', [1, 1, 1]], ['factor.1', [2, 5, 10]], ['factor.2', [2, 2, 5, 5]], ['factor.3', [2, 2, 4, 4]], ['factor.4', [2, 1, 5, 4]],
    ]);
    // f1: 2·(5·10) + 4·(5·5) + 4·(4·4) + 2·(5·4) + 1 = 305 weights + the 500-entry bias;
    // f2: 2·(1·5) + 4·(1·5) + 4·(1·4) + 2·(10·5) + 1 = 147 + its 10-entry bias.
    t.equal(l['/f1/Gemm']!.params, 305 + 500);
    t.equal(l['/f2/Gemm']!.params, 147 + 10);
    t.equal(j.layers.find((x: { name: string }) => x.name === '/f1/Gemm').paramsAfter, 805, 'convert reports the same count');

    // The export of the result in onnxruntime against the factorlite runtime on the .flm.
    const onnx = at('rtt.onnx');
    jsonOf(await cliAsync(['export', out, '-o', onnx, '--json']), 'export');
    const n = 4;
    const x = new Float32Array(n * 784);
    for (let i = 0; i < x.length; i++) x[i] = ((i * 7919) % 1000) / 1000;
    const s = Session.create(readFlm(new Uint8Array(readFileSync(out))));
    const res = s.run({ [s.inputNames[0]!]: { shape: [n, 1, 28, 28], data: x } });
    const ours = res[s.outputNames[0]!]!.data;
    const sess = await ort.InferenceSession.create(onnx);
    const theirs = (await sess.run({ [sess.inputNames[0]!]: new ort.Tensor('float32', x, [n, 1, 28, 28]) }))[sess.outputNames[0]!]!.data as Float32Array;
    await sess.release();
    t.equal(theirs.length, ours.length);
    let err = 0;
    let scale = 0;
    for (let i = 0; i < ours.length; i++) {
      err = Math.max(err, Math.abs(ours[i]! - theirs[i]!));
      scale = Math.max(scale, Math.abs(theirs[i]!));
    }
    t.ok(scale > 0 && err <= 1e-4 * Math.max(1, scale), `max |runtime - onnxruntime| ${err} (scale ${scale})`);
  });

  t.test('"modes" in a --ranks entry: an rtt conv and a tt dense layer', async (t) => {
    const out = at('file.flm');
    const r = ranks('file.json', {
      '/c2/Conv': { method: 'rtt', ranks: [3, 3], modes: '5x10/4x5' },
      '/f1/Gemm': { method: 'tt', ranks: 2, modes: '5x10x10/8x10x10' },
    });
    jsonOf(await cliAsync(['convert', SRC, '--method', 'rtt', '--ranks', r, '-o', out, '--json']), 'convert');
    const l = byName(await inspect(out));
    t.same([l['/c2/Conv']!.op, l['/c2/Conv']!.modes], ['rtt_conv2d', '5x10/4x5']);
    // factor.0 [R2, 5, 5] is the kernel's; factor.1 [R1, 5, 4], factor.2 [R1, R2, 10, 5].
    t.same(l['/c2/Conv']!.tensors.filter((x) => x.role.startsWith('factor.')).map((x) => x.shape), [[3, 5, 5], [3, 5, 4], [3, 3, 10, 5]]);
    t.same([l['/f1/Gemm']!.op, l['/f1/Gemm']!.modes, l['/f1/Gemm']!.ranks], ['tt_dense', '5x10x10/8x10x10', [1, 2, 2, 1]]);
    t.equal(l['/f1/Gemm']!.params, 2 * 40 + 4 * 100 + 2 * 100 + 500);
  });

  t.test('bad --modes: refused naming the layer and the mismatch', async (t) => {
    // In process (the checks run before any decomposition or search): compressModel's plan.
    const model = importOnnxFile(SRC);
    const r = { '/f1/Gemm': { method: 'rtt', ranks: [1, 1] } };
    const plan = (o: Partial<CompressOptions>, modes?: string) => () => planCompression(model, { method: 'rtt', ...o, ...(modes !== undefined ? { modes: parseModesFlag(modes) } : {}), log: () => {} } as CompressOptions);
    for (const [run, msg] of [
      [plan({ ranks: r }, 'f9=20x25/32x25'), /--modes f9: no factorisable layer of that name \(have: \/c1\/Conv 20x1, \/c2\/Conv 50x20, \/f1\/Gemm 500x800, \/f2\/Gemm 10x500\)/],
      [plan({ ranks: r }, 'f1=20x25/32'), /--modes f1: 2 output modes but 1 input modes/],
      [plan({ ranks: r }, 'f1=20x25'), /--modes f1: "20x25" is not OUT\/IN/],
      [plan({ ranks: r }, 'f1=20x0/32x25'), /--modes f1: every mode must be at least 1/],
      [plan({ ranks: r }, 'f1=20x25/32x25,f1=20x25/32x25'), /--modes: layer f1 is given twice/],
      [plan({ ranks: r }, '3x3/3x3'), /--modes 3x3\/3x3 fits no factorisable layer/],
      [plan({ ranks: r }, 'f2=2x5/20x25'), /--modes f2=2x5\/20x25: layer \/f2\/Gemm is not factorised by a method that takes modes/],
      [plan({ method: 'svd', ratio: 10 }, 'f1=20x25/32x25'), /layer \/f1\/Gemm: method svd takes no modes/],
      [plan({ method: 'tt', ratio: 10 }, 'c2=5x10/4x5'), /layer \/c2\/Conv: method tucker2 takes no modes/],
      [plan({ method: 'auto', ratio: 10 }, 'f1=20x25/32x25'), /layer \/f1\/Gemm is not factorised by a method that takes modes/],
      [plan({ ranks: { '/f1/Gemm': { method: 'svd', ranks: 4, modes: '20x25/32x25' } } }), /ranks for layer \/f1\/Gemm: method svd takes no modes on a dense layer/],
      [plan({ ranks: { '/f1/Gemm': { method: 'rtt', ranks: 1, modes: 20 } } }), /ranks for layer \/f1\/Gemm: modes must be a string OUT\/IN/],
      [plan({ ranks: { '/f1/Gemm': { method: 'rtt', ranks: 1, modes: '20x25/32x25' } } }, 'f1=25x20/32x25'), /modes 20x25\/32x25 differ from --modes 25x20\/32x25/],
    ] as Array<[() => unknown, RegExp]>) {
      t.throws(run, msg);
    }
    // From the command line: one line on stderr, non-zero exit, nothing written.
    const bad = ranks('bad.json', r);
    const fileBad = ranks('badfile.json', { '/f1/Gemm': { method: 'rtt', ranks: [1, 1], modes: '20x25/32x24' } });
    for (const [args, msg] of [
      [['--method', 'rtt', '--ranks', bad, '--modes', 'f1=20x25/32x24'], /--modes f1=20x25\/32x24: layer \/f1\/Gemm: modes 20x25\/32x24 multiply to 500 x 768, the layer is a 500 x 800 dense layer \(out x in\)/],
      [['--method', 'rtt', '--ranks', fileBad], /ranks for layer \/f1\/Gemm: modes 20x25\/32x24 multiply to 500 x 768, the layer is a 500 x 800 dense layer/],
      [['--method', 'none', '--modes', 'f1=20x25/32x25'], /--modes needs a factorising --method/],
    ] as Array<[string[], RegExp]>) {
      const out = at('bad.flm');
      const res = cli(['convert', SRC, ...args, '-o', out]);
      t.not(res.status, 0, args.join(' '));
      t.equal(res.stderr.trim().split('\n').length, 1, `one line: ${res.stderr.trim()}`);
      t.match(res.stderr, msg, args.join(' '));
      t.notOk(existsSync(out), 'nothing written');
    }
  });
}
