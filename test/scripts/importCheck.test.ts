// The import rules (scripts/importCheck.ts) on the repository: no import cycle among the project's
// TypeScript files, and runtime/ imports nothing of converter/, cli/ or firmware-bridge/.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { checkRepo, importCycles, importGraph, layerViolations, staticImports } from '../../scripts/importCheck.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

// Cycles outside runtime/ being removed on other branches at the time this check landed; each is
// named by its files. Remove an entry once its cycle is gone (the test says so). All gone now.
const KNOWN: readonly string[] = [];

t.test('the repository has no new import cycle and runtime/ stays apart', (t) => {
  const r = checkRepo(root);
  t.ok(r.files > 100, `${r.files} files read`);
  const fresh = r.cycles.filter((c) => !KNOWN.includes(c.files.join(' ')));
  t.same(fresh.map((c) => c.path.join(' -> ')), [], 'no import cycle (each listed as one path through it)');
  for (const k of KNOWN) if (!r.cycles.some((c) => c.files.join(' ') === k)) t.comment(`known cycle gone, remove it from KNOWN: ${k}`);
  t.same(r.violations.map((v) => `${v.from} imports ${v.to}`), [], 'runtime/ imports nothing of converter/, cli/, firmware-bridge/');
  t.same(r.cycles.filter((c) => c.files.some((f) => f.startsWith('runtime/'))), [], 'no cycle touches runtime/');
  t.end();
});

t.test('the check finds a cycle, names its path, and finds a forbidden runtime import', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'fl-imports-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const put = (f: string, text: string) => {
    mkdirSync(dirname(join(dir, f)), { recursive: true });
    writeFileSync(join(dir, f), text);
  };
  put('runtime/a.ts', "import type { B } from './b.js';\nexport type A = B;\n");
  put('runtime/b.ts', "export { c } from './sub/c.js';\nexport type B = number;\n");
  put('runtime/sub/c.ts', "import { x } from '../../converter/x.js';\nimport '../a.js';\nexport const c = x;\n");
  put('runtime/d.ts', "export const d = () => import('./e.js');\n");
  put('runtime/e.ts', "import { d } from './d.js';\nexport const e = d;\n");
  put('converter/x.ts', 'export const x = 1;\n');
  const g = importGraph(dir, ['runtime', 'converter']);
  const cycles = importCycles(g);
  t.same(cycles.map((c) => c.files), [['runtime/a.ts', 'runtime/b.ts', 'runtime/sub/c.ts']], 'a dynamic import() makes no cycle');
  t.same(cycles[0]!.path, ['runtime/a.ts', 'runtime/b.ts', 'runtime/sub/c.ts', 'runtime/a.ts']);
  t.same(layerViolations(g), [{ from: 'runtime/sub/c.ts', to: 'converter/x.ts' }]);
  t.same(staticImports("import a from 'node:fs';\nexport * from './y.js';\nconst z = 1;\n"), ['node:fs', './y.js']);
  t.end();
});
