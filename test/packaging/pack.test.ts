// The packages as a user installs them: `npm pack` (prepack compiles to JavaScript), then install
// each tarball into an empty folder outside the checkout, and run a model and the CLI from there.
//   factorlite-runtime: from its tarball alone, --offline (no registry), no dependencies at all;
//   factorlite: --omit=dev, its few dependencies from the registry (or npm's cache), none of the
//   optional peers (onnxruntime-node, serialport, johnny-five, pngjs, ssh2).
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import t from 'tap';
import { writeNpy } from '../../cli/npy.js';
import { importOnnxFile } from '../../converter/onnx/index.js';
import { writeFlm } from '../../converter/writer.js';
import { readFlm } from '../../runtime/format/reader.js';
import { wasmBackend } from '../../runtime/kernels/backend.js';
import { Session } from '../../runtime/session.js';
import { missing, needFixture, REPO_ROOT } from '../support/require.js';

const CLEAN_ENV = { ...process.env, NODE_OPTIONS: '', npm_config_audit: 'false', npm_config_fund: 'false' };

function sh(cmd: string, args: string[], cwd: string, timeout = 600_000) {
  return spawnSync(cmd, args, { cwd, encoding: 'utf8', env: CLEAN_ENV, timeout, maxBuffer: 64 * 1024 * 1024 });
}

function duBytes(dir: string): number {
  let n = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    n += e.isDirectory() ? duBytes(p) : statSync(p).size;
  }
  return n;
}

t.test('runtime and CLI packages install into empty folders and run a model', async (t) => {
  const onnx = needFixture(t, 'mlp_fashion.onnx');
  if (!onnx) return;
  const dir = mkdtempSync(join(tmpdir(), 'flm-pack-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const model = importOnnxFile(onnx);
  const flm = join(dir, 'mlp.flm');
  writeFileSync(flm, writeFlm(model));
  const x = { shape: [2, 1, 28, 28], data: Float32Array.from({ length: 2 * 784 }, (_, i) => ((i * 37) % 256) / 255) };
  writeFileSync(join(dir, 'x.npy'), writeNpy(x.shape, x.data));
  const want = Array.from(Session.create(readFlm(writeFlm(model)), { backend: await wasmBackend(), retainWeights: false }).runBatch(x).data);

  // --- factorlite-runtime --------------------------------------------------------------------
  const p1 = sh('npm', ['pack', '--silent', '--pack-destination', dir], resolve(REPO_ROOT, 'packages/runtime'));
  t.equal(p1.status, 0, `npm pack packages/runtime${p1.status ? `: ${p1.stderr}` : ''}`);
  const rtTgz = join(dir, 'factorlite-runtime-0.1.0.tgz');
  const app = join(dir, 'pi-app');
  mkdirSync(app);
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'pi-app', private: true, type: 'module' }));
  const i1 = sh('npm', ['install', '--offline', rtTgz], app);
  t.equal(i1.status, 0, `npm install --offline of the runtime tarball alone${i1.status ? `: ${i1.stderr}` : ''}`);
  t.same(readdirSync(join(app, 'node_modules')).filter((n) => !n.startsWith('.')), ['factorlite-runtime'], 'nothing but the runtime is installed');
  const size = duBytes(join(app, 'node_modules'));
  t.ok(size < 1024 * 1024, `runtime install is ${size} B, under 1 MB`);
  writeFileSync(join(app, 'main.mjs'), [
    "import { readFileSync } from 'node:fs';",
    "import { load } from 'factorlite-runtime';",
    'const m = await load(process.argv[2]);',
    `const y = m.run({ shape: ${JSON.stringify(x.shape)}, data: Float32Array.from(${JSON.stringify(Array.from(x.data))}) });`,
    'process.stdout.write(JSON.stringify({ kernels: m.kernels, data: Array.from(y.data) }));',
  ].join('\n'));
  const r1 = sh(process.execPath, ['main.mjs', flm], app);
  t.equal(r1.status, 0, `an application imports the runtime package${r1.status ? `: ${r1.stderr}` : ''}`);
  if (r1.status === 0) {
    const out = JSON.parse(r1.stdout) as { kernels: string; data: number[] };
    t.equal(out.kernels, 'wasm-simd', 'with the WebAssembly SIMD kernels');
    t.same(out.data, want, 'same logits as the runtime in this checkout');
  }
  // The types travel with it: a strict TypeScript program against the installed package compiles.
  writeFileSync(join(app, 'typed.ts'), [
    "import { load, type Tensor, type LoadedModel } from 'factorlite-runtime';",
    "const m: LoadedModel = await load('m.flm', { kernels: 'reference' });",
    'const y: Tensor = m.run({ shape: [1, 784], data: new Float32Array(784) });',
    'export const rows: number = y.shape[0] ?? 0;',
  ].join('\n'));
  const tsc = sh(process.execPath, [resolve(REPO_ROOT, 'node_modules/typescript/bin/tsc'), '--noEmit', '--strict', '--module', 'nodenext', '--moduleResolution', 'nodenext',
    '--target', 'es2022', '--types', 'node', '--typeRoots', resolve(REPO_ROOT, 'node_modules/@types'), 'typed.ts'], app);
  t.equal(tsc.status, 0, `types of the installed package check${tsc.status ? `: ${tsc.stdout}` : ''}`);

  // --- factorlite (the CLI) -------------------------------------------------------------------
  const p2 = sh('npm', ['pack', '--silent', '--pack-destination', dir], REPO_ROOT);
  t.equal(p2.status, 0, `npm pack${p2.status ? `: ${p2.stderr}` : ''}`);
  const cliTgz = join(dir, 'factorlite-0.1.0.tgz');
  const listing = sh('tar', ['tzf', cliTgz], dir).stdout.split('\n');
  t.notOk(listing.some((f) => /^package\/(test|bench|converter|runtime|cli)\//.test(f)), 'no tests, benches or TypeScript sources in the tarball');
  t.ok(listing.includes('package/dist/cli/main.js') && listing.includes('package/dist/runtime/index.js') && listing.includes('package/dist/targets/index.js'), 'compiled CLI, runtime and targets');
  // hil --emulate builds the firmware port from its C sources where the compiled emulators.js looks.
  t.ok(listing.includes('package/dist/firmware-bridge/firmware/Makefile') && listing.includes('package/dist/firmware-bridge/firmware/ports/host/port_host.c'), 'the firmware sources ship');
  t.notOk(listing.some((f) => f.startsWith('package/dist/firmware-bridge/firmware/build/')), 'no firmware builds in the tarball');
  const ws = join(dir, 'workstation');
  mkdirSync(ws);
  writeFileSync(join(ws, 'package.json'), JSON.stringify({ name: 'ws', private: true }));
  const i2 = sh('npm', ['install', '--prefer-offline', '--omit=dev', cliTgz], ws);
  if (i2.status !== 0 && /ENOTFOUND|EAI_AGAIN|ECONNREFUSED|ENOTCACHED/.test(i2.stderr)) return void missing(t, `the npm registry is not reachable: ${i2.stderr.trim().split('\n')[0]}`);
  t.equal(i2.status, 0, `npm install --omit=dev of the CLI tarball${i2.status ? `: ${i2.stderr}` : ''}`);
  for (const peer of ['onnxruntime-node', 'serialport', 'johnny-five', 'pngjs', 'ssh2']) t.notOk(existsSync(join(ws, 'node_modules', peer)), `${peer} is not installed`);
  const bin = join(ws, 'node_modules/.bin/factorlite');
  const v = sh(bin, ['--version'], ws);
  t.equal(v.stdout.trim(), '0.1.0', 'factorlite --version from the installed bin');
  const tg = sh(bin, ['targets', '--json'], ws);
  t.equal(tg.status, 0, 'factorlite targets --json');
  t.ok((JSON.parse(tg.stdout) as { targets: unknown[] }).targets.length >= 9, 'lists the profiles');
  const run = sh(bin, ['run', flm, '--input', join(dir, 'x.npy'), '--json'], ws);
  t.equal(run.status, 0, `factorlite run${run.status ? `: ${run.stderr}` : ''}`);
  if (run.status === 0) t.same((JSON.parse(run.stdout) as { data: number[] }).data, want, 'the installed CLI gives the same logits');
  // hil on the host port from the installed package made read-only (as a global install owned by
  // another user is): make builds the firmware into the cache ($FACTORLITE_CACHE), not the package.
  writeFileSync(join(dir, 'y.npy'), writeNpy([2], Float32Array.from([0, 1])));
  if (!['make', 'cc'].every((tool) => sh('sh', ['-c', `command -v ${tool}`], ws).status === 0)) missing(t, 'make and cc (hil --emulate host builds the firmware)');
  else {
    const pkg = join(ws, 'node_modules', 'factorlite');
    t.equal(sh('chmod', ['-R', 'a-w', pkg], ws).status, 0, 'the installed package is made read-only');
    t.teardown(() => void sh('chmod', ['-R', 'u+w', pkg], ws));
    const cache = join(dir, 'cache');
    // The firmware builds and the emulated board starts from the installed sources; talking to it
    // needs the optional peer serialport, which this install leaves out, so hil names it and exits 1.
    const hil = spawnSync(bin, ['hil', '--model', flm, '--emulate', 'host', '--data', join(dir, 'x.npy'), '--labels', join(dir, 'y.npy'), '--json'],
      { cwd: ws, encoding: 'utf8', env: { ...CLEAN_ENV, FACTORLITE_CACHE: cache }, timeout: 600_000 });
    t.match(hil.stderr, /host emulator running/, 'the installed firmware sources build and the host board starts');
    t.equal(hil.status, 1, 'hil without serialport: exit 1');
    t.match(hil.stderr, /needs the npm package serialport, which is not installed: run npm install serialport/, 'names the package to add');
    t.notOk(existsSync(join(pkg, 'dist/firmware-bridge/firmware/build')), 'nothing built inside the read-only package');
    const built = existsSync(cache) ? readdirSync(cache).filter((d) => existsSync(join(cache, d, 'host', 'fl-host'))) : [];
    t.equal(built.length, 1, `the host firmware is in the cache folder (${built.join(', ')})`);
  }
  const bench = sh(bin, ['bench', flm, '--vs', onnx, '--batch', '1', '--iters', '1', '--warmup', '0'], ws);
  t.equal(bench.status, 1, 'bench --vs without onnxruntime-node: exit 1');
  t.match(bench.stderr, /needs the npm package onnxruntime-node, which is not installed: run npm install onnxruntime-node/, 'names the package to add');
});
