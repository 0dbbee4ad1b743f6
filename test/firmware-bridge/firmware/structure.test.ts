// The firmware's structure, checked mechanically (firmware-bridge/firmware/tools/structure.ts
// measures it):
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
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { OP_IDS } from '../../../runtime/ir.js';
import { MCU_OPS } from '../../../runtime/plan/mcu.js';
import { IN_PLACE_OPS } from '../../../runtime/plan/types.js';
import { MAX_LINES, cycles, includeGraph, sourceLines, symbolGraph } from '../../../firmware-bridge/firmware/tools/structure.js';
import { missing } from '../../support/require.js';
import { FW_DIR } from './support.js';

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
  const graph = symbolGraph(FW_DIR);
  t.ok(graph.size > 10, 'the core has its files');
  t.ok([...graph.values()].some((d) => d.size > 0), 'the files use each other');
  t.same(cycles(graph), [], 'C files that use each other (directly or around a loop)');
});

t.test('no cycle among the firmware\'s #include "..." directives', async (t) => {
  t.same(cycles(includeGraph(FW_DIR)), []);
});

t.test(`no firmware source file over ${MAX_LINES} lines`, async (t) => {
  const lines = sourceLines(FW_DIR);
  t.ok(lines.length > 20, `${lines.length} source files`);
  t.same(lines.filter((x) => x.lines > MAX_LINES), []);
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

t.test('the plan check runs in place exactly the ops the planner may place in place', async (t) => {
  const plan = readFileSync(resolve(FW_DIR, 'core/model/plan.c'), 'utf8');
  const body = /static int inplace_op\(uint8_t op\) \{([\s\S]*?)\n\}/.exec(plan)?.[1];
  t.ok(body, 'core/model/plan.c has inplace_op');
  const firmware = [...(body ?? '').matchAll(/case OP_(\w+):/g)].map((m) => m[1]!.toLowerCase()).sort();
  t.same(firmware, [...IN_PLACE_OPS].filter((o) => MCU_OPS.has(o as never)).sort(), 'inplace_op lists the in-place kinds the firmware runs');
});
