// Device profiles, fit checks, bundles and deploy (DESIGN.md: may import runtime/ only).
export { TARGETS, TargetError, getTarget, type TargetProfile, type TargetBudget, type Sourced } from './profiles.js';
export { checkFit, DEFAULT_MARGIN, type FitReport } from './fit.js';
