// checkPlan enforces every rule of docs/FORMAT.md section 7 for one plan against the graph and
// a profile's scratch needs; any breach is an FlmError FLM_MEMORY_PLAN naming it.
import { FACTOR_OPS, numel, type Model } from '../ir.js';
import { FlmError } from '../format/errors.js';
import { valueLifetimes } from './lifetimes.js';
import { inferShapes, type InferredShapes } from './shapes.js';
import { chainAt, chainSpan, type FusedChain } from './fuse.js';
import { IN_PLACE_OPS, RESHAPE_OPS, profileFuses, profileValueBytes, type ArenaPlan, type PlanProfile, type PlanStrategy } from './types.js';

function bad(plan: ArenaPlan, what: string): never {
  throw new FlmError('FLM_MEMORY_PLAN', `${plan.profile} plan at batch ${plan.batch}: ${what}`);
}

interface Buf {
  what: string;
  offset: number;
  bytes: number;
  first: number;
  last: number;
  /** For a value: its name. */
  value?: string;
}

/**
 * Throws FLM_MEMORY_PLAN unless `plan` is a valid plan of `model` for `profile`: it covers every
 * value with the right lifetime and enough bytes, offsets are aligned and inside the arena, live
 * buffers never overlap except in place, and every node gets at least the scratch the profile
 * needs. Returns the shapes at the plan's batch.
 */
export function checkPlan(model: Model, plan: ArenaPlan, profile: PlanProfile): InferredShapes {
  if (plan.profile !== profile.name) bad(plan, `is for profile ${plan.profile}, not ${profile.name}`);
  if (!Number.isInteger(plan.batch) || plan.batch < 1) bad(plan, 'batch must be a positive integer');
  if (profile.name === 'mcu' && plan.batch !== 1) bad(plan, 'an mcu plan is for batch 1');
  const { align } = plan;
  if (!Number.isInteger(align) || align < 4 || (align & (align - 1)) !== 0) bad(plan, `align ${align} is not a power of two >= 4`);
  if (align % profile.align !== 0) bad(plan, `align ${align} is not a multiple of the profile's ${profile.align}`);
  if (!Number.isSafeInteger(plan.arena) || plan.arena < 0) bad(plan, `arena ${plan.arena} is not a byte count`);
  let shapes: InferredShapes;
  try {
    shapes = inferShapes(model, plan.batch);
  } catch (e) {
    bad(plan, `the graph's shapes cannot be worked out: ${e instanceof Error ? e.message : String(e)}`);
  }
  const nodes = model.graph.nodes;
  const n = nodes.length;
  const bufs: Buf[] = [];
  const placeOk = (what: string, offset: number, bytes: number): void => {
    if (!Number.isSafeInteger(offset) || offset < 0 || !Number.isSafeInteger(bytes) || bytes < 0) bad(plan, `${what}: offset/bytes not byte counts`);
    if (offset % align !== 0) bad(plan, `${what}: offset ${offset} is not a multiple of ${align}`);
    if (offset + bytes > plan.arena) bad(plan, `${what}: ends at ${offset + bytes}, past the arena (${plan.arena})`);
  };

  // Values: exactly one entry each, right lifetimes, enough bytes.
  const lives = new Map(valueLifetimes(model).map((v) => [v.name, v]));
  const seen = new Set<string>();
  const externalNames = new Set(plan.values.filter((v) => v.external).map((v) => v.name));
  const fusedNames = new Set<string>();
  const reshapeOfExternal = (name: string, first: number): boolean => {
    const node = nodes[first];
    return node !== undefined && RESHAPE_OPS.has(node.op) && node.inputs.length === 1 && externalNames.has(node.inputs[0]!)
      && !model.graph.outputs.includes(name);
  };
  for (const v of plan.values) {
    const what = `value ${JSON.stringify(v.name)}`;
    const life = lives.get(v.name);
    if (!life) bad(plan, `${what} is not an activation of the graph`);
    if (seen.has(v.name)) bad(plan, `${what} has two entries`);
    seen.add(v.name);
    if (v.first !== life.first || v.last !== life.last) bad(plan, `${what}: lifetime [${v.first}, ${v.last}], graph says [${life.first}, ${life.last}]`);
    if (v.fused) {
      if (!profileFuses(profile, model).length) bad(plan, `${what} is fused; profile ${profile.name} does not stream chains`);
      if (v.external) bad(plan, `${what} is both fused and external`);
      if (v.offset !== 0 || v.bytes !== 0) bad(plan, `${what} is fused and must have offset and bytes 0`);
      fusedNames.add(v.name);
      continue;
    }
    if (v.external) {
      if (!life.isInput && !reshapeOfExternal(v.name, life.first)) {
        bad(plan, `${what} is external but neither a graph input nor a pure reshape of an external value`);
      }
      if (!profile.externalInputs) bad(plan, `${what} is external; profile ${profile.name} copies inputs into the arena`);
      if (v.offset !== 0 || v.bytes !== 0) bad(plan, `${what} is external and must have offset and bytes 0`);
      continue;
    }
    if (life.isInput && profile.externalInputs) bad(plan, `${what}: profile ${profile.name} reads graph inputs where they arrived (external)`);
    const need = profileValueBytes(profile, model, v.name, numel(shapes.values.get(v.name)!));
    if (v.bytes < need) bad(plan, `${what} has ${v.bytes} bytes, needs ${need}`);
    placeOk(what, v.offset, v.bytes);
    bufs.push({ what, offset: v.offset, bytes: v.bytes, first: v.first, last: v.last, value: v.name });
  }
  for (const name of lives.keys()) if (!seen.has(name)) bad(plan, `value ${JSON.stringify(name)} has no entry`);

  // Fused values: each belongs to a chain of runtime/plan/fuse.ts whose intermediates are all
  // fused; chains share no node.
  const chains: FusedChain[] = [];
  const inChain = new Set<number>();
  for (const name of fusedNames) {
    const life = lives.get(name)!;
    // the producer defines it, or (an activation's output) the node before
    const rules = profileFuses(profile, model);
    const c = chainAt(model, shapes, life.first, rules) ?? chainAt(model, shapes, life.first - 1, rules);
    const what = `value ${JSON.stringify(name)}`;
    if (!c || !c.values.includes(name)) bad(plan, `${what} is fused but not an intermediate of a chain profile ${profile.name} streams (${profileFuses(profile, model).map((r) => r.name).join(', ')}), read by that chain alone`);
    if (c.values.some((x) => !fusedNames.has(x))) bad(plan, `${what} is fused but ${c.values.filter((x) => !fusedNames.has(x)).join(', ')} of its chain is not`);
    if (c.values[0] !== name) continue; // each chain once, from its producer's output
    if (c.nodes.some((k) => inChain.has(k))) bad(plan, `${what}: its chain shares a node with another fused chain`);
    for (const k of c.nodes) inChain.add(k);
    chains.push(c);
  }
  const span = chainSpan(chains);

  // Strategy list: factor layers only, one entry at most each.
  const strategies = new Map<number, PlanStrategy>();
  for (const s of plan.strategy ?? []) {
    if (!Number.isInteger(s.node) || s.node < 0 || s.node >= n) bad(plan, `strategy for node ${s.node}: no such node`);
    if (strategies.has(s.node)) bad(plan, `node ${s.node} has two strategy entries`);
    if (!FACTOR_OPS.has(nodes[s.node]!.op)) bad(plan, `strategy for node ${s.node} (${nodes[s.node]!.op}): not a factor layer`);
    if (s.use !== 'contract' && s.use !== 'rebuild') bad(plan, `strategy for node ${s.node}: use ${String(s.use)}`);
    if (!Number.isInteger(s.rows) || s.rows < 0 || (s.use === 'rebuild' && s.rows < 1)) bad(plan, `strategy for node ${s.node}: rows ${s.rows}`);
    strategies.set(s.node, s);
  }

  // Scratch: one entry at most per node, at least what the profile's kernel needs.
  const scratchOf = new Map<number, number>();
  let peak = 0;
  for (const s of plan.scratch) {
    const what = `scratch of node ${s.node}`;
    if (!Number.isInteger(s.node) || s.node < 0 || s.node >= n) bad(plan, `${what}: no such node`);
    if (scratchOf.has(s.node)) bad(plan, `node ${s.node} has two scratch entries`);
    placeOk(what, s.offset, s.bytes);
    scratchOf.set(s.node, s.bytes);
    peak = Math.max(peak, s.bytes);
    bufs.push({ what, offset: s.offset, bytes: s.bytes, first: s.node, last: s.node });
  }
  nodes.forEach((node, k) => {
    const sh = shapes.nodes[k]!;
    const need = profile.scratchBytes(k, node, sh.inputs, sh.output, model, strategies.get(k));
    const have = scratchOf.get(k) ?? 0;
    if (have < need) bad(plan, `node ${k} (${node.name}, ${node.op}) gets ${have} scratch bytes, its kernel needs ${need}`);
  });
  if (plan.peak_scratch !== peak) bad(plan, `peak_scratch ${plan.peak_scratch}, the scratch entries give ${peak}`);

  // Overlap: buffers sharing bytes must have disjoint lifetimes, unless in place; a buffer live at
  // any node of a fused chain is live over the whole chain.
  const inPlace = (a: Buf, b: Buf): boolean => {
    // b is the output of node b.first that takes a's bytes, a being its input dying there.
    if (a.value === undefined || b.value === undefined || b.first < 0) return false;
    const node = nodes[b.first]!;
    return IN_PLACE_OPS.has(node.op) && node.inputs.length === 1 && node.inputs[0] === a.value
      && a.last === b.first && a.offset === b.offset && b.bytes <= a.bytes;
  };
  const sorted = bufs.filter((b) => b.bytes > 0).sort((a, b) => a.offset - b.offset);
  for (let i = 0; i < sorted.length; i++) {
    const a = sorted[i]!;
    for (let j = i + 1; j < sorted.length; j++) {
      const b = sorted[j]!;
      if (b.offset >= a.offset + a.bytes) break;
      const [af, al] = span(a.first, a.last);
      const [bf, bl] = span(b.first, b.last);
      const liveTogether = af <= bl && bf <= al;
      if (liveTogether && !inPlace(a, b) && !inPlace(b, a)) {
        bad(plan, `${a.what} [${a.offset}, ${a.offset + a.bytes}) and ${b.what} [${b.offset}, ${b.offset + b.bytes}) overlap while both live`);
      }
    }
  }
  return shapes;
}
