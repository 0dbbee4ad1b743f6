// The project's import rules, checked from the source with the TypeScript compiler's parser:
//   1. no import cycle among the TypeScript files of the project's folders (type-only imports and
//      re-exports count: a cycle of types is still two files that cannot be read apart);
//   2. runtime/ imports nothing from converter/, cli/ or firmware-bridge/ (the runtime installs alone).
// Dynamic `import()` is not counted: it is how an optional package or a late dependency is loaded.
// Run: npx tsx scripts/importCheck.ts [--json] [--root DIR]   (exit 1 on a violation). test/scripts/importCheck.test.ts runs it in CI.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

/** Folders whose .ts files are checked (test/ is not: tests may import anything). */
export const CHECKED_FOLDERS = [
  'runtime', 'shared', 'converter', 'cli', 'targets', 'sweep', 'report', 'bench', 'hardware-in-loop', 'firmware-bridge/host',
] as const;

/** Folders runtime/ must not import from. */
export const RUNTIME_FORBIDDEN = ['converter/', 'cli/', 'firmware-bridge/'] as const;

export interface ImportGraph {
  /** Repository-relative file -> the repository-relative project files it imports statically. */
  edges: Map<string, string[]>;
}

function tsFiles(root: string, folder: string): string[] {
  const out: string[] = [];
  const walk = (dir: string) => {
    if (!existsSync(dir)) return;
    for (const name of readdirSync(dir)) {
      if (name === 'node_modules' || name === 'dist') continue;
      const p = join(dir, name);
      if (statSync(p).isDirectory()) walk(p);
      else if (name.endsWith('.ts') && !name.endsWith('.d.ts')) out.push(relative(root, p));
    }
  };
  walk(join(root, folder));
  return out;
}

/** Module specifiers of a file's static imports and re-exports (type-only ones included). */
export function staticImports(text: string, fileName = 'file.ts'): string[] {
  const sf = ts.createSourceFile(fileName, text, ts.ScriptTarget.Latest, false, ts.ScriptKind.TS);
  const specs: string[] = [];
  for (const st of sf.statements) {
    if ((ts.isImportDeclaration(st) || ts.isExportDeclaration(st)) && st.moduleSpecifier && ts.isStringLiteral(st.moduleSpecifier)) {
      specs.push(st.moduleSpecifier.text);
    } else if (ts.isImportEqualsDeclaration(st) && ts.isExternalModuleReference(st.moduleReference) && ts.isStringLiteral(st.moduleReference.expression)) {
      specs.push(st.moduleReference.expression.text);
    }
  }
  return specs;
}

/** A relative specifier as the repository-relative .ts file it names (NodeNext: './x.js' is x.ts). */
function resolveSpec(root: string, from: string, spec: string): string | undefined {
  if (!spec.startsWith('.')) return undefined;
  const base = resolve(root, dirname(from), spec);
  const candidates = [base.replace(/\.(m?)js$/, '.$1ts'), base, `${base}.ts`, join(base, 'index.ts')];
  for (const c of candidates) if (c.endsWith('.ts') && existsSync(c) && statSync(c).isFile()) return relative(root, c);
  return undefined;
}

export function importGraph(root: string, folders: readonly string[] = CHECKED_FOLDERS): ImportGraph {
  const edges = new Map<string, string[]>();
  const files = folders.flatMap((f) => tsFiles(root, f));
  for (const f of files) {
    const targets = staticImports(readFileSync(join(root, f), 'utf8'), f)
      .map((s) => resolveSpec(root, f, s))
      .filter((t): t is string => t !== undefined);
    edges.set(f, [...new Set(targets)]);
  }
  return { edges };
}

/**
 * The import cycles: one per strongly connected component of more than one file (or a file that
 * imports itself), each given as one closed path through that component, e.g. [a, b, a].
 */
export interface ImportCycle {
  /** Every file of the strongly connected component, sorted. */
  files: string[];
  /** One closed path through it, e.g. [a, b, a]. */
  path: string[];
}

export function importCycles(g: ImportGraph): ImportCycle[] {
  // Tarjan's strongly connected components, iterative.
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const onStack = new Set<string>();
  const stack: string[] = [];
  const comps: string[][] = [];
  let next = 0;
  const succ = (v: string) => (g.edges.get(v) ?? []).filter((w) => g.edges.has(w));
  for (const start of [...g.edges.keys()].sort()) {
    if (index.has(start)) continue;
    const work: Array<{ v: string; i: number }> = [{ v: start, i: 0 }];
    index.set(start, next); low.set(start, next); next++; stack.push(start); onStack.add(start);
    while (work.length) {
      const top = work[work.length - 1]!;
      const ws = succ(top.v);
      if (top.i < ws.length) {
        const w = ws[top.i++]!;
        if (!index.has(w)) {
          index.set(w, next); low.set(w, next); next++; stack.push(w); onStack.add(w);
          work.push({ v: w, i: 0 });
        } else if (onStack.has(w)) low.set(top.v, Math.min(low.get(top.v)!, index.get(w)!));
        continue;
      }
      work.pop();
      if (work.length) { const p = work[work.length - 1]!.v; low.set(p, Math.min(low.get(p)!, low.get(top.v)!)); }
      if (low.get(top.v) === index.get(top.v)) {
        const comp: string[] = [];
        let w: string;
        do { w = stack.pop()!; onStack.delete(w); comp.push(w); } while (w !== top.v);
        if (comp.length > 1 || succ(top.v).includes(top.v)) comps.push(comp.sort());
      }
    }
  }
  // A closed path through each component: breadth-first from its first file back to itself.
  return comps.map((comp) => {
    const inComp = new Set(comp);
    const from = comp[0]!;
    const prev = new Map<string, string>();
    const queue = [from];
    let end: string | undefined;
    while (queue.length && end === undefined) {
      const v = queue.shift()!;
      for (const w of succ(v).filter((x) => inComp.has(x))) {
        if (w === from) { end = v; break; }
        if (!prev.has(w)) { prev.set(w, v); queue.push(w); }
      }
    }
    const path = [from];
    for (let v = end; v !== undefined && v !== from; v = prev.get(v)) path.splice(1, 0, v);
    path.push(from);
    return { files: comp, path };
  });
}

/** Imports that break the layering: runtime/ reaching into converter/, cli/ or firmware-bridge/. */
export function layerViolations(g: ImportGraph): Array<{ from: string; to: string }> {
  const out: Array<{ from: string; to: string }> = [];
  for (const [from, tos] of g.edges) {
    if (!from.startsWith('runtime/')) continue;
    for (const to of tos) if (RUNTIME_FORBIDDEN.some((p) => to.startsWith(p))) out.push({ from, to });
  }
  return out;
}

/** The cycles and layer violations of the repository at `root`. */
export function checkRepo(root: string): { cycles: ImportCycle[]; violations: Array<{ from: string; to: string }>; files: number } {
  const g = importGraph(root);
  return { cycles: importCycles(g), violations: layerViolations(g), files: g.edges.size };
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const at = process.argv.indexOf('--root');
  const root = at > 0 && process.argv[at + 1] ? resolve(process.argv[at + 1]!) : resolve(dirname(fileURLToPath(import.meta.url)), '..');
  const r = checkRepo(root);
  if (process.argv.includes('--json')) process.stdout.write(`${JSON.stringify(r)}\n`);
  else {
    process.stdout.write(`${r.files} files, ${r.cycles.length} import cycles, ${r.violations.length} layer violations\n`);
    for (const c of r.cycles) process.stdout.write(`cycle of ${c.files.length} files: ${c.path.join(' -> ')}${c.files.length > c.path.length - 1 ? ` (also ${c.files.filter((f) => !c.path.includes(f)).join(', ')})` : ''}\n`);
    for (const v of r.violations) process.stdout.write(`runtime imports ${v.to}: ${v.from}\n`);
  }
  process.exitCode = r.cycles.length || r.violations.length ? 1 : 0;
}
