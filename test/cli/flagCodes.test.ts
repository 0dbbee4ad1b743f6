// One code for every bad flag: a flag value out of its range, or flags that do not go together,
// end the command with one stderr line tagged [BAD_ARGUMENT], whichever layer finds it (the flag
// parsers, the convert checks, the converter's option checks, the sweep's list parsers). Bad files
// keep their own codes (BAD_INPUT, NOT_A_MODEL, ...), checked in errors.test.ts.
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { main } from '../../cli/main.js';
import { writeNpy } from '../../cli/npy.js';
import { buildModel, Rng } from '../converter/onnx/fixtures/build.js';
import { cli } from '../support/cli.js';

const dir = mkdtempSync(join(tmpdir(), 'factorlite-flag-codes-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const at = (name: string) => join(dir, name);

const rng = new Rng(3);
writeFileSync(at('tiny.onnx'), buildModel({
  opset: 13,
  inputs: [{ name: 'x', shape: ['n', 1, 8, 8] }],
  outputs: ['y'],
  nodes: [
    { op: 'Flatten', name: '/flat/Flatten', inputs: ['x'], outputs: ['f'], attrs: { axis: 1 } },
    { op: 'Gemm', name: '/fc/Gemm', inputs: ['f', 'fc.weight', 'fc.bias'], outputs: ['y'], attrs: { transB: 1 } },
  ],
  inits: [
    { name: 'fc.weight', dims: [10, 64], data: rng.array(640, 0.1) },
    { name: 'fc.bias', dims: [10], data: rng.array(10, 0.1) },
  ],
}));
writeFileSync(at('x.npy'), writeNpy([2, 1, 8, 8], rng.array(128, 1)));

/** The command line's main() in this process (one start-up for all cases), its stdout and stderr caught. */
async function inProcess(args: string[]): Promise<{ status: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const [out, err] = [process.stdout.write, process.stderr.write];
  process.stdout.write = ((s: string | Uint8Array) => ((stdout += String(s)), true)) as typeof process.stdout.write;
  process.stderr.write = ((s: string | Uint8Array) => ((stderr += String(s)), true)) as typeof process.stderr.write;
  try {
    const status = await main(args);
    return { status, stdout, stderr };
  } finally {
    process.stdout.write = out;
    process.stderr.write = err;
  }
}

t.test('a bad flag value or combination is BAD_ARGUMENT, in one line', async (t) => {
  const src = at('tiny.onnx');
  const out = at('out.flm');
  const c = ['convert', src, '-o', out];
  const cases: Array<[string[], RegExp]> = [
    // Out of range: the flag parser.
    [[...c, '--ratio', '0.5'], /--ratio 0\.5: expected a number >= 1/],
    [[...c, '--ratio', '0'], /--ratio 0: expected a number >= 1/],
    [[...c, '--ratio', '-2'], /--ratio -2/],
    [[...c, '--ratio', 'abc'], /--ratio abc/],
    [[...c, '--energy', '0'], /--energy 0: expected a fraction in \(0, 1\]/],
    [[...c, '--energy', '1.5'], /--energy 1\.5/],
    // Combinations the converter refuses (compressModel's BAD_OPTIONS under the command line).
    [[...c, '--method', 'none', '--ratio', '2'], /--method none keeps every layer dense/],
    [[...c, '--ratio', '2', '--energy', '0.9'], /exactly one of --ratio, --energy, --ranks/],
    [[...c, '--method', 'tt', '--ratio', '2', '--modes', '3'], /--modes/],
    // The convert command's own checks, for comparison.
    [[...c, '--ratio', '2', '--round-ranks', '1'], /--round-ranks 1/],
    [[...c, '--prefer', 'fast', '--ratio', '2'], /--prefer fast/],
    // Other commands.
    [['sweep', src, '--methods', 'svd', '--ratios', '0.5', '--out', at('sw')], /--ratios: 0\.5 is not a number above 1/],
    [['sweep', src, '--methods', 'nosuch', '--ratios', '2', '--out', at('sw')], /--methods: nosuch/],
    [['sweep', src, '--methods', 'svd', '--ratios', '2', '--quant', 'int3', '--out', at('sw')], /--quant: int3/],
    [['run', src, '--input', at('x.npy'), '--threads', '0'], /--threads 0/],
  ];
  for (const [args, msg] of cases) {
    const r = await inProcess(args);
    const lines = r.stderr.trim().split('\n');
    t.equal(r.status, 1, `${args.slice(3).join(' ')}: exit 1`);
    t.equal(lines.length, 1, `one line: ${r.stderr.trim()}`);
    t.match(lines[0], msg, 'names the flag and the value');
    t.match(lines[0], / \[BAD_ARGUMENT\]$/, 'tagged BAD_ARGUMENT');
    t.equal(r.stdout, '', 'nothing on stdout');
  }
  t.notOk(existsSync(out), 'no output written');
  t.notOk(existsSync(at('sw')), 'no sweep folder made');
});

t.test('the same through the real command line (a child process)', async (t) => {
  for (const args of [['convert', at('tiny.onnx'), '-o', at('out.flm'), '--ratio', '0.5'], ['convert', at('tiny.onnx'), '-o', at('out.flm'), '--method', 'none', '--ratio', '2']]) {
    const r = cli(args);
    t.equal(r.status, 1, `${args.slice(3).join(' ')}: exit 1`);
    t.match(r.stderr, /^factorlite: [^\n]* \[BAD_ARGUMENT\]\n$/, `one line tagged BAD_ARGUMENT: ${r.stderr.trim()}`);
    t.equal(r.stdout, '');
  }
});
