// The `memory_plan` header key (docs/FORMAT.md section 7): parsed from untrusted msgpack into
// typed plans with bounded counts; any deviation is FLM_MEMORY_PLAN. Whether a plan fits the
// graph and the kernels is checkPlan's job (runtime/plan/check.ts), run by the session at load.
import type { ArenaPlan, MemoryPlan, PlanScratch, PlanStrategy, PlanValue } from './planTypes.js';
import { FlmError } from './errors.js';
import { toSafeInt } from './validate.js';

export const MAX_PLANS = 8;
export const MAX_PLAN_ENTRIES = 65_536;

type Obj = Record<string, unknown>;

function bad(where: string, what: string): never {
  throw new FlmError('FLM_MEMORY_PLAN', `memory_plan${where}: ${what}`);
}

function map(v: unknown, where: string, required: string[], optional: string[] = []): Obj {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) bad(where, 'must be a map');
  const o = v as Obj;
  for (const k of required) if (!Object.hasOwn(o, k)) bad(where, `missing key ${JSON.stringify(k)}`);
  for (const k of Object.keys(o)) if (!required.includes(k) && !optional.includes(k)) bad(where, `unknown key ${JSON.stringify(k)}`);
  return o;
}

function list(v: unknown, where: string, max: number): unknown[] {
  if (!Array.isArray(v)) bad(where, 'must be an array');
  if (v.length > max) bad(where, `has ${v.length} entries, at most ${max}`);
  return v;
}

function int(v: unknown, where: string, min = 0): number {
  const n = toSafeInt(v);
  if (n === undefined || n < min) bad(where, `must be an integer >= ${min}, got ${String(v)}`);
  return n;
}

function str(v: unknown, where: string): string {
  if (typeof v !== 'string' || v.length === 0) bad(where, 'must be a non-empty string');
  return v;
}

function parseValue(v: unknown, where: string): PlanValue {
  const o = map(v, where, ['name', 'offset', 'bytes', 'first', 'last'], ['external', 'fused']);
  const e: PlanValue = {
    name: str(o.name, `${where}.name`),
    offset: int(o.offset, `${where}.offset`),
    bytes: int(o.bytes, `${where}.bytes`),
    first: int(o.first, `${where}.first`, -1),
    last: int(o.last, `${where}.last`, -1),
  };
  if (o.external !== undefined) {
    if (typeof o.external !== 'boolean') bad(`${where}.external`, 'must be a boolean');
    if (o.external) e.external = true;
  }
  if (o.fused !== undefined) {
    if (typeof o.fused !== 'boolean') bad(`${where}.fused`, 'must be a boolean');
    if (o.fused) e.fused = true;
  }
  return e;
}

function parseScratch(v: unknown, where: string): PlanScratch {
  const o = map(v, where, ['node', 'offset', 'bytes']);
  return { node: int(o.node, `${where}.node`), offset: int(o.offset, `${where}.offset`), bytes: int(o.bytes, `${where}.bytes`) };
}

function parseStrategy(v: unknown, where: string): PlanStrategy {
  const o = map(v, where, ['node', 'use', 'rows']);
  if (o.use !== 'contract' && o.use !== 'rebuild') bad(`${where}.use`, `must be "contract" or "rebuild", got ${JSON.stringify(o.use)}`);
  return { node: int(o.node, `${where}.node`), use: o.use, rows: int(o.rows, `${where}.rows`) };
}

function parsePlan(v: unknown, where: string): ArenaPlan {
  const o = map(v, where, ['profile', 'batch', 'align', 'arena', 'values', 'scratch', 'peak_scratch'], ['strategy']);
  const plan: ArenaPlan = {
    profile: str(o.profile, `${where}.profile`),
    batch: int(o.batch, `${where}.batch`, 1),
    align: int(o.align, `${where}.align`, 4),
    arena: int(o.arena, `${where}.arena`),
    values: list(o.values, `${where}.values`, MAX_PLAN_ENTRIES).map((x, i) => parseValue(x, `${where}.values[${i}]`)),
    scratch: list(o.scratch, `${where}.scratch`, MAX_PLAN_ENTRIES).map((x, i) => parseScratch(x, `${where}.scratch[${i}]`)),
    peak_scratch: int(o.peak_scratch, `${where}.peak_scratch`),
  };
  if ((plan.align & (plan.align - 1)) !== 0) bad(`${where}.align`, `${plan.align} is not a power of two`);
  if (o.strategy !== undefined) {
    plan.strategy = list(o.strategy, `${where}.strategy`, MAX_PLAN_ENTRIES).map((x, i) => parseStrategy(x, `${where}.strategy[${i}]`));
  }
  return plan;
}

/** Parses the decoded `memory_plan` value. */
export function parseMemoryPlan(v: unknown): MemoryPlan {
  const o = map(v, '', ['version', 'plans']);
  if (toSafeInt(o.version) !== 1) bad('.version', `${String(o.version)} is not a known plan version (1)`);
  return { version: 1, plans: list(o.plans, '.plans', MAX_PLANS).map((p, i) => parsePlan(p, `.plans[${i}]`)) };
}

/** The plan as plain msgpack data for the header (optional keys only when set). */
export function encodeMemoryPlan(mp: MemoryPlan): Record<string, unknown> {
  return {
    version: mp.version,
    plans: mp.plans.map((p) => {
      const o: Record<string, unknown> = {
        profile: p.profile, batch: p.batch, align: p.align, arena: p.arena,
        values: p.values.map((v) => ({
          name: v.name, offset: v.offset, bytes: v.bytes, first: v.first, last: v.last,
          ...(v.external ? { external: true } : {}),
          ...(v.fused ? { fused: true } : {}),
        })),
        scratch: p.scratch.map((s) => ({ node: s.node, offset: s.offset, bytes: s.bytes })),
        peak_scratch: p.peak_scratch,
      };
      if (p.strategy) o.strategy = p.strategy.map((s) => ({ node: s.node, use: s.use, rows: s.rows }));
      return o;
    }),
  };
}
