// The memory planner (docs/FORMAT.md section 7).
export type { ArenaPlan, MemoryPlan, PlanProfile, PlanScratch, PlanStrategy, PlanValue } from './types.js';
export { IN_PLACE_OPS } from './types.js';
export { planArena, alignUp } from './planner.js';
export { checkPlan } from './check.js';
export { inferShapes, outputShape, type InferredShapes } from './shapes.js';
export { valueLifetimes, type ValueLife } from './lifetimes.js';
export { allProfiles, atBatch, getProfile, nodeProfile, nodeScratchFloats, registerProfile } from './profiles.js';
