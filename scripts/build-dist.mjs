#!/usr/bin/env node
// Compiles the TypeScript sources to JavaScript for the packages (run by `npm pack` as prepack):
//   node scripts/build-dist.mjs cli      -> dist/ (the factorlite package: CLI, converter, runtime, ...)
//   node scripts/build-dist.mjs runtime  -> packages/runtime/dist/ (the factorlite-runtime package)
// and copies the files the compiled code reads beside it (kernels.wasm, the demo model).
import { spawnSync } from 'node:child_process';
import { copyFileSync, cpSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const which = process.argv[2];
const tsc = createRequire(join(root, 'package.json')).resolve('typescript/bin/tsc');

function compile(project, out) {
  rmSync(out, { recursive: true, force: true });
  const r = spawnSync(process.execPath, [tsc, '-p', project], { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) {
    process.stderr.write(`build-dist: tsc -p ${project} failed\n`);
    process.exit(1);
  }
}

function copy(from, to) {
  mkdirSync(dirname(to), { recursive: true });
  copyFileSync(join(root, from), to);
}

if (which === 'cli') {
  const out = join(root, 'dist');
  compile('tsconfig.build.json', out);
  copy('runtime/kernels/wasm/kernels.wasm', join(out, 'runtime/kernels/wasm/kernels.wasm'));
  copy('runtime/kernels/wasm/kernels-mt.wasm', join(out, 'runtime/kernels/wasm/kernels-mt.wasm'));
  copy('runtime/kernels/wasm/kernels-mt-relaxed.wasm', join(out, 'runtime/kernels/wasm/kernels-mt-relaxed.wasm'));
  copy('runtime/kernels/wasm/kernels-relaxed.wasm', join(out, 'runtime/kernels/wasm/kernels-relaxed.wasm'));
  copy('models/demo_mnist.onnx', join(out, 'models/demo_mnist.onnx'));
  copy('models/demo_mnist.acc', join(out, 'models/demo_mnist.acc'));
  for (const f of ['run.mjs', 'crc32.mjs']) copy(`targets/launcher/${f}`, join(out, 'targets/launcher', f));
  // The firmware's C sources and Makefile, where the compiled hardware-in-loop/emulators.js looks
  // for them (dist/firmware-bridge/firmware): `hil --emulate` builds the port it runs with make.
  // Not build/ (a checkout's own builds) nor the TypeScript tools the tests run.
  const fw = join(root, 'firmware-bridge/firmware');
  cpSync(fw, join(out, 'firmware-bridge/firmware'), {
    recursive: true,
    filter: (src) => src !== join(fw, 'build') && !src.endsWith('.ts'),
  });
} else if (which === 'runtime') {
  const out = join(root, 'packages/runtime/dist');
  compile('packages/runtime/tsconfig.json', out);
  copy('runtime/kernels/wasm/kernels.wasm', join(out, 'kernels/wasm/kernels.wasm'));
  // Not kernels-mt.wasm (900 KB): the runtime package stays under 1 MB and runs on one thread.
  copy('runtime/kernels/wasm/kernels-relaxed.wasm', join(out, 'kernels/wasm/kernels-relaxed.wasm'));
  // No dependencies, so that the package installs from its tarball with no registry: the one call
  // the runtime makes to the crc-32 package goes to the CRC-32 module the bundles carry.
  copy('targets/launcher/crc32.mjs', join(out, 'crc32.js'));
  const layout = join(out, 'format/layout.js');
  const js = readFileSync(layout, 'utf8');
  if (!/from ['"]crc-32['"]/.test(js)) throw new Error('build-dist: runtime/format/layout.js no longer imports crc-32; update this step');
  writeFileSync(layout, js.replace(/from ['"]crc-32['"]/, "from '../crc32.js'"));
} else {
  process.stderr.write('usage: node scripts/build-dist.mjs cli|runtime\n');
  process.exit(2);
}
