// Compiles bench/lib/runner.ts and the runtime it imports with tsc to bench/out/js/, so that the
// bench's children run plain JavaScript on plain Node (no tsx loader in the measured process, as a
// user of the compiled package runs it). bench/runtime.ts and bench/rssBreakdown.ts use it.
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = dirname(dirname(dirname(fileURLToPath(import.meta.url))));
const OUT = join(ROOT, 'bench', 'out');

/**
 * Returns the compiled runner's path. `kernels`: another build of kernels.wasm to copy beside it
 * (its -mt, -mt-relaxed and -relaxed siblings where they exist), else the committed ones.
 */
export function compileRunner(kernels = ''): string {
  const outDir = join(OUT, 'js');
  const tsc = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
  execFileSync(process.execPath, [
    tsc, '--outDir', outDir, '--rootDir', ROOT, '--target', 'ES2022', '--module', 'NodeNext',
    '--moduleResolution', 'NodeNext', '--skipLibCheck', '--esModuleInterop', '--strict', join(ROOT, 'bench', 'lib', 'runner.ts'),
  ], { stdio: 'inherit' });
  const wasmDir = join(outDir, 'runtime', 'kernels', 'wasm');
  mkdirSync(wasmDir, { recursive: true });
  copyFileSync(kernels ? resolve(kernels) : join(ROOT, 'runtime', 'kernels', 'wasm', 'kernels.wasm'), join(wasmDir, 'kernels.wasm'));
  // The threaded builds: --kernels FILE.wasm's FILE-mt.wasm and FILE-mt-relaxed.wasm where they exist.
  for (const mt of ['kernels-mt.wasm', 'kernels-mt-relaxed.wasm']) {
    const sibling = kernels ? resolve(kernels).replace(/\.wasm$/, mt.slice('kernels'.length)) : '';
    copyFileSync(sibling && existsSync(sibling) ? sibling : join(ROOT, 'runtime', 'kernels', 'wasm', mt), join(wasmDir, mt));
  }
  // The relaxed-SIMD build, which the `relaxed SIMD` engine (Node with RELAXED_SIMD_FLAG) loads.
  copyFileSync(kernels ? resolve(kernels).replace(/\.wasm$/, '-relaxed.wasm') : join(ROOT, 'runtime', 'kernels', 'wasm', 'kernels-relaxed.wasm'), join(wasmDir, 'kernels-relaxed.wasm'));
  return join(outDir, 'bench', 'lib', 'runner.js');
}

