// Plans with int8 activations (the int8-full path): every stored value takes one byte per element
// where the f32 plan takes four, scratch a quarter (rounded up), and the plan checks against the
// same profile; the f32 plan is unchanged by the option.
import t from 'tap';
import { numel } from '../../../runtime/ir.js';
import { checkPlan, getProfile, inferShapes, planArena } from '../../../runtime/plan/index.js';
import { int8Activations } from '../../../runtime/plan/profiles.js';
import { ratio10 } from '../support/models.js';

for (const fixture of ['lenet5_fashion', 'mlp_fashion'] as const) {
  t.test(`${fixture} svd x10: int8 activation plan on the mcu profile`, async (t) => {
    const model = await ratio10(t, fixture, 'svd');
    if (!model) return;
    const mcu = getProfile('mcu')!;
    const i8 = int8Activations(mcu);
    const f = planArena(model, mcu);
    const q = planArena(model, i8);
    const shapes = inferShapes(model, 1).values;
    for (const v of q.values) {
      const w = f.values.find((e) => e.name === v.name)!;
      if (v.fused || v.external) t.same([v.bytes, w.bytes], [0, 0], `${v.name}: fused or external in both`);
      else {
        t.equal(w.bytes, 4 * numel(shapes.get(v.name)!), `${v.name}: f32 bytes`);
        t.ok(v.bytes >= numel(shapes.get(v.name)!) && v.bytes < w.bytes, `${v.name}: ${v.bytes} int8 bytes (f32 ${w.bytes})`);
      }
    }
    for (const s of q.scratch) t.equal(s.bytes, Math.ceil(f.scratch.find((e) => e.node === s.node)!.bytes / 4), `node ${s.node} scratch a quarter`);
    t.doesNotThrow(() => checkPlan(model, q, i8), 'the int8 plan checks with the int8 profile');
    t.throws(() => checkPlan(model, q, mcu), 'but not as an f32 plan (values too small)');
    // LeNet-5 is one of the issue's three models (target <= 0.3x); FC-2's arena is a few dozen bytes, alignment dominates.
    if (fixture === 'lenet5_fashion') t.ok(q.arena <= 0.3 * f.arena, `arena int8 ${q.arena} B vs f32 ${f.arena} B (${(q.arena / f.arena).toFixed(3)}x)`);
  });
}
