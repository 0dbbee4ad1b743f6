// factorlite inspect shows each stored memory plan (profile, batch, arena, peak scratch, buffers,
// and whether it checks against this runtime), as a table and in --json.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { writeFlm } from '../../converter/writer.js';
import { planArena, nodeProfile, getProfile } from '../../runtime/plan/index.js';
import { ratio10 } from '../runtime/support/models.js';
import { cli, cliJson } from '../support/cli.js';
import { edit } from '../runtime/format/fixtures/flm.js';

const dir = mkdtempSync(join(tmpdir(), 'factorlite-inspect-'));

t.test('inspect shows the node and mcu plans the converter stored', async (t) => {
  const model = await ratio10(t, 'lenet5_fashion', 'tt');
  if (!model) return;
  const file = join(dir, 'tt.flm');
  writeFileSync(file, writeFlm(model));
  const j = cliJson(['inspect', file, '--json']);
  t.equal(j.plans.length, 2);
  const node = j.plans.find((p: any) => p.profile === 'node');
  const want = planArena(model, nodeProfile);
  t.same(
    [node.batch, node.align, node.arenaBytes, node.peakScratchBytes, node.buffers, node.scratch, node.check],
    [1, 64, want.arena, want.peak_scratch, want.values.length + want.scratch.length, want.scratch.length, 'ok'],
    'node plan: batch 1, arena and peak scratch as the planner makes them, checks',
  );
  t.ok(node.arenaBytes < node.unsharedBytes, 'the arena is smaller than one buffer per value');
  const mcu = j.plans.find((p: any) => p.profile === 'mcu');
  const wantMcu = planArena(model, getProfile('mcu')!);
  t.same([mcu.batch, mcu.arenaBytes, mcu.peakScratchBytes, mcu.external, mcu.check], [1, wantMcu.arena, wantMcu.peak_scratch, 1, 'ok'], 'mcu plan');

  const text = cli(['inspect', file]);
  t.equal(text.status, 0);
  t.match(text.stdout, /memory plans/);
  t.match(text.stdout, new RegExp(`node\\s+1\\s+${(want.arena / 1024).toFixed(1)} KiB`), 'table row for the node plan with its arena');
  t.match(text.stdout, /mcu\s+1\s/);
});

t.test('inspect: a file without plans, and a plan that does not check', async (t) => {
  const model = await ratio10(t, 'mlp_fashion', 'svd');
  if (!model) return;
  const none = join(dir, 'none.flm');
  writeFileSync(none, writeFlm(model, { memoryPlan: 'none' }));
  t.same(cliJson(['inspect', none, '--json']).plans, []);
  t.match(cli(['inspect', none]).stdout, /memory plan: none stored/);

  // A file whose node plan says the arena is 64 bytes: every buffer ends past it.
  const badFile = join(dir, 'bad.flm');
  writeFileSync(badFile, edit(writeFlm(model), (p) => {
    const node = p.header.memory_plan.plans.find((x: any) => x.profile === 'node');
    node.arena = 64;
  }));
  const j = cliJson(['inspect', badFile, '--json']);
  t.match(j.plans.find((p: any) => p.profile === 'node').check, /FLM_MEMORY_PLAN: .*past the arena/);
  t.equal(j.plans.find((p: any) => p.profile === 'mcu').check, 'ok');
  t.match(cli(['inspect', badFile]).stdout, /FLM_MEMORY_PLAN/);
});
