// The command line's failure contract (docs: DESIGN.md "Command line"): a bad file or argument
// gives a non-zero exit, exactly one non-empty line on stderr naming what was wrong, and nothing
// on stdout. A failed convert leaves no output file behind and never clobbers an existing one.
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { buildModel, Rng } from '../converter/onnx/fixtures/build.js';
import { cli, type CliResult } from '../support/cli.js';
import { needFixture } from '../support/require.js';

const dir = mkdtempSync(join(tmpdir(), 'factorlite-cli-errors-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const at = (name: string) => join(dir, name);

const rng = new Rng(7);
/** A valid model: Flatten -> Gemm 784 -> 10 over [N, 1, 28, 28]. */
const tinyOnnx = buildModel({
  opset: 13,
  inputs: [{ name: 'x', shape: ['n', 1, 28, 28] }],
  outputs: ['y'],
  nodes: [
    { op: 'Flatten', name: '/flat/Flatten', inputs: ['x'], outputs: ['f'], attrs: { axis: 1 } },
    { op: 'Gemm', name: '/fc/Gemm', inputs: ['f', 'fc.weight', 'fc.bias'], outputs: ['y'], attrs: { transB: 1 } },
  ],
  inits: [
    { name: 'fc.weight', dims: [10, 784], data: rng.array(7840, 0.05) },
    { name: 'fc.bias', dims: [10], data: rng.array(10, 0.1) },
  ],
});
writeFileSync(at('tiny.onnx'), tinyOnnx);
writeFileSync(at('text.onnx'), 'this is a text file, not a model\nsecond line\n');
writeFileSync(at('random.onnx'), Uint8Array.from({ length: 4096 }, () => Math.floor(rng.uniform() * 256)));
writeFileSync(at('lstm.onnx'), buildModel({
  opset: 13,
  inputs: [{ name: 'x', shape: [5, 1, 4] }],
  outputs: ['y'],
  nodes: [{ op: 'LSTM', name: 'my_lstm_node', inputs: ['x', 'W', 'R'], outputs: ['y'], attrs: { hidden_size: 3 } }],
  inits: [{ name: 'W', dims: [1, 12, 4], data: rng.array(48) }, { name: 'R', dims: [1, 12, 3], data: rng.array(36) }],
}));
writeFileSync(at('einsum.onnx'), buildModel({
  opset: 13,
  inputs: [{ name: 'x', shape: ['n', 4] }],
  outputs: ['y'],
  nodes: [{ op: 'Einsum', name: 'my_einsum_node', inputs: ['x', 'W'], outputs: ['y'], attrs: { equation: 'ni,ij->nj' } }],
  inits: [{ name: 'W', dims: [4, 3], data: rng.array(12) }],
}));
writeFileSync(at('opset30.onnx'), buildModel({
  opset: 30,
  inputs: [{ name: 'x', shape: ['n', 4] }],
  outputs: ['y'],
  nodes: [{ op: 'Relu', name: 'r', inputs: ['x'], outputs: ['y'] }],
}));
mkdirSync(at('no-idx'));
writeFileSync(at('no-idx/readme.txt'), 'no IDX files here\n');

/** Non-zero exit, empty stdout, one non-empty stderr line that matches every key. */
function failsWith(t: Test, r: CliResult, keys: Array<string | RegExp>, what: string): void {
  t.not(r.status, 0, `${what}: non-zero exit`);
  t.equal(r.stdout, '', `${what}: nothing on stdout`);
  const lines = r.stderr.replace(/\n$/, '').split('\n');
  t.equal(lines.length, 1, `${what}: one stderr line, got ${JSON.stringify(r.stderr)}`);
  const line = lines[0] ?? '';
  t.ok(line.trim().length > 0, `${what}: the line is not empty`);
  for (const k of keys) {
    if (typeof k === 'string') t.ok(line.includes(k), `${what}: ${JSON.stringify(line)} names ${JSON.stringify(k)}`);
    else t.match(line, k, `${what}: ${JSON.stringify(line)} matches ${k}`);
  }
}

// A good .flm to point data and corruption errors at (tiny, so it converts in well under a second).
const good = at('tiny.flm');
const made = cli(['convert', at('tiny.onnx'), '--method', 'none', '-o', good, '--json']);
if (made.status !== 0) throw new Error(`cannot build the tiny .flm: ${made.stderr}`);

t.test('a file that is not an ONNX model', async (t) => {
  for (const f of ['text.onnx', 'random.onnx']) {
    failsWith(t, cli(['convert', at(f), '-o', at('out.flm'), '--ratio', '2']), [f, /ONNX/], `convert ${f}`);
    failsWith(t, cli(['eval', at(f), '--data', 'mnist', '--limit', '10']), [f, /ONNX/], `eval ${f}`);
    t.notOk(existsSync(at('out.flm')), `convert ${f} wrote no output`);
  }
});

t.test('a truncated ONNX file (the first half of lenet5_fashion.onnx)', async (t) => {
  const src = needFixture(t, 'lenet5_fashion.onnx');
  if (!src) return;
  const bytes = readFileSync(src);
  writeFileSync(at('half.onnx'), bytes.subarray(0, Math.floor(bytes.length / 2)));
  failsWith(t, cli(['convert', at('half.onnx'), '-o', at('out.flm'), '--ratio', '2']), ['half.onnx'], 'convert truncated');
  failsWith(t, cli(['eval', at('half.onnx'), '--data', 'mnist', '--limit', '10']), ['half.onnx'], 'eval truncated');
  t.notOk(existsSync(at('out.flm')));
});

t.test('an unsupported op names the op type and the node', async (t) => {
  failsWith(t, cli(['convert', at('lstm.onnx'), '-o', at('out.flm'), '--ratio', '2']), ['LSTM', 'my_lstm_node'], 'convert LSTM');
  failsWith(t, cli(['eval', at('lstm.onnx'), '--data', 'mnist']), ['LSTM', 'my_lstm_node'], 'eval LSTM');
  failsWith(t, cli(['convert', at('einsum.onnx'), '-o', at('out.flm'), '--method', 'none']), ['Einsum', 'my_einsum_node'], 'convert Einsum');
  t.notOk(existsSync(at('out.flm')));
});

t.test('an unsupported opset names the opset', async (t) => {
  failsWith(t, cli(['convert', at('opset30.onnx'), '-o', at('out.flm'), '--method', 'none']), [/opset 30\b/], 'convert opset 30');
});

t.test('missing model files', async (t) => {
  const gone = at('missing.onnx');
  failsWith(t, cli(['convert', gone, '-o', at('out.flm'), '--ratio', '2']), ['missing.onnx', 'does not exist'], 'convert missing');
  failsWith(t, cli(['eval', at('missing.flm'), '--data', 'mnist']), ['missing.flm', 'does not exist'], 'eval missing');
  failsWith(t, cli(['inspect', at('missing.flm')]), ['missing.flm', 'does not exist'], 'inspect missing');
  failsWith(t, cli(['run', at('missing.flm'), '--input', at('x.npy')]), [/does not exist|cannot be read/], 'run missing');
  failsWith(t, cli(['eval', dir, '--data', 'mnist']), [/not a file/], 'eval on a folder');
});

t.test('data folders', async (t) => {
  failsWith(t, cli(['eval', good, '--data', '/nonexistent']), ['/nonexistent', 'does not exist'], 'missing data folder');
  failsWith(t, cli(['eval', good, '--data', at('no-idx')]), ['no-idx', 't10k-images-idx3-ubyte'], 'folder without IDX files');
  // IDX files with a bad magic number.
  mkdirSync(at('bad-idx'));
  writeFileSync(at('bad-idx/t10k-images-idx3-ubyte'), Buffer.from('not an idx file at all'));
  writeFileSync(at('bad-idx/t10k-labels-idx1-ubyte'), Buffer.from('neither is this'));
  failsWith(t, cli(['eval', good, '--data', at('bad-idx')]), ['t10k-images-idx3-ubyte', /IDX/], 'bad IDX file');
});

t.test('bad arguments name the flag and the value', async (t) => {
  const out = at('out.flm');
  const cases: Array<[string[], Array<string | RegExp>]> = [
    [['convert', at('tiny.onnx'), '-o', out, '--method', 'bogus', '--ratio', '2'], ['bogus', '--method']],
    [['convert', at('tiny.onnx'), '-o', out, '--ratio', 'abc'], ['abc', '--ratio']],
    [['convert', at('tiny.onnx'), '-o', out, '--ratio', '0.5'], ['0.5', '--ratio']],
    [['convert', at('tiny.onnx'), '-o', out, '--energy', '1.5'], ['1.5', '--energy']],
    [['convert', at('tiny.onnx'), '-o', out, '--quant', 'int4', '--ratio', '2'], ['int4', '--quant']],
    [['convert', at('tiny.onnx'), '--ratio', '2'], [/--output|-o\b/]],
    [['convert', at('tiny.onnx'), '-o', out], [/--ratio/]],
    [['convert', at('tiny.onnx'), '-o', out, '--ratio', '2', '--energy', '0.9'], [/--ratio/, /--energy/]],
    [['convert', at('tiny.onnx'), '-o', out, '--method', 'none', '--ratio', '2'], [/none/]],
    [['convert', at('tiny.onnx'), '-o', out, '--ranks', at('no-such-ranks.json')], ['no-such-ranks.json']],
    [['eval', good, '--data', 'mnist', '--limit', '0'], ['--limit', '0']],
    [['eval', good, '--data', 'mnist', '--limit', '-3'], ['--limit', '-3']],
    [['eval', good, '--data', 'mnist', '--limit', '2.5'], ['--limit', '2.5']],
    [['eval', good], [/--data/]],
    [['frobnicate'], ['frobnicate']],
  ];
  for (const [args, keys] of cases) failsWith(t, cli(args), keys, args.join(' '));
  t.notOk(existsSync(out), 'no output file after any of them');
});

t.test('a ranks file that is not JSON, or names a layer the model lacks', async (t) => {
  writeFileSync(at('ranks-bad.json'), '{"/fc/Gemm": 3,');
  writeFileSync(at('ranks-unknown.json'), JSON.stringify({ '/no/such/layer': 3 }));
  writeFileSync(at('ranks-zero.json'), JSON.stringify({ '/fc/Gemm': 0 }));
  failsWith(t, cli(['convert', at('tiny.onnx'), '-o', at('out.flm'), '--ranks', at('ranks-bad.json')]), ['ranks-bad.json'], 'bad JSON');
  failsWith(t, cli(['convert', at('tiny.onnx'), '-o', at('out.flm'), '--ranks', at('ranks-unknown.json')]), ['/no/such/layer'], 'unknown layer');
  failsWith(t, cli(['convert', at('tiny.onnx'), '-o', at('out.flm'), '--ranks', at('ranks-zero.json'), '--json']), ['/fc/Gemm'], 'rank 0');
  t.notOk(existsSync(at('out.flm')));
});

t.test('an unreachable --ratio names the ratio on the last stderr line', async (t) => {
  // Without --json the rank search logs to stderr first; the error must still be the last line.
  for (const extra of [[], ['--json']]) {
    const r = cli(['convert', at('tiny.onnx'), '-o', at('out.flm'), '--ratio', '100000', ...extra]);
    t.not(r.status, 0);
    t.equal(r.stdout, '');
    t.match(r.stderr.trimEnd().split('\n').at(-1), /--ratio 100000/);
  }
  t.notOk(existsSync(at('out.flm')));
});

t.test('with --json, a failed convert prints only the error on stderr', async (t) => {
  failsWith(t, cli(['convert', at('tiny.onnx'), '-o', at('out.flm'), '--ratio', '100000', '--json']), ['100000'], 'ratio 100000 --json');
});

t.test('inspect on an ONNX file says it reads .flm', async (t) => {
  failsWith(t, cli(['inspect', at('tiny.onnx')]), ['tiny.onnx', /\.flm/], 'inspect onnx');
});

t.test('a corrupt .flm (one byte flipped) fails its CRC check', async (t) => {
  const bytes = new Uint8Array(readFileSync(good));
  bytes[bytes.length - 1000] ^= 0x5a; // inside the f32 weight data
  writeFileSync(at('corrupt.flm'), bytes);
  failsWith(t, cli(['inspect', at('corrupt.flm')]), [/CRC/], 'inspect corrupt');
  failsWith(t, cli(['eval', at('corrupt.flm'), '--data', 'mnist', '--limit', '10']), [/CRC/], 'eval corrupt');
  failsWith(t, cli(['convert', at('corrupt.flm'), '-o', at('out.flm'), '--method', 'none']), [/CRC/], 'convert corrupt');
  // A .flm truncated inside its data section.
  writeFileSync(at('short.flm'), bytes.subarray(0, bytes.length - 100));
  // The line names the file as well as the cause (the reader's own message does not know the path).
  failsWith(t, cli(['inspect', at('short.flm')]), ['short.flm', /FLM_/], 'inspect truncated flm');
  failsWith(t, cli(['export', at('short.flm'), '-o', at('short.onnx')]), ['short.flm', /FLM_/], 'export truncated flm');
  t.notOk(existsSync(at('short.onnx')), 'export wrote nothing');
  t.notOk(existsSync(at('out.flm')));
});

t.test('run: bad .npy input', async (t) => {
  writeFileSync(at('x.txt'), 'not numpy');
  failsWith(t, cli(['run', good, '--input', at('x.txt')]), ['x.txt', /npy/], 'run with a text input');
  failsWith(t, cli(['run', good, '--input', at('none.npy')]), ['none.npy'], 'run with a missing input');
  // A float32 [3, 784] batch for a model that takes [N, 1, 28, 28]: a shape error, not a crash.
  const hdr = "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 784), }";
  const pad = hdr.padEnd(128 - 10 - 1, ' ') + '\n';
  const npy = Buffer.concat([Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0, pad.length, 0]), Buffer.from(pad), Buffer.alloc(3 * 784 * 4)]);
  writeFileSync(at('flat.npy'), npy);
  failsWith(t, cli(['run', good, '--input', at('flat.npy')]), ['3,784', /shape/], 'run with a wrong-shaped input');
});

t.test('a failed convert neither leaves a file behind nor clobbers an existing one', async (t) => {
  const sub = at('outdir');
  mkdirSync(sub);
  const target = join(sub, 'model.flm');
  const failing: string[][] = [
    ['convert', at('lstm.onnx'), '-o', target, '--ratio', '2'],
    ['convert', at('text.onnx'), '-o', target, '--method', 'none'],
    ['convert', at('tiny.onnx'), '-o', target, '--ratio', '100000', '--json'],
    ['convert', at('tiny.onnx'), '-o', target, '--quant', 'int4', '--method', 'none'],
  ];
  for (const args of failing) {
    const r = cli(args);
    t.not(r.status, 0, args.join(' '));
    t.same(readdirSync(sub), [], `${args.join(' ')}: the output folder stays empty (no file, no temp file)`);
  }
  const sentinel = Buffer.from('existing output, must survive');
  writeFileSync(target, sentinel);
  for (const args of failing) {
    const r = cli(args);
    t.not(r.status, 0, args.join(' '));
    t.same(readFileSync(target), sentinel, `${args.join(' ')}: existing output untouched`);
    t.same(readdirSync(sub), ['model.flm'], 'no temp file left beside it');
  }
});
