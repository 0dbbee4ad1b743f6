// The firmware's structure, checked mechanically (firmware-bridge/firmware/tools/structure.ts
// measures it):
// - no dependency cycle among the core's C files. A file depends on another when it uses a function
//   or global that the other defines, as `nm` reports from the compiled objects (calls through the
//   op table's pointers are the table's own uses). The ports are outside the graph: port.h is the
//   interface the core calls down through, and a port's main calls fl_run.
// - no cycle among the firmware's #include "..." directives;
// - no source file of the firmware over 500 lines;
// - the op list (core/ops/ops.def, from which fl.h's ids and ops/table.c's table are made) names
//   each op as runtime/ir.ts does, the compiled ids are runtime/ir.ts's OP_IDS, and the table holds
//   exactly the ops the mcu plan profile accepts (runtime/plan/mcu.ts): an op the plan accepts
//   without a firmware entry, or the reverse, fails here.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { OP_IDS } from '../../../runtime/ir.js';
import { MCU_OPS } from '../../../runtime/plan/mcu.js';
import { IN_PLACE_OPS } from '../../../runtime/plan/types.js';
import { MAX_LINES, cycles, includeGraph, opList, sourceLines, symbolGraph } from '../../../firmware-bridge/firmware/tools/structure.js';
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
  const ops = opList(FW_DIR);
  t.ok(ops.length > 0, 'core/ops/ops.def lists the ops');
  const ids = new Map<string, number>(ops.map((o) => [`OP_${o.NAME}`, o.id]));
  t.same(ops.map((o) => o.id), ops.map((_, k) => k), 'ops.def lists the ids in order from 0 (OP_COUNT is the last + 1)');
  for (const [name, id] of Object.entries(OP_IDS)) {
    const c = `OP_${name.toUpperCase()}`;
    if (ids.has(c)) t.equal(ids.get(c), id, `${c} is ${name}'s id in runtime/ir.ts`);
  }
  const names = new Set<string>();
  for (const { NAME, name, prepare, evaluate } of ops.filter((o) => o.prepare !== undefined)) {
    const c = `OP_${NAME}`;
    t.ok(ids.has(c), `${c} is in fl.h's enum`);
    t.equal(OP_IDS[name as keyof typeof OP_IDS], ids.get(c), `${c}'s name "${name}" is its id in runtime/ir.ts`);
    t.not(prepare, 'NULL', `${name} has a prepare`);
    t.not(evaluate, 'NULL', `${name} has an eval`);
    names.add(name);
  }
  t.same([...names].sort(), [...MCU_OPS].sort(), 'the firmware runs exactly the ops the mcu plan accepts');
});

t.test('the compiled op ids are runtime/ir.ts OP_IDS, bit for bit', async (t) => {
  if (spawnSync('sh', ['-c', 'command -v cc']).status !== 0) return void missing(t, 'cc is not installed');
  // A program built from fl.h's generated enum prints every id and OP_COUNT.
  const tmp = mkdtempSync(join(tmpdir(), 'fl-ids-'));
  try {
    writeFileSync(join(tmp, 'ids.c'), [
      '#include <stdio.h>', '#include "core/fl.h"', 'int main(void) {',
      '#define FL_OP(id, NAME, name, prepare, eval) printf("%s %d\\n", name, (int)OP_##NAME);',
      '#define FL_ID(id, NAME, name) printf("%s %d\\n", name, (int)OP_##NAME);',
      '#include "core/ops/ops.def"', '    printf("OP_COUNT %d\\n", (int)OP_COUNT);', '    return 0;', '}', '',
    ].join('\n'));
    const cc = spawnSync('cc', ['-std=c99', `-I${FW_DIR}`, `-I${resolve(FW_DIR, 'ports/host')}`, '-o', join(tmp, 'ids'), join(tmp, 'ids.c')], { encoding: 'utf8' });
    t.equal(cc.status, 0, `cc: ${cc.stderr}`);
    const got = Object.fromEntries(spawnSync(join(tmp, 'ids'), { encoding: 'utf8' }).stdout.trim().split('\n').map((l) => {
      const [k, v] = l.split(' ');
      return [k!, Number(v)];
    }));
    const { OP_COUNT: count, ...byName } = got;
    const listed = Object.keys(byName);
    t.ok(listed.length > 0, `${listed.length} ids compiled`);
    t.same(byName, Object.fromEntries(listed.map((n) => [n, OP_IDS[n as keyof typeof OP_IDS]])), 'each compiled id is its runtime/ir.ts id');
    t.equal(count, listed.length, 'OP_COUNT is the number of ids listed');
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
});

t.test('the plan check runs in place exactly the ops the planner may place in place', async (t) => {
  const plan = readFileSync(resolve(FW_DIR, 'core/model/plan.c'), 'utf8');
  const body = /static int inplace_op\(uint8_t op\) \{([\s\S]*?)\n\}/.exec(plan)?.[1];
  t.ok(body, 'core/model/plan.c has inplace_op');
  const firmware = [...(body ?? '').matchAll(/case OP_(\w+):/g)].map((m) => m[1]!.toLowerCase()).sort();
  t.same(firmware, [...IN_PLACE_OPS].filter((o) => MCU_OPS.has(o as never)).sort(), 'inplace_op lists the in-place kinds the firmware runs');
});
