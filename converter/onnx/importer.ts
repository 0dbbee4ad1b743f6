// The importer's state and walk: folds what is constant, hands every other node to its emitter
// (the table is given: onnx/ops.ts EMITTERS, which import.ts passes in, so that the emitters can
// take an Importer without an import cycle), then fixes up outputs, drops dead nodes and unused
// tensors.
import onnxProto from 'onnx-proto';
import type { AttrValue, Graph, GraphInput, GraphNode, OpName, StoredTensor } from '../../runtime/ir.js';
import { OnnxImportError, nodeRef } from './errors.js';
import { FOLDABLE, foldNode } from './fold.js';
import type { GraphParts } from './load.js';
import { type Dim, Symbols } from './shapes.js';
import { type Const, constFromProto, toNum } from './tensors.js';

type INodeProto = onnxProto.onnx.INodeProto;

/** Ops that pass their input through and disappear from the graph. */
const PASS_THROUGH = new Set(['Identity', 'Dropout']);

/** How the importer hands a node to its emitter (the table is onnx/ops.ts EMITTERS). */
export type NodeEmitter = (imp: Importer, n: INodeProto, ctx: { name: string; where: string }) => void;

export class Importer {
  readonly symbols = new Symbols();
  readonly consts = new Map<string, Const>();
  readonly shapes = new Map<string, Dim[]>();
  readonly nodes: GraphNode[] = [];
  readonly producer = new Map<string, GraphNode>();
  readonly tensors = new Map<string, StoredTensor>();
  readonly tensorSrc = new Map<string, Set<string>>();
  /** Float parameter sources (initializers, Constant nodes) and their element counts. */
  readonly paramNumel = new Map<string, number>();
  private readonly alias = new Map<string, string>();
  private readonly uses = new Map<string, number>();
  private readonly graphOutputs: Set<string>;
  private readonly valueNames = new Set<string>();
  private readonly nodeNames = new Set<string>();

  /**
   * The fixed batch size B of an export without a dynamic batch axis, when this import makes that
   * axis free: the graph inputs whose leading dim is B get a symbolic one, and Reshape targets
   * that start with B (PyTorch's x.view(x.size(0), -1) folded at export) copy the batch instead.
   */
  freeBatch: number | undefined;
  /** The graph's activation inputs, in order (an Expand over a free batch borrows that axis from one). */
  readonly graphInputs: string[] = [];

  constructor(readonly parts: GraphParts, readonly opset: number, private readonly emitters: Readonly<Record<string, NodeEmitter>>) {
    const g = parts;
    this.graphOutputs = new Set(g.output.map((o) => o.name ?? ''));
    for (const n of g.node) for (const v of [...(n.input ?? []), ...(n.output ?? [])]) if (v) this.valueNames.add(v);
    for (const t of g.initializer) this.valueNames.add(t.name ?? '');
    for (const i of g.input) this.valueNames.add(i.name ?? '');
    this.countUses(g.node);
  }

  /** Consumers of each value, looking through Identity/Dropout; graph outputs count as consumers. */
  private countUses(nodes: INodeProto[]): void {
    const direct = new Map<string, number>();
    const passOut = new Map<string, string[]>();
    for (const n of nodes) {
      const ins = (n.input ?? []).filter((v) => v);
      if (PASS_THROUGH.has(n.opType ?? '') && ins[0]) {
        passOut.set(ins[0], [...(passOut.get(ins[0]) ?? []), n.output?.[0] ?? '']);
        continue;
      }
      for (const v of ins) direct.set(v, (direct.get(v) ?? 0) + 1);
    }
    for (const o of this.graphOutputs) direct.set(o, (direct.get(o) ?? 0) + 1);
    const total = (v: string, depth: number): number => {
      if (depth > nodes.length) return 2;
      let c = direct.get(v) ?? 0;
      for (const o of passOut.get(v) ?? []) c += total(o, depth + 1);
      return c;
    };
    for (const v of this.valueNames) this.uses.set(v, total(v, 0));
  }

  /** True when only one node (or graph output) reads `name`, so its producer may be rewritten. */
  soleUse(name: string): boolean {
    return (this.uses.get(name) ?? 0) === 1 && !this.graphOutputs.has(name);
  }

  isUsed(name: string): boolean {
    return (this.uses.get(name) ?? 0) > 0;
  }

  /** The IR value an ONNX value name stands for. */
  value(name: string): string {
    let v = name;
    for (let i = 0; i < 1000 && this.alias.has(v); i++) v = this.alias.get(v)!;
    return v;
  }

  setAlias(from: string, to: string): void {
    this.alias.set(from, to);
    const s = this.shapes.get(this.value(to));
    if (s) this.shapes.set(from, s);
  }

  constOf(name: string): Const | undefined {
    return name ? this.consts.get(name) : undefined;
  }

  shapeOf(name: string, where: string): Dim[] {
    const s = this.shapes.get(name) ?? this.shapes.get(this.value(name));
    if (!s) throw new OnnxImportError('ONNX_BAD_MODEL', `${where}: the shape of "${name}" is unknown`);
    return s;
  }

  freshValue(base: string): string {
    let name = base;
    for (let i = 1; this.valueNames.has(name) || this.tensors.has(name); i++) name = `${base}_${i}`;
    this.valueNames.add(name);
    return name;
  }

  private freshNodeName(base: string): string {
    let name = base;
    for (let i = 1; this.nodeNames.has(name); i++) name = `${base}_${i}`;
    this.nodeNames.add(name);
    return name;
  }

  emit(
    op: OpName, name: string, inputs: string[], output: string, shape: Dim[],
    attrs: Record<string, AttrValue> = {}, weights: Record<string, string> = {},
  ): GraphNode {
    const node: GraphNode = { name: this.freshNodeName(name), op, inputs, outputs: [output], attrs, weights };
    this.nodes.push(node);
    this.producer.set(output, node);
    this.shapes.set(output, shape);
    return node;
  }

  /** Points `node`'s output at a new value name (after fusing the node that read it). */
  renameOutput(node: GraphNode, to: string, shape: Dim[]): void {
    this.producer.delete(node.outputs[0]!);
    node.outputs[0] = to;
    this.producer.set(to, node);
    this.shapes.set(to, shape);
  }

  /** Stores a constant under its ONNX value name (once) and returns the tensor name. */
  storeConst(valueName: string, c: Const, where: string): string {
    if (this.tensors.has(valueName)) return valueName;
    const data = c.kind === 'float' ? c.data : Float32Array.from(c.data, (v) => {
      if (typeof v !== 'number') throw new OnnxImportError('ONNX_UNSUPPORTED_ATTR', `${where}: constant depends on a free dim`);
      return v;
    });
    this.addTensor(valueName, c.dims.length === 0 ? [1] : c.dims, data, c.src);
    return valueName;
  }

  /** Stores a tensor the importer computed, under a fresh name derived from `base`. */
  storeDerived(base: string, dims: number[], data: Float32Array, src: Set<string>): string {
    const name = this.freshValue(base);
    this.addTensor(name, dims, data, src);
    return name;
  }

  private addTensor(name: string, dims: number[], data: Float32Array, src: Set<string>): void {
    this.tensors.set(name, { name, dtype: 'f32', shape: [...dims], data });
    this.tensorSrc.set(name, new Set(src));
  }

  run(): Graph {
    const g = this.parts;
    for (const t of g.initializer) {
      const name = t.name ?? '';
      const c = constFromProto(t, `initializer "${name}"`);
      if (c.kind === 'float') {
        c.src.add(name);
        this.paramNumel.set(name, c.data.length);
      }
      this.consts.set(name, c);
    }
    const inputs: GraphInput[] = [];
    for (const vi of g.input) {
      const name = vi.name ?? '';
      if (this.consts.has(name)) continue;
      const tt = vi.type?.tensorType;
      if (!tt) throw new OnnxImportError('ONNX_BAD_MODEL', `graph input "${name}" is not a tensor`);
      if (tt.elemType !== onnxProto.onnx.TensorProto.DataType.FLOAT) {
        throw new OnnxImportError('ONNX_UNSUPPORTED_ATTR', `graph input "${name}" has element type ${tt.elemType}; only float32 inputs are supported`);
      }
      if (!tt.shape) throw new OnnxImportError('ONNX_BAD_MODEL', `graph input "${name}" has no shape`);
      const dims: Dim[] = (tt.shape.dim ?? []).map((d, k) => {
        if (d.dimParam) return d.dimParam;
        const v = toNum(d.dimValue);
        if (k === 0 && v === this.freeBatch && (tt.shape?.dim?.length ?? 0) >= 2) return 'batch';
        return v > 0 ? v : this.symbols.fresh();
      });
      this.shapes.set(name, dims);
      inputs.push({ name, shape: dims.map((d) => (typeof d === 'number' ? d : -1)) });
      this.graphInputs.push(name);
    }
    if (inputs.length === 0) throw new OnnxImportError('ONNX_BAD_MODEL', 'every graph input is an initializer');

    const supported = (op: string): boolean => FOLDABLE.has(op) || op in this.emitters;
    for (const n of g.node) {
      const op = n.opType ?? '';
      if ((n.domain && n.domain !== 'ai.onnx') || !supported(op)) {
        const dom = n.domain && n.domain !== 'ai.onnx' ? `${n.domain}.` : '';
        throw new OnnxImportError('ONNX_UNSUPPORTED_OP',
          `unsupported ONNX op ${dom}${op} (node "${this.onnxNodeName(n)}", opset ${this.opset})`);
      }
    }
    const sorted = this.sortNodes(g.node, new Set([...this.consts.keys(), ...this.shapes.keys()]));
    for (const n of sorted) this.importNode(n);
    return this.finish(inputs, g.output.map((o) => o.name ?? ''));
  }

  onnxNodeName(n: INodeProto): string {
    return n.name || n.output?.[0] || n.opType || 'node';
  }

  /** Stable topological order (exporters already sort; this tolerates those that do not). */
  private sortNodes(nodes: INodeProto[], known: Set<string>): INodeProto[] {
    const out: INodeProto[] = [];
    let pending = [...nodes];
    while (pending.length > 0) {
      const next: INodeProto[] = [];
      for (const n of pending) {
        if ((n.input ?? []).every((v) => !v || known.has(v))) {
          out.push(n);
          for (const o of n.output ?? []) if (o) known.add(o);
        } else next.push(n);
      }
      if (next.length === pending.length) {
        const n = next[0]!;
        const missing = (n.input ?? []).find((v) => v && !known.has(v));
        throw new OnnxImportError('ONNX_BAD_MODEL',
          `node "${this.onnxNodeName(n)}" (${n.opType}) reads "${missing}", which no node, input or initializer defines`);
      }
      pending = next;
    }
    return out;
  }

  private importNode(n: INodeProto): void {
    const op = n.opType ?? '';
    const name = this.onnxNodeName(n);
    const where = nodeRef(name, op, this.opset);
    const ins = n.input ?? [];
    const allConst = ins.every((v) => !v || this.consts.has(v));
    const shapeOnly = (op === 'Shape' || op === 'Size') && !!ins[0] && this.shapes.has(this.value(ins[0]));
    // An Expand to a shape with a free dim (x.expand(x.size(0), -1, -1)) is emitted, not folded.
    const freeExpand = op === 'Expand' && allConst && !!ins[1] && this.consts.get(ins[1])!.data.some((d) => typeof d !== 'number');
    if (FOLDABLE.has(op) && (allConst || shapeOnly) && !freeExpand) {
      const outs = foldNode(n, ins.map((v) => this.constOf(v)), {
        opset: this.opset, symbols: this.symbols, where,
        shapeOf: (v) => this.shapes.get(this.value(v)),
      });
      (n.output ?? []).forEach((o, i) => {
        const c = outs[i];
        if (o && c) this.consts.set(o, c);
      });
      if (op === 'Constant') {
        const o = n.output?.[0];
        const c = outs[0];
        if (o && c?.kind === 'float') {
          c.src.add(o);
          this.paramNumel.set(o, c.data.length);
        }
      }
      return;
    }
    const emitter = this.emitters[op];
    if (!emitter) {
      throw new OnnxImportError('ONNX_UNSUPPORTED_OP',
        `unsupported ONNX op ${op} on a non-constant input (node "${name}", opset ${this.opset})`);
    }
    emitter(this, n, { name, where });
  }

  private finish(inputs: GraphInput[], outputs: string[]): Graph {
    for (const o of outputs) {
      if (this.consts.has(o)) throw new OnnxImportError('ONNX_BAD_MODEL', `graph output "${o}" is a constant`);
      const v = this.value(o);
      if (v !== o || !this.producer.has(o)) {
        if (!this.shapes.has(v)) throw new OnnxImportError('ONNX_BAD_MODEL', `graph output "${o}" is never computed`);
        this.emit('identity', o, [v], o, this.shapes.get(v)!);
      }
    }
    // Keep only nodes that feed an output.
    const live = new Set(outputs);
    const kept: GraphNode[] = [];
    for (let i = this.nodes.length - 1; i >= 0; i--) {
      const node = this.nodes[i]!;
      if (!node.outputs.some((o) => live.has(o))) continue;
      kept.push(node);
      for (const v of node.inputs) live.add(v);
    }
    kept.reverse();
    const usedTensors = new Set<string>();
    for (const node of kept) {
      for (const t of Object.values(node.weights)) usedTensors.add(t);
      for (const v of node.inputs) if (this.tensors.has(v)) usedTensors.add(v);
    }
    for (const name of [...this.tensors.keys()]) if (!usedTensors.has(name)) this.tensors.delete(name);
    this.nodes.splice(0, this.nodes.length, ...kept);
    return { inputs, outputs, nodes: kept };
  }

  /** Parameter count of the float initializers (and Constant tensors) that reach a stored tensor. */
  paramCount(): number {
    const srcs = new Set<string>();
    for (const name of this.tensors.keys()) for (const s of this.tensorSrc.get(name) ?? []) srcs.add(s);
    let n = 0;
    for (const s of srcs) n += this.paramNumel.get(s) ?? 0;
    return n;
  }
}
