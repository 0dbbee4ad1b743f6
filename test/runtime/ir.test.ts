import t from 'tap';
import { numel, OP_IDS } from '../../runtime/ir.js';

t.test('numel multiplies dims', async (t) => {
  t.equal(numel([2, 3, 4]), 24);
  t.equal(numel([]), 1);
});

t.test('op ids are unique', async (t) => {
  const ids = Object.values(OP_IDS);
  t.equal(new Set(ids).size, ids.length);
});
