// Attributes per op, checked by the reader's graph check (and the writer's): a file whose node
// attributes no kernel could run is refused here with a typed code, so the session, the SIMD
// kernels and the firmware only ever see valid attributes. Each op's specs are its kind's
// `attrs` and `checkAttrs` (runtime/layers/<kind>.ts); the vocabulary and the codes are in
// ./attrSpec.ts; test/runtime/format/attrs.test.ts walks every entry.
import type { GraphNode, OpName } from '../ir.js';
import { LAYER_KINDS } from '../layers/registry.js';
import { checkOne, type AttrSpec } from './attrSpec.js';
import { FlmError } from './errors.js';

export { ATTR_INT_MAX, MAX_MODES, type AttrSpec } from './attrSpec.js';

/**
 * What each op reads. Attributes not listed are ignored by every kernel (a converter may keep
 * extra ones); listed ones must match. Cross-attribute rules are each kind's checkAttrs.
 */
export const OP_ATTRS: Readonly<Record<OpName, Readonly<Record<string, AttrSpec>>>> = Object.fromEntries(
  [...LAYER_KINDS].map(([op, kind]) => [op, kind.attrs]),
) as Record<OpName, Readonly<Record<string, AttrSpec>>>;

/** Refuses a node whose attributes its op could not run with (codes in ./attrSpec.ts). */
export function checkNodeAttrs(node: GraphNode, where: string): void {
  const kind = LAYER_KINDS.get(node.op);
  const specs = OP_ATTRS[node.op];
  for (const [key, spec] of Object.entries(specs)) checkOne(where, key, spec, node.attrs[key]);
  kind?.checkAttrs?.(node.attrs, (code, msg) => {
    throw new FlmError(code, `${where}: ${msg}`);
  });
}
