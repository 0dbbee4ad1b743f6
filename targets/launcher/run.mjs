#!/usr/bin/env node
// Launcher of a factorlite bundle: checks the bundle (Node version, every file's SHA-256 against
// manifest.json), loads model.flm in the bundled runtime and runs one .npy batch.
//   node run.mjs --input x.npy [--output y.npy] [--kernels auto|wasm-simd|reference] [--json]
//   node run.mjs --check            (verify only)
// Errors: one line on stderr, exit 1. Timings and peak RSS go in the --json object.
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const t0 = performance.now();
const here = dirname(fileURLToPath(import.meta.url));

function fail(message) {
  process.stderr.write(`factorlite bundle: ${message}\n`);
  process.exit(1);
}

function args(argv) {
  const o = { kernels: 'auto' };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => {
      const v = argv[++i];
      if (v === undefined) fail(`${a} needs a value`);
      return v;
    };
    if (a === '--input') o.input = value();
    else if (a === '--output') o.output = value();
    else if (a === '--kernels') o.kernels = value();
    else if (a === '--json') o.json = true;
    else if (a === '--check') o.check = true;
    else fail(`unknown argument ${a}; usage: node run.mjs --input x.npy [--output y.npy] [--kernels auto|wasm-simd|reference] [--json] | --check`);
  }
  if (!['auto', 'wasm-simd', 'reference'].includes(o.kernels)) fail(`--kernels ${o.kernels}: expected auto, wasm-simd or reference`);
  if (!o.check && !o.input) fail('--input x.npy is required (or --check)');
  return o;
}

/** Checks the Node version and every file of the manifest; returns the manifest. */
function verify(o) {
  let manifest;
  try {
    manifest = JSON.parse(readFileSync(join(here, 'manifest.json'), 'utf8'));
  } catch (e) {
    fail(`manifest.json cannot be read: ${e.message}`);
  }
  const major = Number(process.versions.node.split('.')[0]);
  if (major < manifest.node.minMajor) fail(`Node ${process.versions.node} is too old: the bundle needs Node ${manifest.node.minMajor} or later`);
  if (process.arch !== manifest.node.arch && !o.json) {
    process.stderr.write(`factorlite bundle: built for ${manifest.target} (${manifest.node.arch}), running on ${process.arch}\n`);
  }
  for (const [file, want] of Object.entries(manifest.files)) {
    let bytes;
    try {
      bytes = readFileSync(join(here, file));
    } catch {
      fail(`${file} is missing`);
    }
    const got = createHash('sha256').update(bytes).digest('hex');
    if (got !== want) fail(`${file} is damaged: SHA-256 ${got}, manifest says ${want}`);
  }
  return manifest;
}

/** A little-endian float32 .npy (format 1.0-3.0, C order). */
function readNpy(path) {
  let b;
  try {
    b = readFileSync(path);
  } catch {
    fail(`input file ${path} cannot be read`);
  }
  if (b.length < 10 || b[0] !== 0x93 || b.toString('latin1', 1, 6) !== 'NUMPY') fail(`${path} is not a .npy file`);
  const major = b[6];
  const hlen = major === 1 ? b.readUInt16LE(8) : b.readUInt32LE(8);
  const start = (major === 1 ? 10 : 12) + hlen;
  const header = b.toString('latin1', major === 1 ? 10 : 12, start);
  const descr = /'descr':\s*'([^']+)'/.exec(header)?.[1];
  if (descr !== '<f4') fail(`${path}: dtype ${descr}, expected <f4 (float32)`);
  if (/'fortran_order':\s*True/.test(header)) fail(`${path}: Fortran order is not supported`);
  const dims = /'shape':\s*\(([^)]*)\)/.exec(header)?.[1];
  if (dims === undefined) fail(`${path}: no shape in the header`);
  const shape = dims.split(',').map((s) => s.trim()).filter(Boolean).map(Number);
  const n = shape.reduce((a, d) => a * d, 1);
  if (b.length - start !== 4 * n) fail(`${path}: ${b.length - start} data bytes for shape (${shape}), expected ${4 * n}`);
  const data = new Float32Array(n);
  new Uint8Array(data.buffer).set(b.subarray(start, start + 4 * n));
  return { shape, data };
}

function writeNpy(path, shape, data) {
  let header = `{'descr': '<f4', 'fortran_order': False, 'shape': (${shape.join(', ')}${shape.length === 1 ? ',' : ''}), }`;
  header += ' '.repeat(63 - ((10 + header.length) % 64)) + '\n';
  const pre = Buffer.alloc(10);
  pre[0] = 0x93;
  pre.write('NUMPY', 1, 'latin1');
  pre[6] = 1;
  pre[7] = 0;
  pre.writeUInt16LE(header.length, 8);
  writeFileSync(path, Buffer.concat([pre, Buffer.from(header, 'latin1'), Buffer.from(data.buffer, data.byteOffset, data.byteLength)]));
}

const o = args(process.argv.slice(2));
const manifest = verify(o);
const tVerified = performance.now();
if (o.check) {
  const out = { ok: true, target: manifest.target, factorlite: manifest.factorlite, files: Object.keys(manifest.files).length, node: process.versions.node, arch: process.arch };
  process.stdout.write(o.json ? `${JSON.stringify(out)}\n` : `bundle ok: ${out.files} files checked, ${manifest.target}, Node ${out.node} ${out.arch}\n`);
  process.exit(0);
}
const x = readNpy(o.input);
const { load } = await import('./runtime/index.js');
let m;
try {
  m = await load(readFileSync(join(here, manifest.model)), { kernels: o.kernels });
} catch (e) {
  fail(`${manifest.model}: ${e.message}`);
}
const tLoaded = performance.now();
let y;
try {
  y = m.run(x);
} catch (e) {
  fail(`inference: ${e.message}`);
}
const tRun = performance.now();
if (o.output) writeNpy(o.output, y.shape, y.data);
const report = {
  target: manifest.target, builtFor: manifest.node.arch, node: process.versions.node, arch: process.arch, kernels: m.kernels, shape: y.shape,
  verifyMs: +(tVerified - t0).toFixed(2), loadMs: +(tLoaded - tVerified).toFixed(2), firstRunMs: +(tRun - tLoaded).toFixed(2),
  startupMs: +(tRun - t0).toFixed(2), peakRssBytes: process.resourceUsage().maxRSS * 1024,
  ...(o.output ? { output: o.output } : { data: Array.from(y.data) }),
};
if (o.json) process.stdout.write(`${JSON.stringify(report)}\n`);
else if (!o.output) {
  const cols = y.shape[y.shape.length - 1] ?? 1;
  for (let r = 0; r < y.data.length / cols; r++) process.stdout.write(`${Array.from(y.data.subarray(r * cols, (r + 1) * cols), (v) => v.toFixed(5)).join(' ')}\n`);
} else process.stderr.write(`wrote ${o.output} [${y.shape}] (${m.kernels}) in ${report.firstRunMs} ms\n`);
