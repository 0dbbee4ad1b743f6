// The pieces a factor kind's cost is made of (its `factor.contract`, runtime/layers/<kind>.ts):
// steps of FLOPs, bytes and calls at a rate, and the tensor network of a TT / TR / TTL layer whose
// contraction orders runtime/cost/model.ts searches. Estimation only: nothing here runs a product.
import type { GraphNode } from '../ir.js';

export type Rate = 'gemm' | 'gemv' | 'scalar';

export interface Step {
  what: string;
  flops: number;
  bytes: number;
  /** Bytes of an im2col column matrix built (priced at gatherGBs; not counted in `bytes`). */
  gather?: number;
  calls: number;
  rate: Rate;
  /** Fraction of the rate reached (a blocked GEMM with fewer than 8 output columns pads its 8-wide tiles). */
  eff?: number;
  us: number;
}

export class CostError extends Error {
  readonly code = 'COST_INVALID';
  constructor(node: GraphNode, message: string) {
    super(`cost ${node.name} (${node.op}): ${message}`);
  }
}

export type ShapeLookup = (role: string) => readonly number[] | undefined;

/** A step before the machine prices it. */
export type Raw = Omit<Step, 'us'>;

export function rateOf(rows: number): Rate {
  return rows >= 4 ? 'gemm' : 'gemv';
}

/** A weight's shape, which must exist with `dims` axes. */
export function shapeOf(node: GraphNode, shapes: ShapeLookup, role: string, dims: number): number[] {
  const s = shapes(role);
  if (!s) throw new CostError(node, `missing weight ${role}`);
  if (s.length !== dims) throw new CostError(node, `${role} has shape [${s}], expected ${dims}-D`);
  return [...s];
}

/** Share of the GEMM rate a product with `n` output columns reaches (8-wide register tiles). */
export function colEff(rows: number, n: number): number {
  return rows >= 4 ? Math.min(1, n / 8) : 1;
}

/** A GEMM step of `rows` x `n` output with inner size k, `calls` times, moving `floats` f32. */
export function gemm(what: string, calls: number, rows: number, n: number, k: number, floats: number): Raw {
  return { what, flops: 2 * calls * rows * n * k, bytes: 4 * floats, calls, rate: rateOf(rows), eff: colEff(rows, n) };
}

/**
 * Whether the wasm kernels run this conv as Winograd F(2,3) (runtime/kernels/wasm/winograd.c,
 * winograd_shape; the conformance suite checks the two rules agree).
 */
export function winogradConv(C: number, O: number, kh: number, kw: number, G: number, strides: readonly number[], dilations: readonly number[], OH: number, OW: number): boolean {
  return kh === 3 && kw === 3 && G === 1 && strides[0] === 1 && strides[1] === 1 && dilations[0] === 1 && dilations[1] === 1 &&
    C >= 4 && O >= 4 && C * O >= 64 && OH >= 4 && OW >= 4;
}

/**
 * Whether the wasm kernels run this depthwise conv as 'depthwise valid' (runtime/kernels/wasm/depthwise.c,
 * depthwise_valid_shape): a 1 x k, or a k x 1 with rows as wide as the input's, at stride 1 with no
 * padding and every tap inside the input. `pads` [top, left, bottom, right].
 */
export function depthwiseValidConv(C: number, H: number, W: number, O: number, kh: number, kw: number, G: number, strides: readonly number[], dilations: readonly number[], pads: readonly number[], OH: number, OW: number): boolean {
  const [sh, sw] = strides as [number, number];
  const [dh, dw] = dilations as [number, number];
  const valid = G === C && G > 1 && O % C === 0 && sh === 1 && sw === 1 && pads[0] === 0 && pads[1] === 0 && OH >= 1 &&
    OH + (kh - 1) * dh <= H && OW + (kw - 1) * dw <= W;
  if (!valid || kh * kw > 64) return false;
  if (kh === 1) return OW >= 4;
  if (kw === 1) return OW === W && OH * OW >= 4;
  return false;
}

/**
 * Whether conv.c sends a padded depthwise k x 1 at stride 1 whose rows are as wide as the input's
 * to the copy-free wide kernel ahead of the lane-packed one (conv_path_base).
 */
function depthwiseColumnWide(C: number, H: number, W: number, kh: number, kw: number, G: number, strides: readonly number[], dilations: readonly number[], pads: readonly number[], OH: number, OW: number): boolean {
  if (!(C === G && G > 1 && kw === 1 && strides[0] === 1 && strides[1] === 1 && OW === W && kh * kw <= 32 && OH * OW >= 8 && H >= 1 && kh <= 256)) return false;
  // conv.c's wide_scratch: the padded plane (unless used in place) and the wide output (none: Wp == OW).
  const dh = dilations[0]!;
  const Hp = OH + (kh - 1) * dh;
  const inPlace = pads[0] === 0 && pads[1] === 0 && Hp <= H;
  return (inPlace ? 0 : Hp * W) <= kh * OH * OW;
}

/**
 * Whether the wasm kernels run this depthwise conv as 'depthwise rows' (runtime/kernels/wasm/dwrows.c,
 * depthwise_rows_shape; the conformance suite checks the two rules agree): a k x 1 at a vertical
 * stride of 2 or more, horizontal stride 1, no left padding, rows as wide as the input's (CP's
 * strided vertical stage). `pads` [top, left, bottom, right].
 */
export function depthwiseRowsConv(C: number, W: number, O: number, kh: number, kw: number, G: number, strides: readonly number[], pads: readonly number[], OW: number): boolean {
  return G === C && G > 1 && O % C === 0 && kw === 1 && strides[1] === 1 && strides[0]! >= 2 && pads[1] === 0 && OW === W &&
    W >= 4 && kh >= 1 && kh <= 64;
}

/**
 * Whether the wasm kernels run this depthwise conv as 'depthwise hrows' (runtime/kernels/wasm/dwrows.c,
 * depthwise_hrows_shape, after 'depthwise valid'; the conformance suite checks the two rules
 * agree): a padded 1 x k at stride 1 on rows of 32 outputs or more (CP's horizontal stage on 32 x 32).
 */
export function depthwiseHrowsConv(C: number, H: number, W: number, O: number, kh: number, kw: number, G: number, strides: readonly number[], dilations: readonly number[], pads: readonly number[], OH: number, OW: number): boolean {
  if (depthwiseValidConv(C, H, W, O, kh, kw, G, strides, dilations, pads, OH, OW)) return false;
  const pl = pads[1]!;
  const Wp = OW + (kw - 1) * dilations[1]!;
  return G === C && G > 1 && O % C === 0 && kh === 1 && strides[0] === 1 && strides[1] === 1 && pads[0] === 0 && OH === H &&
    kw >= 2 && kw <= 16 && OW >= 32 && pl >= 0 && pl <= Wp && W >= 4 && W + pl <= 512 && Wp <= 512;
}

/**
 * Whether the wasm kernels run this depthwise conv as 'depthwise s2k3' (runtime/kernels/wasm/dwrows.c,
 * depthwise_s2k3_shape; the conformance suite checks the two rules agree): 1 x 3 at horizontal
 * stride 2 with one column of left padding and the last tap inside the row (CP's strided
 * horizontal stage).
 */
export function depthwiseS2k3Conv(C: number, H: number, W: number, O: number, kh: number, kw: number, G: number, strides: readonly number[], dilations: readonly number[], pads: readonly number[], OH: number, OW: number): boolean {
  return G === C && G > 1 && O % C === 0 && kh === 1 && kw === 3 && strides[0] === 1 && strides[1] === 2 && pads[0] === 0 &&
    OH === H && pads[1] === 1 && dilations[1] === 1 && OW >= 4 && 2 * OW <= W;
}

/**
 * Which kernel the wasm kernels' conv1x1 runs (runtime/kernels/wasm/conv1x1.c, conv1x1_path; the
 * conformance suite checks the two rules agree): 'packed' (8-pixel tiles copied contiguous, 4 x 8
 * register tiles) with 4 input channels or more on maps of 96 pixels or more, or when the output
 * channels fill blocks of 4;
 * 'batch' (one GEMM over the batch's 8-pixel tiles) on 8 to 64 pixels with 32 input channels or
 * more; else 'direct' (conv.c). conv1x1Step prices all three at the GEMM rate: the packed kernel
 * reaches 0.7-1.0 of it (bench/pointwisePacked.ts), the others run where they reach about as much.
 */
export function pointwisePath(C: number, HW: number, O: number): 'packed' | 'batch' | 'direct' {
  if (HW >= 8 && C >= 4 && 8 * C <= 8192 && (HW >= 96 || O % 4 === 0)) return 'packed';
  if (C >= 32 && O >= 1 && HW >= 8 && HW <= 64 && HW % 8 === 0) return 'batch';
  return 'direct';
}

/** Share of the GEMM rate the 'depthwise rows', 'hrows' and 's2k3' kernels reach (bench/layerProfile.ts: ResNet-8's CP 3 x 1 stride-2, 1 x 3 and 1 x 3 stride-2 stages, 0.25-0.35). */
const DEPTHWISE_ROWS_EFF = 0.3;

/**
 * Whether the wasm kernels run this conv with the channels in the vector lanes
 * (runtime/kernels/wasm/depthwise.c, depthwise_packed_shape; the conformance suite checks the two
 * rules agree): depthwise (group C) or one input channel to at most 4 outputs, on rows under 16
 * outputs or strided, with at most 64 taps and the zero-padded plane, the input and the output at
 * most 2048 pixels (the padded plane with one spare). With `pads` given, not the shapes conv.c
 * sends to 'depthwise valid' or to the wide kernel first (depthwiseValidConv, depthwiseColumnWide).
 */
export function depthwisePackedConv(C: number, H: number, W: number, O: number, kh: number, kw: number, G: number, strides: readonly number[], dilations: readonly number[], OH: number, OW: number, pads?: readonly number[]): boolean {
  if (G !== C || O % C !== 0 || (G === 1 && O > 4)) return false;
  if (pads && (depthwiseValidConv(C, H, W, O, kh, kw, G, strides, dilations, pads, OH, OW) ||
    depthwiseColumnWide(C, H, W, kh, kw, G, strides, dilations, pads, OH, OW) || depthwiseRowsConv(C, W, O, kh, kw, G, strides, pads, OW) ||
    depthwiseHrowsConv(C, H, W, O, kh, kw, G, strides, dilations, pads, OH, OW) ||
    depthwiseS2k3Conv(C, H, W, O, kh, kw, G, strides, dilations, pads, OH, OW))) return false;
  const [sh, sw] = strides as [number, number];
  const [dh, dw] = dilations as [number, number];
  const Hp = (OH - 1) * sh + (kh - 1) * dh + 1;
  const Wp = (OW - 1) * sw + (kw - 1) * dw + 1;
  const narrow = OW < 16 || sh !== 1 || sw !== 1;
  return narrow && kh * kw <= 64 && OH * OW >= 4 && Hp * Wp + 1 <= 2048 && H * W <= 2048 && OH * OW <= 2048;
}

/** Share of the GEMM rate the lane-packed depthwise kernel reaches (bench/convPaths.ts: DS-CNN's 3x3 on 25 x 5, 5x5 on 12 x 12). */
const DEPTHWISE_PACKED_EFF = 0.4;

/**
 * Where the kernels run a conv: its strides and dilations, and its pads where known (the path is
 * then chosen as conv.c chooses it), or `true` for Winograd.
 */
export type ConvKernel = boolean | { strides: readonly number[]; dilations: readonly number[]; pads?: readonly number[] };

/** Share of the GEMM rate the 'depthwise valid' kernel reaches (bench/convPaths.ts: LeNet-5's CP 5 x 1 and 1 x 5 stages). */
const DEPTHWISE_VALID_EFF = 0.4;

/**
 * conv2d by im2col on the kernels: x [B, C, H, W] (per group Cg = C / G), weight [O, Cg, kh, kw].
 * With `kernel` true or strides that winogradConv takes: Winograd F(2,3), 16 multiply-adds per
 * 2x2 output tile and (o, c) pair instead of 36, and the input and output transforms as its
 * gather. Strides that depthwisePackedConv takes: the lane-packed depthwise kernel, the
 * multiply-adds at DEPTHWISE_PACKED_EFF of the GEMM rate and its packed copy of the input
 * (ceil(O / 4) blocks of 4 padded planes) moved at copy bandwidth instead of an im2col matrix.
 */
export function convStep(what: string, B: number, C: number, H: number, W: number, O: number, G: number, kh: number, kw: number, OH: number, OW: number, kernel: ConvKernel = false): Raw {
  const winograd = kernel === true || (typeof kernel === 'object' && winogradConv(C, O, kh, kw, G, kernel.strides, kernel.dilations, OH, OW));
  if (winograd) {
    const tiles = Math.ceil(OH / 2) * 4 * Math.ceil(Math.ceil(OW / 2) / 4);
    return { what: `${what} (winograd)`, flops: 2 * B * O * C * 16 * tiles, bytes: 4 * (B * C * H * W + B * O * OH * OW), gather: 4 * B * 16 * tiles * (C + O), calls: 1, rate: rateOf(O) };
  }
  const Cg = C / G;
  const P = OH * OW;
  const K = Cg * kh * kw;
  if (typeof kernel === 'object' && kernel.pads && depthwiseValidConv(C, H, W, O, kh, kw, G, kernel.strides, kernel.dilations, kernel.pads, OH, OW)) {
    return { what: `${what} (depthwise valid)`, flops: 2 * B * O * K * P, bytes: 4 * (B * C * H * W + B * O * P), calls: 1, rate: 'gemm', eff: DEPTHWISE_VALID_EFF };
  }
  if (typeof kernel === 'object' && kernel.pads && depthwiseRowsConv(C, W, O, kh, kw, G, kernel.strides, kernel.pads, OW)) {
    return { what: `${what} (depthwise rows)`, flops: 2 * B * O * K * P, bytes: 4 * (B * C * H * W + B * O * P), calls: 1, rate: 'gemm', eff: DEPTHWISE_ROWS_EFF };
  }
  if (typeof kernel === 'object' && kernel.pads && depthwiseHrowsConv(C, H, W, O, kh, kw, G, kernel.strides, kernel.dilations, kernel.pads, OH, OW)) {
    return { what: `${what} (depthwise hrows)`, flops: 2 * B * O * K * P, bytes: 4 * (B * C * H * W + B * O * P), calls: 1, rate: 'gemm', eff: DEPTHWISE_ROWS_EFF };
  }
  if (typeof kernel === 'object' && kernel.pads && depthwiseS2k3Conv(C, H, W, O, kh, kw, G, kernel.strides, kernel.dilations, kernel.pads, OH, OW)) {
    return { what: `${what} (depthwise s2k3)`, flops: 2 * B * O * K * P, bytes: 4 * (B * C * H * W + B * O * P), calls: 1, rate: 'gemm', eff: DEPTHWISE_ROWS_EFF };
  }
  if (typeof kernel === 'object' && depthwisePackedConv(C, H, W, O, kh, kw, G, kernel.strides, kernel.dilations, OH, OW, kernel.pads)) {
    const [sh, sw] = kernel.strides as [number, number];
    const [dh, dw] = kernel.dilations as [number, number];
    const padded = ((OH - 1) * sh + (kh - 1) * dh + 1) * ((OW - 1) * sw + (kw - 1) * dw + 1);
    const packed = B * 4 * Math.ceil(O / 4) * padded;
    return {
      what: `${what} (depthwise packed)`, flops: 2 * B * O * K * P, bytes: 4 * (B * C * H * W + B * O * P + packed),
      calls: 1, rate: 'gemm', eff: DEPTHWISE_PACKED_EFF,
    };
  }
  const floats = B * C * H * W + B * O * P + (G === 1 ? 0 : O * K);
  return { what, flops: 2 * B * O * K * P, bytes: 4 * floats, gather: 4 * B * G * K * P, calls: 1, rate: rateOf(O / G) };
}

export function conv1x1Step(what: string, B: number, C: number, HW: number, O: number): Raw {
  return { what, flops: 2 * B * O * C * HW, bytes: 4 * (B * C * HW + B * O * HW), calls: 1, rate: rateOf(O) };
}

// ---- tensor networks (TT / TR / TTL), for the contraction-order search ----------------------

/** A tensor of a network: its name (a weight role, or 'x') and its legs. */
export interface NetTensor {
  name: string;
  legs: string[];
}
export interface Net {
  sizes: Map<string, number>;
  /** Legs that stay open in the output (batch, output modes). */
  open: Set<string>;
  x: NetTensor;
  others: NetTensor[];
  /** The order the layer kind uses. */
  layer: string[];
}

export function chainNet(B: number, outModes: number[], inModes: number[], ranks: number[]): Net {
  const d = outModes.length;
  const sizes = new Map<string, number>([['b', B]]);
  const bond = (k: number) => `r${k % d}`; // bond k joins core k-1 and core k; bond 0 closes the ring
  for (let k = 0; k < d; k++) {
    sizes.set(`m${k}`, outModes[k]!);
    sizes.set(`n${k}`, inModes[k]!);
    sizes.set(bond(k), ranks[k]!);
  }
  const others = outModes.map((_, k) => ({ name: `core.${k}`, legs: [bond(k), `m${k}`, `n${k}`, bond(k + 1)] }));
  // A tensor train (r_0 = 1) has no ring bond; keep the size-1 leg, it costs nothing.
  return {
    sizes, open: new Set(['b', ...outModes.map((_, k) => `m${k}`)]),
    x: { name: 'x', legs: ['b', ...inModes.map((_, k) => `n${k}`)] }, others, layer: others.map((t) => t.name),
  };
}

export function ttlNet(B: number, outModes: number[], inModes: number[], ranks: number[]): Net {
  const p = outModes.length;
  const sizes = new Map<string, number>([['b', B]]);
  outModes.forEach((v, k) => sizes.set(`m${k}`, v));
  inModes.forEach((v, k) => sizes.set(`n${k}`, v));
  ranks.forEach((v, k) => sizes.set(`r${k}`, v));
  const others: NetTensor[] = [{ name: 'core', legs: ranks.map((_, k) => `r${k}`) }];
  outModes.forEach((_, k) => others.push({ name: `factor.${k}`, legs: [`m${k}`, `r${k}`] }));
  inModes.forEach((_, k) => others.push({ name: `factor.${p + k}`, legs: [`n${k}`, `r${p + k}`] }));
  const layer = [...inModes.map((_, k) => `factor.${p + k}`), 'core', ...outModes.map((_, k) => `factor.${k}`)];
  return { sizes, open: new Set(['b', ...outModes.map((_, k) => `m${k}`)]), x: { name: 'x', legs: ['b', ...inModes.map((_, k) => `n${k}`)] }, others, layer };
}

/** What a factor kind's cost part returns: the steps of its own contraction, and its network. */
export interface ContractInfo {
  steps: Raw[];
  net?: Net;
}
