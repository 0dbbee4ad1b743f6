// factorlite bundle, run as a Pi runs it: the x86-64 Node, then official arm64 and 32-bit Arm
// Node builds under QEMU, each with the WebAssembly SIMD and the reference kernels, against the
// runtime in this process on the same batch of Fashion-MNIST test images.
//
// Tolerance: |y - y_ref| <= 1e-5 * max(1, |y_ref|). WebAssembly float arithmetic is deterministic
// across engines and V8 ships its own libm, so the outputs are expected bit for bit; the bound
// leaves room only for a reordered sum.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { writeNpy } from '../../cli/npy.js';
import { compressModel } from '../../converter/compress.js';
import { loadDataset } from '../../converter/data/datasets.js';
import { importOnnxFile } from '../../converter/onnx/index.js';
import { writeFlm } from '../../converter/writer.js';
import { readFlm } from '../../runtime/format/reader.js';
import { referenceBackend, wasmBackend } from '../../runtime/kernels/backend.js';
import { Session } from '../../runtime/session.js';
import { armNode, type ArmNode } from '../support/armNode.js';
import { cli, jsonOf } from '../support/cli.js';
import { needFashion, needFixture } from '../support/require.js';

const TOL = 1e-5;
/** The device's environment: none of the test runner's loaders. */
const CLEAN_ENV = { ...process.env, NODE_OPTIONS: '' };
const BATCH = 4;

function close(t: Test, got: number[], want: Float32Array, what: string): void {
  t.equal(got.length, want.length, `${what}: ${want.length} outputs`);
  let worst = 0;
  let exact = 0;
  for (let i = 0; i < want.length; i++) {
    const d = Math.abs(got[i]! - want[i]!) / Math.max(1, Math.abs(want[i]!));
    if (d > worst) worst = d;
    if (Math.fround(got[i]!) === want[i]) exact++;
  }
  t.ok(worst <= TOL, `${what}: worst relative difference ${worst.toExponential(2)} <= ${TOL} (${exact}/${want.length} bit for bit)`);
}

t.test('bundle of a factorised LeNet-5 runs on x86-64, arm64 and armv7 Node alike', async (t) => {
  const onnx = needFixture(t, 'lenet5_fashion.onnx');
  if (!onnx || !needFashion(t)) return;
  const dir = mkdtempSync(join(tmpdir(), 'flm-bundle-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));

  const { model } = compressModel(importOnnxFile(onnx), { method: 'svd', energy: 0.9 });
  const bytes = writeFlm(model);
  const flm = join(dir, 'lenet.flm');
  writeFileSync(flm, bytes);
  const ds = loadDataset('fashion-mnist', 'test');
  const x = { shape: [BATCH, 1, 28, 28], data: ds.images.slice(0, BATCH * 784) };
  const xPath = join(dir, 'x.npy');
  writeFileSync(xPath, writeNpy(x.shape, x.data));
  const m = readFlm(bytes);
  const want = {
    'wasm-simd': Session.create(m, { backend: await wasmBackend(), retainWeights: false }).runBatch(x).data,
    reference: Session.create(m, { backend: referenceBackend }).runBatch(x).data,
  };

  const out = join(dir, 'b');
  const r = jsonOf<{ files: number; runtimeBytes: number; bytes: number; fit: { fits: boolean } }>(cli(['bundle', flm, '--target', 'pi4', '-o', out, '--json']), 'bundle');
  t.ok(r.fit.fits, 'the model fits a Pi 4');
  t.ok(r.runtimeBytes < 1024 * 1024, `runtime in the bundle is ${r.runtimeBytes} B, under 1 MB`);
  const manifest = JSON.parse(readFileSync(join(out, 'manifest.json'), 'utf8')) as { files: Record<string, string> };
  const names = Object.keys(manifest.files);
  t.ok(names.includes('model.flm') && names.includes('runtime/index.js') && names.includes('runtime/kernels/wasm/kernels.wasm'), 'model, runtime and kernels are listed');
  t.notOk(names.some((n) => n.includes('node_modules') || n.includes('converter')), 'no node_modules, no converter code');
  t.notOk(readFileSync(join(out, 'runtime/format/layout.js'), 'utf8').includes("'crc-32'"), 'the crc-32 package is not imported');

  const run = (argv: string[], kernels: string, label: string) => {
    const p = spawnSync(argv[0]!, [...argv.slice(1), join(out, 'run.mjs'), '--input', xPath, '--kernels', kernels, '--json'], { encoding: 'utf8', timeout: 300_000, env: CLEAN_ENV });
    t.equal(p.status, 0, `${label} ${kernels}: exit 0${p.status ? `: ${p.stderr}` : ''}`);
    return p.status === 0 ? jsonOf<{ arch: string; kernels: string; shape: number[]; data: number[]; startupMs: number }>({ status: 0, stdout: p.stdout, stderr: p.stderr }, label) : undefined;
  };
  const machines: Array<[string, ArmNode | undefined]> = [
    ['x64', { label: 'this Node', argv: [process.execPath] }],
    ['arm64', armNode(t, 'arm64')],
    ['arm', armNode(t, 'armv7l')],
  ];
  for (const [arch, node] of machines) {
    if (!node) continue;
    for (const kernels of ['wasm-simd', 'reference'] as const) {
      const y = run(node.argv, kernels, node.label);
      if (!y) continue;
      t.equal(y.arch, arch, `${node.label} reports ${arch}`);
      t.equal(y.kernels, kernels, `${node.label} ran the ${kernels} kernels`);
      t.same(y.shape, [BATCH, 10], 'logits shape');
      close(t, y.data, want[kernels], `${node.label}, ${kernels}`);
    }
  }

  // A damaged file stops the launcher before it loads anything.
  writeFileSync(join(out, 'runtime/session.js'), `${readFileSync(join(out, 'runtime/session.js'), 'utf8')}\n// edited`);
  const bad = spawnSync(process.execPath, [join(out, 'run.mjs'), '--check', '--json'], { encoding: 'utf8', env: CLEAN_ENV });
  t.equal(bad.status, 1, 'a damaged bundle exits 1');
  t.match(bad.stderr, /^factorlite bundle: runtime\/session\.js is damaged: SHA-256 [0-9a-f]{64}, manifest says [0-9a-f]{64}\n$/, 'one line naming the file');
});

t.test('bundle refuses what cannot run as a bundle', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'flm-bundle-bad-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const notFlm = join(dir, 'x.flm');
  writeFileSync(notFlm, 'hello');
  const r1 = cli(['bundle', notFlm, '--target', 'pi4', '-o', join(dir, 'o')]);
  t.equal(r1.status, 1);
  t.match(r1.stderr, /is not a \.flm file/);
  const r2 = cli(['bundle', notFlm, '--target', 'pi9', '-o', join(dir, 'o')]);
  t.equal(r2.status, 1);
  t.match(r2.stderr, /^factorlite: unknown target pi9; known: pi3, pi4, /);
});
