// CPAC-Conv significance (Wang, Guo, Yue 2020): a CP conv kernel (methods/cp.ts) is a sum of R rank-1 terms
// W[o,i,y,x] = sum_r a_out[o,r] a_in[r,i] k_h[r,y] k_w[r,x]. The size of each term, the product of
// its four factor-vector norms (= the Frobenius norm of the rank-1 tensor), says how much that term
// matters; summing a term's size over the feature maps it touches says which maps matter:
//   term r:        s_r   = ||a_out[:,r]|| ||a_in[r,:]|| ||k_h[r,:]|| ||k_w[r,:]||
//   output map o:  out_o = sum_r |a_out[o,r]| ||a_in[r,:]|| ||k_h[r,:]|| ||k_w[r,:]||
//   input map i:   in_i  = sum_r |a_in[r,i]| ||a_out[:,r]|| ||k_h[r,:]|| ||k_w[r,:]||
// No data is needed: these are properties of the stored factors.
import type { GraphNode, Model } from '../../runtime/ir.js';
import { tensorToFloat32 } from '../../runtime/format/dtype.js';
import { CP_KIND } from '../methods/cp.js';

export interface CpLayerSignificance {
  layer: string;
  kind: 'cp';
  rank: number;
  inChannels: number;
  outChannels: number;
  kernel: [number, number];
  /** s_r for r = 0..R-1, in term order. */
  termSignificance: number[];
  /** Term indices, most significant first. */
  termOrder: number[];
  /** Per output feature map (O values) and per input feature map (I values). */
  outputMaps: number[];
  inputMaps: number[];
}

export interface CpFactors {
  aIn: Float32Array; // [R, I]
  kH: Float32Array; // [R, kh]
  kW: Float32Array; // [R, kw]
  aOut: Float32Array; // [O, R]
  R: number; I: number; O: number; kh: number; kw: number;
}

export function cpNodes(model: Model): GraphNode[] {
  return model.graph.nodes.filter((n) => n.op === CP_KIND);
}

function rowNorms(a: Float32Array, rows: number, cols: number): Float64Array {
  const out = new Float64Array(rows);
  for (let i = 0; i < rows; i++) {
    let s = 0;
    for (let j = 0; j < cols; j++) s += a[i * cols + j]! ** 2;
    out[i] = Math.sqrt(s);
  }
  return out;
}

function colNorms(a: Float32Array, rows: number, cols: number): Float64Array {
  const out = new Float64Array(cols);
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) out[j]! += a[i * cols + j]! ** 2;
  return out.map(Math.sqrt);
}

/** Significance of the terms and feature maps of one CP kernel. */
export function cpSignificance(f: CpFactors): Pick<CpLayerSignificance, 'termSignificance' | 'termOrder' | 'outputMaps' | 'inputMaps'> {
  const { R, I, O, kh, kw } = f;
  const nIn = rowNorms(f.aIn, R, I);
  const nH = rowNorms(f.kH, R, kh);
  const nW = rowNorms(f.kW, R, kw);
  const nOut = colNorms(f.aOut, O, R);
  const term = Array.from({ length: R }, (_, r) => nOut[r]! * nIn[r]! * nH[r]! * nW[r]!);
  const termOrder = [...term.keys()].sort((a, b) => term[b]! - term[a]! || a - b);
  const outputMaps = Array.from({ length: O }, (_, o) => {
    let s = 0;
    for (let r = 0; r < R; r++) s += Math.abs(f.aOut[o * R + r]!) * nIn[r]! * nH[r]! * nW[r]!;
    return s;
  });
  const inputMaps = Array.from({ length: I }, (_, i) => {
    let s = 0;
    for (let r = 0; r < R; r++) s += Math.abs(f.aIn[r * I + i]!) * nOut[r]! * nH[r]! * nW[r]!;
    return s;
  });
  return { termSignificance: term, termOrder, outputMaps, inputMaps };
}

/** Significance for every CP conv layer of the model. */
export function explainCp(model: Model): CpLayerSignificance[] {
  return cpNodes(model).map((node) => {
    const get = (role: string) => {
      const name = node.weights[role];
      const t = name === undefined ? undefined : model.tensors.get(name);
      if (!t || t.shape.length !== 2) throw new Error(`explain: ${CP_KIND} ${node.name} has no 2-D ${role}`);
      return { data: tensorToFloat32(t), shape: t.shape as [number, number] };
    };
    const aIn = get('a_in'), kH = get('k_h'), kW = get('k_w'), aOut = get('a_out');
    const [R, I] = aIn.shape;
    const O = aOut.shape[0];
    const kh = kH.shape[1], kw = kW.shape[1];
    if (kH.shape[0] !== R || kW.shape[0] !== R || aOut.shape[1] !== R) throw new Error(`explain: ${CP_KIND} ${node.name}: factor ranks do not match`);
    const sig = cpSignificance({ aIn: aIn.data, kH: kH.data, kW: kW.data, aOut: aOut.data, R, I, O, kh, kw });
    return { layer: node.name, kind: 'cp', rank: R, inChannels: I, outChannels: O, kernel: [kh, kw], ...sig };
  });
}
