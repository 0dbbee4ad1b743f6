// Every layer kind is one complete record (runtime/layers/kind.ts): this test fails when a
// registered kind lacks a part, and the generic files' views (attrs, mcu ops, fusion chains,
// rebuild ops, in-place ops) are the records' own, and the same sets as when they were lists.
import t from 'tap';
import { OP_ATTRS } from '../../runtime/format/attrs.js';
import { FACTOR_OPS, OP_IDS, type OpName } from '../../runtime/ir.js';
import { REBUILD_OPS } from '../../runtime/exec/rebuild.js';
import type { LayerKind } from '../../runtime/layers/kind.js';
import { KINDS, kindProblems, LAYER_KINDS } from '../../runtime/layers/registry.js';
import { CONV_POOL_CHAIN, DENSE_CHAIN, FUSE_ACTS } from '../../runtime/plan/fuse.js';
import { MCU_OPS } from '../../runtime/plan/mcu.js';
import { IN_PLACE_OPS, RESHAPE_OPS } from '../../runtime/plan/types.js';

t.test('every registered kind has every part it needs', (t) => {
  t.equal(KINDS.length, Object.keys(OP_IDS).length, 'one record per op id');
  t.equal(LAYER_KINDS.size, KINDS.length, 'no op implemented twice');
  for (const kind of KINDS) t.same(kindProblems(kind), [], `${kind.ops[0]} is complete`);
  t.end();
});

t.test('a record missing a part is named', (t) => {
  const cp = LAYER_KINDS.get('cp_conv2d')!;
  const noKernel: LayerKind = { ...cp, factor: { ...cp.factor!, kernel: undefined } };
  t.match(kindProblems(noKernel), [/cp_conv2d: a conv-shaped factor kind needs factor.kernel/]);
  const { factor: _f, ...noFactor } = cp;
  t.match(kindProblems(noFactor as LayerKind), [/cp_conv2d: in FACTOR_OPS but has no factor part/]);
  const noShape = { ...LAYER_KINDS.get('relu')!, outputShape: undefined } as unknown as LayerKind;
  t.match(kindProblems(noShape), [/relu: no outputShape/]);
  const stranger = { ...LAYER_KINDS.get('relu')!, ops: ['swish' as OpName] as const } as LayerKind;
  t.match(kindProblems(stranger), [/swish has no id in OP_IDS/]);
  t.end();
});

t.test('the generic views are built from the records', (t) => {
  t.same(Object.keys(OP_ATTRS).sort(), Object.keys(OP_IDS).sort(), 'the reader checks the attrs of every op');
  for (const k of KINDS) t.equal(OP_ATTRS[k.ops[0]], k.attrs);
  t.same([...REBUILD_OPS].sort(), [...FACTOR_OPS].sort(), 'every factor kind rebuilds row tiles');
  for (const op of FACTOR_OPS) t.ok(MCU_OPS.has(op), `the firmware runs ${op}`);
  t.same([...DENSE_CHAIN.producers].sort(), ['dense', 'svd_dense']);
  t.same([...CONV_POOL_CHAIN.producers].sort(), ['conv2d', 'cp_conv2d', 'svd_conv2d', 'tucker2_conv2d']);
  t.same([...CONV_POOL_CHAIN.consumers].sort(), ['avg_pool', 'max_pool']);
  t.same([...FUSE_ACTS].sort(), ['clip', 'leaky_relu', 'relu', 'sigmoid', 'tanh']);
  t.same([...RESHAPE_OPS].sort(), ['flatten', 'identity', 'reshape']);
  t.same([...IN_PLACE_OPS].sort(), [
    'abs', 'clip', 'erf', 'exp', 'flatten', 'gelu', 'hard_sigmoid', 'hard_swish', 'identity', 'leaky_relu',
    'log', 'pow', 'prelu', 'reciprocal', 'relu', 'reshape', 'sigmoid', 'sqrt', 'tanh',
  ]);
  t.end();
});
