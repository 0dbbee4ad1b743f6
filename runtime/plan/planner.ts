// The arena planner: places every activation value and every node's scratch buffer in one arena
// so that buffers whose lifetimes overlap never share bytes, except an in-place op's output,
// which takes its dying input's bytes. Placement is greedy, largest first, each buffer going to
// the smallest gap left between the already placed buffers it is live with (best fit).
import { numel, type Model } from '../ir.js';
import { FlmError } from '../format/errors.js';
import { valueLifetimes } from './lifetimes.js';
import { inferShapes } from './shapes.js';
import { chainSpan, fusableChains } from './fuse.js';
import { IN_PLACE_OPS, RESHAPE_OPS, profileFuses, profileValueBytes, type ArenaPlan, type PlanProfile, type PlanScratch, type PlanStrategy, type PlanValue } from './types.js';

export function alignUp(n: number, align: number): number {
  return Math.ceil(n / align) * align;
}

function checkAlign(align: number): void {
  if (!Number.isInteger(align) || align < 4 || (align & (align - 1)) !== 0) {
    throw new FlmError('FLM_MEMORY_PLAN', `align ${align} is not a power of two >= 4`);
  }
}

/** A set of buffers sharing one offset (a value and its in-place successors), or one scratch. */
interface Block {
  first: number;
  last: number;
  bytes: number;
  offset: number;
  members: Array<PlanValue | PlanScratch>;
}

/**
 * Plans the arena for `model` at `profile.batch`. `inputShapes` (one per graph input) overrides
 * the graph inputs' shapes, for a session planning for the tensors it is fed.
 */
export function planArena(model: Model, profile: PlanProfile, inputShapes?: number[][]): ArenaPlan {
  const { batch, align } = profile;
  checkAlign(align);
  const shapes = inferShapes(model, batch, inputShapes);
  const nodes = model.graph.nodes;
  const lives = valueLifetimes(model);

  const values: PlanValue[] = [];
  const externals = new Set<string>();
  const outputs = new Set(model.graph.outputs);
  const blockOf = new Map<string, Block>();
  const blocks: Block[] = [];
  // Streamed chains: their intermediates take no bytes; a buffer live at any node of a chain is
  // live over all of it (the chain runs as one step).
  const fuses = profileFuses(profile, model);
  const chains = fuses.length ? fusableChains(model, shapes, fuses) : [];
  const fused = new Set(chains.flatMap((c) => c.values));
  const span = chainSpan(chains);
  const eb = profile.elementBytes ?? 4;
  if (eb !== 1 && eb !== 2 && eb !== 4) throw new FlmError('FLM_MEMORY_PLAN', `profile ${profile.name}: ${eb} bytes per activation element (expected 1, 2 or 4)`);
  for (const life of lives) {
    const entry: PlanValue = { name: life.name, offset: 0, bytes: profileValueBytes(profile, model, life.name, numel(shapes.values.get(life.name)!)), first: life.first, last: life.last };
    values.push(entry);
    if (fused.has(life.name)) {
      entry.bytes = 0;
      entry.fused = true;
      continue;
    }
    const v = life;
    const [first, last] = span(life.first, life.last);
    if (v.isInput && profile.externalInputs) {
      entry.bytes = 0;
      entry.external = true;
      externals.add(v.name);
      continue;
    }
    // A pure reshape of an external value (FC-2's leading Flatten) is read where it arrived too.
    if (profile.externalInputs && !v.isInput) {
      const node = nodes[v.first]!;
      const src = node.inputs[0];
      if (RESHAPE_OPS.has(node.op) && node.inputs.length === 1 && src !== undefined && externals.has(src) && !outputs.has(v.name)) {
        entry.bytes = 0;
        entry.external = true;
        externals.add(v.name);
        continue;
      }
    }
    // In place: a unary / reshape node whose input dies at this node takes the input's bytes.
    if (!v.isInput) {
      const node = nodes[v.first]!;
      const src = node.inputs[0];
      const srcBlock = src === undefined ? undefined : blockOf.get(src);
      const srcEntry = srcBlock?.members.find((m): m is PlanValue => 'name' in m && m.name === src);
      if (IN_PLACE_OPS.has(node.op) && node.inputs.length === 1 && srcBlock && srcEntry
        && srcEntry.last === v.first && entry.bytes <= srcEntry.bytes) {
        srcBlock.members.push(entry);
        srcBlock.last = Math.max(srcBlock.last, last);
        blockOf.set(v.name, srcBlock);
        continue;
      }
    }
    const b: Block = { first, last, bytes: entry.bytes, offset: 0, members: [entry] };
    blocks.push(b);
    blockOf.set(v.name, b);
  }

  const scratch: PlanScratch[] = [];
  const strategy: PlanStrategy[] = [];
  nodes.forEach((node, k) => {
    const s = shapes.nodes[k]!;
    const st = profile.strategy?.(k, node, s.inputs, s.output, model);
    if (st) strategy.push(st);
    const bytes = profile.scratchBytes(k, node, s.inputs, s.output, model, st);
    if (!Number.isInteger(bytes) || bytes < 0) throw new FlmError('FLM_MEMORY_PLAN', `profile ${profile.name}: scratch for node ${node.name} is ${bytes}`);
    if (bytes === 0) return;
    const e: PlanScratch = { node: k, offset: 0, bytes };
    scratch.push(e);
    const [first, last] = span(k, k);
    blocks.push({ first, last, bytes, offset: 0, members: [e] });
  });

  // Greedy best fit, largest first; ties: earliest first.
  const order = [...blocks].sort((a, b) => b.bytes - a.bytes || a.first - b.first);
  const placed: Block[] = [];
  let arena = 0;
  for (const b of order) {
    const size = alignUp(b.bytes, align);
    const live = placed.filter((p) => p.first <= b.last && b.first <= p.last).sort((x, y) => x.offset - y.offset);
    let best = -1;
    let bestGap = Infinity;
    let cursor = 0;
    for (const p of live) {
      const gap = p.offset - cursor;
      if (gap >= size && gap < bestGap) {
        best = cursor;
        bestGap = gap;
      }
      cursor = Math.max(cursor, alignUp(p.offset + p.bytes, align));
    }
    b.offset = best >= 0 ? best : cursor;
    for (const m of b.members) m.offset = b.offset;
    placed.push(b);
    if (b.bytes > 0) arena = Math.max(arena, b.offset + b.bytes);
  }

  const plan: ArenaPlan = {
    profile: profile.name,
    batch,
    align,
    arena: alignUp(arena, align),
    values,
    scratch,
    peak_scratch: scratch.reduce((m, s) => Math.max(m, s.bytes), 0),
  };
  if (profile.strategy) plan.strategy = strategy;
  return plan;
}
