// The firmware's structure, checked mechanically:
// - no dependency cycle among the core's C files. A file depends on another when it uses a function
//   or global that the other defines, as `nm` reports from the compiled objects (calls through the
//   op table's pointers are the table's own uses). The ports are outside the graph: port.h is the
//   interface the core calls down through, and a port's main calls fl_run.
// - no cycle among the firmware's #include "..." directives;
// - no source file of the firmware over 500 lines;
// - the op table (core/ops/table.c) names each op as runtime/ir.ts does, and holds exactly the ops
//   the mcu plan profile accepts (runtime/plan/mcu.ts): an op the plan accepts without a firmware
//   entry, or the reverse, fails here.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, resolve, dirname } from 'node:path';
import { OP_IDS } from '../../../runtime/ir.js';
import { MCU_OPS } from '../../../runtime/plan/mcu.js';
import { missing } from '../../support/require.js';
import { FW_DIR } from './support.js';

const MAX_LINES = 500;

function files(dir: string, keep: (p: string) => boolean): string[] {
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

t.test('the cycle finder finds a cycle and passes a chain', async (t) => {
  const g = (edges: [string, string][]) => {
    const m = new Map<string, Set<string>>();
    for (const [a, b] of edges) {
      if (!m.has(a)) m.set(a, new Set());
      if (!m.has(b)) m.set(b, new Set());
      m.get(a)!.add(b);
    }
    return m;
  };
  t.same(cycles(g([['a', 'b'], ['b', 'c']])), []);
  t.same(cycles(g([['a', 'b'], ['b', 'c'], ['c', 'a'], ['c', 'd']])), [['a', 'b', 'c']]);
});

t.test('no dependency cycle among the core C files (symbols from nm)', async (t) => {
  for (const tool of ['cc', 'nm']) {
    if (spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0) return void missing(t, `${tool} is not installed`);
  }
  const srcs = files(resolve(FW_DIR, 'core'), (p) => p.endsWith('.c'));
  t.ok(srcs.length > 10, 'the core has its files');
  const dir = mkdtempSync(join(tmpdir(), 'fl-structure-'));
  try {
    const defs = new Map<string, string>();
    const uses = new Map<string, string[]>();
    for (const src of srcs) {
      const name = relative(FW_DIR, src);
      const obj = join(dir, name.replace(/[/.]/g, '_') + '.o');
      const cc = spawnSync('cc', ['-std=c99', '-O1', '-Iports/host', '-c', name, '-o', obj], { cwd: FW_DIR, encoding: 'utf8' });
      if (cc.status !== 0) {
        t.fail(`cc ${name}: ${cc.stderr}`);
        return;
      }
      const nm = spawnSync('nm', [obj], { encoding: 'utf8' }).stdout.split('\n');
      const u: string[] = [];
      for (const line of nm) {
        const p = line.trim().split(/\s+/);
        if (p.length === 3 && /^[TDBRCG]$/.test(p[1]!)) defs.set(p[2]!, name);
        else if (p.length === 2 && p[0] === 'U') u.push(p[1]!);
      }
      uses.set(name, u);
    }
    const graph = new Map<string, Set<string>>();
    for (const [name, u] of uses) {
      graph.set(name, new Set(u.map((s) => defs.get(s)).filter((d): d is string => d !== undefined && d !== name)));
    }
    t.same(cycles(graph), [], 'C files that use each other (directly or around a loop)');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

t.test('no cycle among the firmware\'s #include "..." directives', async (t) => {
  const all = files(FW_DIR, (p) => /\.[ch]$/.test(p));
  const graph = new Map<string, Set<string>>();
  for (const f of all) {
    const deps = new Set<string>();
    for (const m of readFileSync(f, 'utf8').matchAll(/^\s*#\s*include\s+"([^"]+)"/gm)) deps.add(relative(FW_DIR, resolve(dirname(f), m[1]!)));
    graph.set(relative(FW_DIR, f), deps);
  }
  t.same(cycles(graph), []);
});

t.test(`no firmware source file over ${MAX_LINES} lines`, async (t) => {
  const src = files(FW_DIR, (p) => /\.(c|h|ts|mk|sh)$|Makefile$/.test(p));
  const long = src
    .map((f) => ({ file: relative(FW_DIR, f), lines: readFileSync(f, 'utf8').split('\n').length - 1 }))
    .filter((x) => x.lines > MAX_LINES);
  t.same(long, []);
});

t.test('the op table matches runtime/ir.ts and the mcu plan profile', async (t) => {
  const fl = readFileSync(resolve(FW_DIR, 'core/fl.h'), 'utf8');
  const enumBody = /enum\s*\{\s*(OP_DENSE = 0[^}]*)\}/.exec(fl)?.[1];
  t.ok(enumBody, 'fl.h has the op enum');
  const ids = new Map<string, number>();
  let next = 0;
  for (const item of enumBody!.split(',').map((s) => s.trim()).filter(Boolean)) {
    const m = /^(OP_\w+)(?:\s*=\s*(\d+))?$/.exec(item);
    if (!m) continue;
    if (m[2] !== undefined) next = Number(m[2]);
    ids.set(m[1]!, next++);
  }
  for (const [name, id] of Object.entries(OP_IDS)) {
    const c = `OP_${name.toUpperCase()}`;
    if (ids.has(c)) t.equal(ids.get(c), id, `${c} is ${name}'s id in runtime/ir.ts`);
  }
  const table = readFileSync(resolve(FW_DIR, 'core/ops/table.c'), 'utf8');
  const names = new Set<string>();
  for (const m of table.matchAll(/\[(OP_\w+)\]\s*=\s*\{\s*(\w+)\s*,\s*(\w+)\s*,\s*"(\w+)"\s*\}/g)) {
    const [, c, prepare, evaluate, name] = m as unknown as [string, string, string, string, string];
    t.ok(ids.has(c), `${c} is in fl.h's enum`);
    t.equal(OP_IDS[name as keyof typeof OP_IDS], ids.get(c), `${c}'s name "${name}" is its id in runtime/ir.ts`);
    t.not(prepare, 'NULL', `${name} has a prepare`);
    t.not(evaluate, 'NULL', `${name} has an eval`);
    names.add(name);
  }
  t.same([...names].sort(), [...MCU_OPS].sort(), 'the firmware runs exactly the ops the mcu plan accepts');
});
