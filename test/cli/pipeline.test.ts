// The whole command line on the real LeNet-5 fixture: convert -> inspect -> eval -> run, checked
// against onnxruntime (the original dense model), numpy (the .npy files and the spectra) and the
// layouts in runtime/ir.ts. Conversions run side by side, as many as there are cores.
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import * as ort from 'onnxruntime-node';
import t from 'tap';
import { loadDataset, limitDataset } from '../../converter/data/datasets.js';
import { importOnnxFile } from '../../converter/onnx/index.js';
import { ladder } from '../../converter/rank/candidates.js';
import { readFlm } from '../../runtime/format/reader.js';
import { Session } from '../../runtime/session.js';
import { cliAsync, jsonOf, python, type CliResult } from '../support/cli.js';
import { FIXTURES, needFashion, needNumpy, needPath } from '../support/require.js';

const SRC = resolve(FIXTURES, 'lenet5_fashion.onnx');
const SOURCE_PARAMS = 431_080; // fixtures/README.md

/** Roles each factor kind may hold (runtime/ir.ts); a factorised layer never holds 'weight'. */
const FACTOR_ROLES: Record<string, RegExp> = {
  svd_dense: /^(u|v|bias)$/,
  svd_conv2d: /^(u|v|bias)$/,
  tucker2_conv2d: /^(u_in|core|u_out|bias)$/,
  cp_conv2d: /^(a_in|k_h|k_w|a_out|bias)$/,
  tt_dense: /^(core\.\d+|bias)$/,
  tr_dense: /^(core\.\d+|bias)$/,
  ttl_dense: /^(core|factor\.\d+|bias)$/,
};

interface Layer {
  name: string;
  op: string;
  factorised: boolean;
  ranks: number[];
  params: number;
  bytes: number;
  tensors: Array<{ role: string; name: string; dtype: string; shape: number[]; bytes: number }>;
}
interface Inspect {
  layers: Layer[];
  totals: { params: number; tensorBytes: number; fileBytes: number; sourceParams: number | null; bytesRatio: number | null; factorisedLayers: number };
}

const numel = (s: number[]) => s.reduce((a, b) => a * b, 1);

if (needPath(t, SRC, 'fixture lenet5_fashion.onnx') && needFashion(t)) {
  const dir = mkdtempSync(join(tmpdir(), 'factorlite-pipeline-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const at = (name: string) => join(dir, name);

  // A small job queue: at most `cores` factorlite processes at once.
  const cores = Math.max(2, availableParallelism());
  let running = 0;
  const waiting: Array<() => void> = [];
  async function job(args: string[]): Promise<CliResult> {
    if (running >= cores) await new Promise<void>((r) => waiting.push(r));
    running++;
    try {
      return await cliAsync(args);
    } finally {
      running--;
      waiting.shift()?.();
    }
  }
  const memo = new Map<string, Promise<CliResult>>();
  const run = (args: string[]) => {
    const key = args.join('\0');
    if (!memo.has(key)) memo.set(key, job(args));
    return memo.get(key)!;
  };
  const json = async <T = any>(args: string[]): Promise<T> => jsonOf<T>(await run(args), `factorlite ${args.join(' ')}`);
  const convert = (out: string, ...opts: string[]) => json(['convert', SRC, '-o', at(out), '--json', ...opts]);
  const inspect = (file: string) => json<Inspect>(['inspect', at(file), '--json']);
  const evalJ = (file: string, limit: number) => json(['eval', file, '--data', 'fashion-mnist', '--limit', String(limit), '--json']);

  // Start the slow conversions now (CP first: it is the slowest), so they overlap with the checks.
  const METHOD_KINDS: Record<string, string[]> = {
    cp: ['cp_conv2d', 'svd_dense'],
    tr: ['tr_dense'],
    svd: ['svd_dense', 'svd_conv2d'],
    tucker: ['ttl_dense', 'tucker2_conv2d'],
    tt: ['tt_dense'],
    auto: ['svd_dense', 'svd_conv2d', 'tucker2_conv2d', 'tt_dense', 'ttl_dense'],
  };
  const methodRuns = Object.fromEntries(Object.keys(METHOD_KINDS).map((m) => [m, convert(`m-${m}.flm`, '--method', m, '--ratio', '5')]));
  const ratio10 = convert('l.flm', '--ratio', '10');
  const none = convert('none.flm', '--method', 'none');

  t.test('convert --ratio 10 --json: one JSON object, ratio reached', async (t) => {
    const r = await run(['convert', SRC, '-o', at('l.flm'), '--json', '--ratio', '10']);
    t.equal(r.status, 0, r.stderr);
    t.equal(r.stdout.split('\n').length, 2, 'exactly one line, newline-terminated');
    const j = await ratio10;
    t.type(j, 'object');
    t.ok(j.ratio >= 10, `ratio ${j.ratio} >= 10`);
    t.equal(j.targetRatio, 10);
    t.equal(j.sourceParams, SOURCE_PARAMS);
    t.equal(j.bytes, statSync(at('l.flm')).size, 'reported bytes are the file size');
    t.ok(Math.abs(j.ratio - SOURCE_PARAMS / j.params) < 1e-9, 'ratio = source params / params');
  });

  t.test('inspect --json on the --ratio 10 file', async (t) => {
    await ratio10;
    const ins = await inspect('l.flm');
    const file = statSync(at('l.flm')).size;
    t.equal(ins.totals.fileBytes, file);
    t.equal(ins.totals.sourceParams, SOURCE_PARAMS);
    t.ok(ins.totals.bytesRatio! >= 9.5, `bytesRatio ${ins.totals.bytesRatio} >= 9.5`);
    t.ok(Math.abs(ins.totals.bytesRatio! - (SOURCE_PARAMS * 4) / file) < 1e-9, 'bytesRatio = dense f32 bytes / file bytes');
    t.ok(ins.totals.factorisedLayers >= 1, 'at least one factorised layer');
    let sum = 0;
    for (const l of ins.layers) {
      const fromShapes = l.tensors.reduce((s, x) => s + numel(x.shape), 0);
      t.equal(l.params, fromShapes, `${l.name}: params = sum of its tensor sizes`);
      t.equal(l.bytes, l.tensors.reduce((s, x) => s + numel(x.shape) * (x.dtype === 'f32' ? 4 : x.dtype === 'f16' ? 2 : 1), 0), `${l.name}: bytes`);
      sum += l.params;
      if (!l.factorised) continue;
      const roles = l.tensors.map((x) => x.role);
      t.notOk(roles.includes('weight'), `${l.name} (${l.op}) holds no dense weight`);
      const allowed = FACTOR_ROLES[l.op];
      t.ok(allowed, `${l.op} is a factor kind`);
      for (const role of roles) t.match(role, allowed!, `${l.name}: role ${role} belongs to ${l.op}`);
      t.ok(l.ranks.length > 0 && l.ranks.every((r) => Number.isInteger(r) && r >= 1), `${l.name}: ranks ${l.ranks}`);
    }
    t.equal(sum, ins.totals.params, 'layer params add up to the total');
    t.ok(SOURCE_PARAMS / ins.totals.params >= 10, 'the parameter ratio itself is >= 10');
  });

  t.test('eval --limit 500 --json on the --ratio 10 file', async (t) => {
    await ratio10;
    const e = await evalJ(at('l.flm'), 500);
    t.equal(e.samples, 500);
    t.equal(e.accuracy, e.correct / 500);
    t.ok(e.accuracy > 0.5, `accuracy ${e.accuracy} > 0.5`);
  });

  for (const [method, kinds] of Object.entries(METHOD_KINDS)) {
    t.test(`--method ${method} --ratio 5 converts, evaluates and holds ${kinds.join(' or ')}`, async (t) => {
      const j = await methodRuns[method]!;
      t.ok(j.ratio >= 5, `ratio ${j.ratio} >= 5`);
      const [ins, e] = await Promise.all([inspect(`m-${method}.flm`), evalJ(at(`m-${method}.flm`), 200)]);
      const got = ins.layers.filter((l) => l.factorised).map((l) => l.op);
      t.ok(got.some((op) => kinds.includes(op)), `factorised kinds [${got}] include one of [${kinds}]`);
      if (method !== 'auto') {
        // TT and TR have no conv kind: their conv layers are Tucker-2 (README, "Method per layer kind").
        const allowed = method === 'tt' || method === 'tr' ? [...kinds, 'tucker2_conv2d'] : kinds;
        const foreign = got.filter((op) => !allowed.includes(op));
        t.same(foreign, [], `--method ${method} uses only its own kinds`);
      }
      t.equal(e.samples, 200);
      t.ok(e.accuracy > 0.3, `accuracy ${e.accuracy} > 0.3`);
    });
  }

  t.test('--method none: the .flm scores exactly as the ONNX model and as onnxruntime', async (t) => {
    const j = await none;
    t.equal(j.params, SOURCE_PARAMS);
    t.same(j.layers, [], 'no layer is factorised');
    const ins = await inspect('none.flm');
    t.equal(ins.totals.factorisedLayers, 0);
    const [a, b] = await Promise.all([evalJ(at('none.flm'), 500), evalJ(SRC, 500)]);
    t.equal(a.samples, 500);
    t.equal(a.accuracy, b.accuracy, 'same accuracy as the ONNX file');
    t.equal(a.correct, b.correct);
    // Independent: onnxruntime on the original model, same 500 images.
    const ds = limitDataset(loadDataset('fashion-mnist', 'test'), 500);
    const sess = await ort.InferenceSession.create(SRC);
    const out = await sess.run({ [sess.inputNames[0]!]: new ort.Tensor('float32', Float32Array.from(ds.images), [500, 1, 28, 28]) });
    const logits = out[sess.outputNames[0]!]!.data as Float32Array;
    let correct = 0;
    for (let i = 0; i < 500; i++) {
      const row = logits.subarray(i * 10, i * 10 + 10);
      if (row.indexOf(Math.max(...row)) === ds.labels[i]) correct++;
    }
    await sess.release();
    t.ok(Math.abs(a.correct - correct) <= 1, `factorlite ${a.correct}/500 vs onnxruntime ${correct}/500`);
  });

  t.test('--ranks FILE: inspect shows exactly those ranks', async (t) => {
    const ranksFile = at('ranks.json');
    writeFileSync(ranksFile, JSON.stringify({ '/f1/Gemm': 16, '/c2/Conv': [8, 6] }));
    const j = await convert('ranks.flm', '--ranks', ranksFile);
    t.ok(j.ratio > 1);
    const ins = await inspect('ranks.flm');
    const by = Object.fromEntries(ins.layers.map((l) => [l.name, l]));
    t.equal(by['/f1/Gemm']!.op, 'svd_dense');
    t.same(by['/f1/Gemm']!.ranks, [16]);
    t.equal(by['/f1/Gemm']!.params, 16 * (500 + 800) + 500);
    t.equal(by['/c2/Conv']!.op, 'tucker2_conv2d');
    t.same(by['/c2/Conv']!.ranks, [8, 6]);
    t.equal(by['/c2/Conv']!.params, 6 * 20 + 8 * 6 * 25 + 50 * 8 + 50, 'u_in 6x20, core 8x6x5x5, u_out 50x8, bias 50');
    t.equal(by['/c1/Conv']!.op, 'conv2d', 'layers the file does not name stay dense');
    t.equal(by['/f2/Gemm']!.op, 'dense');
    t.equal(ins.totals.factorisedLayers, 2);
    const e = await evalJ(at('ranks.flm'), 200);
    t.ok(e.accuracy > 0.3, `accuracy ${e.accuracy}`);
  });

  t.test('--method svd --energy 0.9: each layer keeps the smallest ladder rank with >= 90% energy (numpy spectra)', async (t) => {
    if (!needNumpy(t)) return;
    const j = await convert('energy.flm', '--method', 'svd', '--energy', '0.9');
    const ins = await inspect('energy.flm');
    const model = importOnnxFile(SRC);
    for (const node of model.graph.nodes) {
      const w = model.tensors.get(node.weights['weight'] ?? '');
      if (!w) continue;
      const rows = w.shape[0]!;
      const cols = numel(w.shape) / rows;
      const bias = node.weights['bias'] ? numel(model.tensors.get(node.weights['bias'])!.shape) : 0;
      const raw = at(`${node.name.replace(/\W/g, '_')}.f32`);
      writeFileSync(raw, w.data as Float32Array);
      // Smallest r whose leading singular values keep >= 0.9 of the energy, and the energy at r - 1.
      const [rStar, below] = JSON.parse(python(
        'import sys, json, numpy as np\n' +
        'w = np.fromfile(sys.argv[1], dtype=np.float32).astype(np.float64).reshape(int(sys.argv[2]), int(sys.argv[3]))\n' +
        's = np.linalg.svd(w, compute_uv=False) ** 2\n' +
        'c = np.cumsum(s) / s.sum()\n' +
        'r = int(np.argmax(c >= 0.9)) + 1\n' +
        'print(json.dumps([r, float(c[r - 2]) if r > 1 else 0.0]))',
        [raw, String(rows), String(cols)],
      )) as [number, number];
      const l = ins.layers.find((x) => x.name === node.name)!;
      const r = ladder(Math.min(rows, cols), 64).find((k) => k >= rStar)!;
      const factorised = r * (rows + cols) + bias < rows * cols + bias;
      t.ok(0.9 - below > 1e-6, `${node.name}: not on a knife edge`);
      if (factorised) {
        t.same(l.ranks, [r], `${node.name}: rank ${l.ranks} = smallest ladder rank >= ${rStar}`);
        t.equal(l.op, node.op === 'dense' ? 'svd_dense' : 'svd_conv2d');
        const rep = j.layers.find((x: any) => x.name === node.name);
        t.ok(1 - rep.relError ** 2 >= 0.9 - 1e-4, `${node.name}: measured kept energy ${1 - rep.relError ** 2}`);
      } else {
        t.equal(l.op, node.op, `${node.name}: no SVD rank reaching 0.9 is smaller than the dense layer`);
      }
    }
  });

  t.test('--quant f16 and int8: smaller files, the same factors, top-1 within 2 points of f32', async (t) => {
    const [, f16j, i8j] = await Promise.all([
      methodRuns['svd'], convert('q16.flm', '--method', 'svd', '--ratio', '5', '--quant', 'f16'),
      convert('q8.flm', '--method', 'svd', '--ratio', '5', '--quant', 'int8'),
    ]);
    t.equal(f16j.quant, 'f16');
    t.equal(i8j.quant, 'int8');
    const [f32, f16, i8] = await Promise.all([inspect('m-svd.flm'), inspect('q16.flm'), inspect('q8.flm')]);
    const size = { f32: statSync(at('m-svd.flm')).size, f16: statSync(at('q16.flm')).size, i8: statSync(at('q8.flm')).size };
    t.ok(size.f16 < size.f32 && size.i8 < size.f16, `sizes ${JSON.stringify(size)}`);
    // Expected tensor bytes from the f32 file: weights and factors shrink, biases stay f32.
    const expect = (bytesPer: number) => f32.layers.flatMap((l) => l.tensors)
      .reduce((s, x) => s + numel(x.shape) * (x.role === 'bias' || x.role === 'operand' ? 4 : bytesPer), 0);
    t.equal(f16.totals.tensorBytes, expect(2), 'f16 tensor bytes');
    t.equal(i8.totals.tensorBytes, expect(1), 'int8 tensor bytes');
    for (const [q, ins, dt] of [['f16', f16, 'f16'], ['int8', i8, 'i8']] as const) {
      t.same(ins.layers.map((l) => [l.name, l.op, l.ranks]), f32.layers.map((l) => [l.name, l.op, l.ranks]), `${q}: same layers and ranks`);
      const bad = ins.layers.flatMap((l) => l.tensors).filter((x) => (x.role === 'bias' ? x.dtype !== 'f32' : x.dtype !== dt));
      t.same(bad, [], `${q}: weights are ${dt}, biases f32`);
    }
    // Header overhead (graph, metadata, int8 scales, alignment) stays within 16 KiB.
    t.ok(Math.abs(size.i8 - size.f32 / 4) < 16 * 1024, `int8 ${size.i8} ~ f32/4 = ${size.f32 / 4}`);
    t.ok(Math.abs(size.f16 - size.f32 / 2) < 16 * 1024, `f16 ${size.f16} ~ f32/2 = ${size.f32 / 2}`);
    const [a32, a16, a8] = await Promise.all(['m-svd.flm', 'q16.flm', 'q8.flm'].map((f) => evalJ(at(f), 500)));
    t.ok(Math.abs(a16.accuracy - a32.accuracy) <= 0.02, `f16 ${a16.accuracy} vs f32 ${a32.accuracy}`);
    t.ok(Math.abs(a8.accuracy - a32.accuracy) <= 0.02, `int8 ${a8.accuracy} vs f32 ${a32.accuracy}`);
  });

  t.test('re-compressing a .flm (convert x.flm --method none --quant int8) keeps its factors', async (t) => {
    await methodRuns['svd'];
    await json(['convert', at('m-svd.flm'), '-o', at('re8.flm'), '--method', 'none', '--quant', 'int8', '--json']);
    const [a, b] = await Promise.all([inspect('m-svd.flm'), inspect('re8.flm')]);
    t.same(b.layers.map((l) => [l.name, l.op, l.ranks, l.params]), a.layers.map((l) => [l.name, l.op, l.ranks, l.params]));
    t.ok(b.layers.flatMap((l) => l.tensors).filter((x) => x.role !== 'bias').every((x) => x.dtype === 'i8'));
  });

  t.test('re-compressing a .flm keeps the ratio to the original ONNX source', async (t) => {
    await methodRuns['svd'];
    await json(['convert', at('m-svd.flm'), '-o', at('re8.flm'), '--method', 'none', '--quant', 'int8', '--json']);
    const [a, b] = await Promise.all([inspect('m-svd.flm'), inspect('re8.flm')]);
    t.equal(b.totals.sourceParams, SOURCE_PARAMS);
    t.ok(Math.abs((b.totals as any).paramsRatio - (a.totals as any).paramsRatio) < 1e-9, 'same parameter ratio as before re-compressing');
  });

  t.test('run: numpy in, numpy out, equal to onnxruntime on the original model', async (t) => {
    if (!needNumpy(t)) return;
    await none;
    const x = at('x.npy');
    const xRaw = at('x.f32');
    python(
      'import sys, numpy as np\n' +
      'x = np.random.default_rng(3).random((7, 1, 28, 28), dtype=np.float32)\n' +
      'np.save(sys.argv[1], x)\n' +
      'x.tofile(sys.argv[2])',
      [x, xRaw],
    );
    const r = await run(['run', at('none.flm'), '--input', x, '--output', at('y.npy')]);
    t.equal(r.status, 0, r.stderr);
    t.equal(r.stdout, '', 'with --output and no --json, stdout stays empty');
    const y = JSON.parse(python(
      'import sys, json, numpy as np\n' +
      'y = np.load(sys.argv[1])\n' +
      'print(json.dumps({"shape": list(y.shape), "dtype": str(y.dtype), "fortran": bool(np.isfortran(y)) and y.ndim > 1, "data": y.ravel().tolist()}))',
      [at('y.npy')],
    )) as { shape: number[]; dtype: string; fortran: boolean; data: number[] };
    t.same(y.shape, [7, 10]);
    t.equal(y.dtype, 'float32');
    t.equal(y.fortran, false);
    const xs = new Float32Array(readFileSync(xRaw).buffer.slice(0));
    const sess = await ort.InferenceSession.create(SRC);
    const out = await sess.run({ [sess.inputNames[0]!]: new ort.Tensor('float32', xs, [7, 1, 28, 28]) });
    const ref = out[sess.outputNames[0]!]!.data as Float32Array;
    await sess.release();
    let diff = 0;
    for (let i = 0; i < ref.length; i++) diff = Math.max(diff, Math.abs(ref[i]! - y.data[i]!));
    t.ok(diff < 1e-4, `max |factorlite run - onnxruntime| = ${diff}`);

    // --json without --output carries the same numbers; a compressed file runs as the runtime says.
    const rj = jsonOf(await run(['run', at('none.flm'), '--input', x, '--json']), 'run --json');
    t.same(rj.shape, [7, 10]);
    t.ok(rj.data.every((v: number, i: number) => Math.abs(v - y.data[i]!) < 1e-6), '--json data = y.npy');
    await ratio10;
    const rc = jsonOf(await run(['run', at('l.flm'), '--input', x, '--json']), 'run l.flm --json');
    const mine = Session.create(readFlm(readFileSync(at('l.flm')))).runBatch({ shape: [7, 1, 28, 28], data: xs });
    t.ok(rc.data.every((v: number, i: number) => Math.abs(v - mine.data[i]!) < 1e-5), 'run l.flm = Session on the same file');
  });
}
