// convert --modes: a given reshape per layer for the methods that reshape a weight before
// decomposing it (rcp / rtk / rtt / rtr on dense and conv layers, tt / tr on dense layers), instead
// of their default balanced split. An image-aware reshape (LeNet-5's f1 input 800 = 50 channels x
// 4 rows x 4 columns, split as channels and pixels) keeps the structure of the data in the modes.
//
// Given as `OUT/IN` (every factorised layer whose size it fits) or `layer=OUT/IN,...` (a layer by
// its node name, or by one '/'-separated part of it: f1 for /f1/Gemm), or in a --ranks file entry
// as "modes": "OUT/IN". OUT and IN are mode sizes joined by x: out = T_1..T_M multiplies to the
// output channels, in = S_1..S_M to the input channels, mode m of one paired with mode m of the other.
import { CompressError } from '../compressError.js';
import type { LayerModes, Target } from '../rank/target.js';

/** Methods whose layer forms take a reshape, and the layer kinds they take it on. */
export const MODED_METHODS: Readonly<Record<string, readonly ('dense' | 'conv')[]>> = {
  rcp: ['dense', 'conv'], rtk: ['dense', 'conv'], rtt: ['dense', 'conv'], rtr: ['dense', 'conv'], tt: ['dense'], tr: ['dense'],
};

const bad = (msg: string) => new CompressError('BAD_OPTIONS', msg);
const prod = (xs: readonly number[]) => xs.reduce((a, b) => a * b, 1);
export const showModes = (m: LayerModes) => `${m.out.join('x')}/${m.in.join('x')}`;

/** `4x4x5x5/5x10x4x4` -> { out, in }; `who` names the flag or file in the error. */
export function parseLayerModes(v: string, who: string): LayerModes {
  const m = /^\s*(\d+(?:x\d+)*)\s*\/\s*(\d+(?:x\d+)*)\s*$/.exec(v);
  if (!m) throw bad(`${who}: ${JSON.stringify(v)} is not OUT/IN (mode sizes joined by x, e.g. 5x10x10/5x10x16)`);
  const modes = { out: m[1]!.split('x').map(Number), in: m[2]!.split('x').map(Number) };
  if ([...modes.out, ...modes.in].some((x) => x < 1)) throw bad(`${who}: every mode must be at least 1`);
  if (modes.out.length !== modes.in.length) throw bad(`${who}: ${modes.out.length} output modes but ${modes.in.length} input modes (one of each per pair)`);
  return modes;
}

/**
 * `--modes` as given: `OUT/IN` (key '*': every layer it fits) or `name=OUT/IN,name=OUT/IN`.
 */
export function parseModesFlag(v: string): Record<string, LayerModes> {
  if (!v.includes('=')) return { '*': parseLayerModes(v, '--modes') };
  const out: Record<string, LayerModes> = {};
  for (const part of v.split(',')) {
    const i = part.indexOf('=');
    const name = part.slice(0, i).trim();
    if (i < 1 || !name) throw bad(`--modes ${part}: expected layer=OUT/IN (e.g. f1=5x10x10/5x10x16)`);
    if (out[name]) throw bad(`--modes: layer ${name} is given twice`);
    out[name] = parseLayerModes(part.slice(i + 1), `--modes ${name}`);
  }
  return out;
}

/** The out / in sizes the modes of a target must multiply to: dense [out, in], conv [O, I]. */
function sidesOf(t: Target): [number, number] {
  return t.shape.kind === 'dense' ? [t.shape.out, t.shape.in] : [t.shape.O, t.shape.I];
}

/** Why `modes` cannot reshape this layer, or null. */
export function modesMismatch(t: Target, modes: LayerModes): string | null {
  const [o, i] = sidesOf(t);
  if (prod(modes.out) === o && prod(modes.in) === i) return null;
  const what = t.shape.kind === 'dense' ? `a ${o} x ${i} dense layer (out x in)` : `a conv of ${o} x ${i} channels (out x in)`;
  return `modes ${showModes(modes)} multiply to ${prod(modes.out)} x ${prod(modes.in)}, the layer is ${what}`;
}

/** The node names a --modes key picks: the exact name, else the names having it as one '/' part. */
function layersNamed(targets: readonly Target[], key: string): Target[] {
  const exact = targets.filter((t) => t.node.name === key);
  return exact.length ? exact : targets.filter((t) => t.node.name.split('/').includes(key));
}

/**
 * Sets Target.modes from --modes (checked: the layer exists, is factorised by a method that takes
 * modes, and the modes multiply to its sizes). `methodOf(t)` is the method the layer gets, or null
 * when it stays dense or the method is chosen later (auto).
 */
export function applyModes(targets: readonly Target[], given: Record<string, LayerModes>, methodOf: (t: Target) => string | null): void {
  const have = () => targets.map((t) => `${t.node.name} ${sidesOf(t).join('x')}`).join(', ');
  const check = (t: Target, modes: LayerModes, key: string) => {
    const m = methodOf(t);
    const who = `--modes ${key === '*' ? showModes(modes) : `${key}=${showModes(modes)}`}: layer ${t.node.name}`;
    if (m === null) throw bad(`${who} is not factorised by a method that takes modes (give --method rcp|rtk|rtt|rtr|tt|tr, or name the method in --ranks)`);
    const kinds = MODED_METHODS[m];
    if (!kinds) throw bad(`${who}: method ${m} takes no modes (only ${Object.keys(MODED_METHODS).join(', ')})`);
    if (!kinds.includes(t.shape.kind)) throw bad(`${who}: ${m} takes modes on dense layers only, this is a conv`);
    const why = modesMismatch(t, modes);
    if (why) throw bad(`${who}: ${why}`);
    t.modes = { out: [...modes.out], in: [...modes.in] };
  };
  for (const [key, modes] of Object.entries(given)) {
    if (key === '*') {
      const fit = targets.filter((t) => modesMismatch(t, modes) === null);
      if (!fit.length) throw bad(`--modes ${showModes(modes)} fits no factorisable layer (out x in: ${have()}); name the layer as layer=OUT/IN`);
      for (const t of fit) check(t, modes, key);
      continue;
    }
    const hit = layersNamed(targets, key);
    if (hit.length === 0) throw bad(`--modes ${key}: no factorisable layer of that name (have: ${have()})`);
    if (hit.length > 1) throw bad(`--modes ${key}: names ${hit.length} layers (${hit.map((t) => t.node.name).join(', ')}); give the full name`);
    check(hit[0]!, modes, key);
  }
}

/** A --ranks file entry's "modes" (a string OUT/IN), checked against its layer; undefined when absent. */
export function entryModes(t: Target, entry: unknown, method: string): LayerModes | undefined {
  if (!entry || typeof entry !== 'object' || Array.isArray(entry)) return undefined;
  const v = (entry as { modes?: unknown }).modes;
  if (v === undefined) return undefined;
  const who = `ranks for layer ${t.node.name}`;
  if (typeof v !== 'string') throw new CompressError('BAD_RANKS', `${who}: modes must be a string OUT/IN such as 5x10x10/5x10x16`);
  let modes: LayerModes;
  try {
    modes = parseLayerModes(v, `${who}: modes`);
  } catch (e) {
    throw new CompressError('BAD_RANKS', (e as Error).message);
  }
  const kinds = MODED_METHODS[method];
  if (!kinds || !kinds.includes(t.shape.kind)) throw new CompressError('BAD_RANKS', `${who}: method ${method} takes no modes on a ${t.shape.kind} layer (rcp, rtk, rtt, rtr; tt, tr on dense layers)`);
  const why = modesMismatch(t, modes);
  if (why) throw new CompressError('BAD_RANKS', `${who}: ${why}`);
  if (t.modes && showModes(t.modes) !== showModes(modes)) throw new CompressError('BAD_RANKS', `${who}: modes ${v} differ from --modes ${showModes(t.modes)}`);
  return modes;
}
