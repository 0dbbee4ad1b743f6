// The threaded kernels under the arm64 build of Node (QEMU user mode, as a Pi or a Jetson runs
// them; test/support/armNode.ts): support/threadedCheck.ts, compiled to JavaScript by tsc, runs
// GEMM and convolutions split over 2 and 3 threads against the reference kernels there, and on
// this Node for comparison.
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { threadedCheck } from './support/threadedCheck.js';
import { armNode } from '../../support/armNode.js';
import { missing, REPO_ROOT } from '../../support/require.js';
import { hasWasmSimd, hasWasmThreads } from '../../../runtime/kernels/backend.js';

t.test('threaded kernels match the reference on this Node', async (t) => {
  if (!hasWasmSimd() || !hasWasmThreads()) return missing(t, 'WebAssembly SIMD and threads unavailable');
  const r = await threadedCheck();
  t.same(r.failures, [], `${r.cases} cases`);
  t.same(r.threadsUsed, { 2: 2, 3: 3 }, 'calls ran on 2 and on 3 threads');
});

t.test('threaded kernels match the reference under arm64 Node (QEMU)', async (t) => {
  const node = armNode(t, 'arm64');
  if (!node) return;
  const dir = mkdtempSync(join(tmpdir(), 'factorlite-threads-arm64-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const tsc = spawnSync(process.execPath, [
    join(REPO_ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '--outDir', dir, '--rootDir', REPO_ROOT, '--target', 'ES2022',
    '--module', 'NodeNext', '--moduleResolution', 'NodeNext', '--skipLibCheck', '--strict',
    join(REPO_ROOT, 'test', 'runtime', 'kernels', 'support', 'threadedCheck.ts'),
  ], { encoding: 'utf8' });
  t.equal(tsc.status, 0, `tsc: ${tsc.stdout}${tsc.stderr}`);
  mkdirSync(join(dir, 'runtime', 'kernels', 'wasm'), { recursive: true });
  for (const f of ['kernels.wasm', 'kernels-mt.wasm']) copyFileSync(join(REPO_ROOT, 'runtime', 'kernels', 'wasm', f), join(dir, 'runtime', 'kernels', 'wasm', f));
  writeFileSync(join(dir, 'package.json'), '{"type":"module"}\n');
  const p = spawnSync(node.argv[0]!, [...node.argv.slice(1), join(dir, 'test', 'runtime', 'kernels', 'support', 'threadedCheck.js')], { encoding: 'utf8', timeout: 600_000 });
  t.equal(p.status, 0, `${node.label}: exit 0 (stderr: ${p.stderr.slice(0, 400)})`);
  const r = JSON.parse(p.stdout.trim().split('\n').pop() ?? '{}') as { arch?: string; cases?: number; failures?: string[]; threadsUsed?: Record<string, number> };
  t.equal(r.arch, 'arm64', 'ran on the arm64 build');
  t.ok((r.cases ?? 0) >= 40, `${r.cases} cases`);
  t.same(r.failures, [], 'every case within the tolerance of the reference');
  t.same(r.threadsUsed, { 2: 2, 3: 3 }, 'calls ran on 2 and on 3 threads');
});
