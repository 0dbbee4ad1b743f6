// The firmware's structure, measured: the core's C files that depend on each other in a cycle
// (a file depends on another when it uses a function or global the other defines, as `nm` reports
// from objects compiled with cc), #include cycles, source files over 500 lines, the lines of the
// tree, and the op list (core/ops/ops.def) the ids, the declarations and the op table are made from. test/firmware-bridge/firmware/structure.test.ts asserts on these; run alone it
// measures any checkout of the firmware (the closing notes' before / after):
//   node --import tsx firmware-bridge/firmware/tools/structure.ts [FIRMWARE_DIR] [--json]
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export const MAX_LINES = 500;

/** Files under dir (not under build/) that keep() accepts, sorted. */
export function files(dir: string, keep: (p: string) => boolean): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir)) {
    const p = join(dir, e);
    if (statSync(p).isDirectory()) {
      if (e !== 'build') out.push(...files(p, keep));
    } else if (keep(p)) out.push(p);
  }
  return out.sort();
}

/** The cycles of a directed graph: its strongly connected components of more than one node (Tarjan). */
export function cycles(graph: Map<string, Set<string>>): string[][] {
  let index = 0;
  const idx = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const on = new Set<string>();
  const out: string[][] = [];
  const visit = (v: string): void => {
    idx.set(v, index);
    low.set(v, index++);
    stack.push(v);
    on.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!idx.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (on.has(w)) low.set(v, Math.min(low.get(v)!, idx.get(w)!));
    }
    if (low.get(v) === idx.get(v)) {
      const scc: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        on.delete(w);
        scc.push(w);
      } while (w !== v);
      if (scc.length > 1 || graph.get(v)?.has(v)) out.push(scc.sort());
    }
  };
  for (const v of [...graph.keys()].sort()) if (!idx.has(v)) visit(v);
  return out;
}


/** The core's C files (relative to dir) and the files each uses symbols of. Throws when cc fails. */
export function symbolGraph(dir: string): Map<string, Set<string>> {
  const srcs = files(resolve(dir, 'core'), (p) => p.endsWith('.c'));
  const tmp = mkdtempSync(join(tmpdir(), 'fl-structure-'));
  try {
    const defs = new Map<string, string>();
    const uses = new Map<string, string[]>();
    for (const src of srcs) {
      const name = relative(dir, src);
      const obj = join(tmp, name.replace(/[/.]/g, '_') + '.o');
      const cc = spawnSync('cc', ['-std=c99', '-O1', '-Iports/host', '-c', name, '-o', obj], { cwd: dir, encoding: 'utf8' });
      if (cc.status !== 0) throw new Error(`cc ${name}: ${cc.stderr}`);
      const u: string[] = [];
      for (const line of spawnSync('nm', [obj], { encoding: 'utf8' }).stdout.split('\n')) {
        const p = line.trim().split(/\s+/);
        if (p.length === 3 && /^[TDBRCG]$/.test(p[1]!)) defs.set(p[2]!, name);
        else if (p.length === 2 && p[0] === 'U') u.push(p[1]!);
      }
      uses.set(name, u);
    }
    const graph = new Map<string, Set<string>>();
    for (const [name, u] of uses) graph.set(name, new Set(u.map((s) => defs.get(s)).filter((d): d is string => d !== undefined && d !== name)));
    return graph;
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

/** #include "..." edges among the firmware's .c, .h and .def files. */
export function includeGraph(dir: string): Map<string, Set<string>> {
  const graph = new Map<string, Set<string>>();
  for (const f of files(dir, (p) => /\.(c|h|def)$/.test(p))) {
    const deps = new Set<string>();
    for (const m of readFileSync(f, 'utf8').matchAll(/^\s*#\s*include\s+"([^"]+)"/gm)) deps.add(relative(dir, resolve(dirname(f), m[1]!)));
    graph.set(relative(dir, f), deps);
  }
  return graph;
}

/** Lines of every source file (.c .h .def .ts .mk .sh, Makefile) of the firmware. */
export function sourceLines(dir: string): Array<{ file: string; lines: number }> {
  return files(dir, (p) => /\.(c|h|def|ts|mk|sh)$|Makefile$/.test(p)).map((f) => ({ file: relative(dir, f), lines: readFileSync(f, 'utf8').split('\n').length - 1 }));
}

/** One line of core/ops/ops.def: an op the firmware runs (prepare and eval), or an id it only knows. */
export interface OpLine {
  id: number;
  /** The C name without OP_ (OP_MAX_POOL is MAX_POOL). */
  NAME: string;
  /** runtime/ir.ts's name of the op. */
  name: string;
  prepare?: string;
  evaluate?: string;
}

/** The op list of core/ops/ops.def, in file order. */
export function opList(dir: string): OpLine[] {
  const text = readFileSync(resolve(dir, 'core/ops/ops.def'), 'utf8').replace(/\/\*[\s\S]*?\*\//g, '');
  const out: OpLine[] = [];
  for (const m of text.matchAll(/^\s*FL_(OPX|OP|ID)\(([^)]*)\)/gm)) {
    const a = m[2]!.split(',').map((s) => s.trim());
    const line: OpLine = { id: Number(a[0]), NAME: a[1]!, name: a[2]!.replace(/^"|"$/g, '') };
    if (m[1] !== 'ID') Object.assign(line, { prepare: a[3], evaluate: a[4] });
    out.push(line);
  }
  return out;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const args = process.argv.slice(2);
  const dir = resolve(args.find((a) => !a.startsWith('--')) ?? resolve(dirname(fileURLToPath(import.meta.url)), '..'));
  const lines = sourceLines(dir);
  const out = {
    dir,
    cycles: cycles(symbolGraph(dir)),
    includeCycles: cycles(includeGraph(dir)),
    over500: lines.filter((x) => x.lines > MAX_LINES),
    files: lines.length,
    lines: lines.reduce((a, x) => a + x.lines, 0),
  };
  if (args.includes('--json')) process.stdout.write(JSON.stringify(out) + '\n');
  else {
    process.stdout.write(`${dir}: ${out.files} source files, ${out.lines} lines\n`);
    process.stdout.write(`C files in a dependency cycle: ${out.cycles.length ? out.cycles.map((c) => c.join(' <-> ')).join('; ') : 'none'}\n`);
    process.stdout.write(`#include cycles: ${out.includeCycles.length ? out.includeCycles.map((c) => c.join(' <-> ')).join('; ') : 'none'}\n`);
    process.stdout.write(`files over ${MAX_LINES} lines: ${out.over500.length ? out.over500.map((x) => `${x.file} (${x.lines})`).join(', ') : 'none'}\n`);
  }
}
