// bench/lib/tablesReserve.ts: the table bytes read from the firmware's own refusal (the message of
// core/model/plan.c), and the reserve a conversion gets after it.
import { readFileSync } from 'node:fs';
import t from 'tap';
import { refusedTables, reserveAfter } from '../../bench/lib/tablesReserve.js';

t.test('the firmware still words its refusal as the bench reads it', async (t) => {
  const plan = readFileSync(new URL('../../firmware-bridge/firmware/core/model/plan.c', import.meta.url), 'utf8');
  t.match(plan, /"plan arena "[\s\S]{0,200}" \+ tables "[\s\S]{0,200}" > arena "/, 'plan.c: plan arena A + tables T > arena N');
});

t.test('refusedTables', async (t) => {
  t.equal(refusedTables('the device refused it: TOO_LARGE: plan arena 460800 + tables 38952 > arena 491520'), 38952, 'the VWW 4x refusal');
  t.equal(refusedTables('the device refused it: TOO_LARGE: model input larger than the frame buffer'), undefined, 'another refusal');
  t.equal(refusedTables(null), undefined, 'no refusal');
});

t.test('reserveAfter: the counted tables and 1 KB more, in whole KB, above the default', async (t) => {
  t.equal(reserveAfter(38952), 40 * 1024, '38,952 B -> 40 KB');
  t.equal(reserveAfter(15 * 1024), 16 * 1024, 'exactly 15 KB -> 16 KB');
  for (const b of [1, 1023, 1024, 16384, 38952, 100000]) t.ok(reserveAfter(b) >= b + 1024 && reserveAfter(b) % 1024 === 0 && reserveAfter(b) < b + 2048, `${b} B`);
});
