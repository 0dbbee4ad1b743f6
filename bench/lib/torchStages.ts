// A parametric layer as the stages a PyTorch peer builds it from (bench/torch_lenet_train.py): the
// layer kind's own ONNX export (the `onnx` part of its converter kind, converter/methods/) read back
// as a chain of Conv and Gemm stages. The peer then names no layer kind: a new factor kind whose
// export is such a chain reaches it with no change there.
import { OnnxGraphBuilder } from '../../converter/export/builder.js';
import { makeWeight, type EmitContext } from '../../converter/export/context.js';
import { converterKind } from '../../converter/methods/index.js';
import type { GraphNode, Model } from '../../runtime/ir.js';

export type TorchStage =
  | { op: 'Conv'; weight: number[]; group: number; strides: number[]; pads: number[]; dilations: number[]; bias: boolean }
  | { op: 'Gemm'; weight: number[]; bias: boolean };

/** The stages of `node` of `model`, whose first input has rank `inputRank`; throws on another chain. */
export function torchStages(model: Model, node: GraphNode, inputRank: number): TorchStage[] {
  const kind = converterKind(node.op);
  if (!kind) throw new Error(`torch stages: ${node.name} (${node.op}) is not a parametric layer kind`);
  const b = new OnnxGraphBuilder();
  const ctx: EmitContext = {
    b, opset: 13, node, inputs: ['x'], ranks: [inputRank], output: 'y',
    optionalWeight(role) {
      const name = node.weights[role];
      const t = name === undefined ? undefined : model.tensors.get(name);
      return t ? makeWeight(t) : undefined;
    },
    weight(role) {
      const w = ctx.optionalWeight(role);
      if (!w) throw new Error(`torch stages: ${node.name} has no weight ${role}`);
      return w;
    },
  };
  kind.onnx(ctx);
  const dims = new Map(b.initializers.map((i) => [i.name!, (i.dims ?? []).map(Number)]));
  const attr = (n: (typeof b.nodes)[number], key: string) => n.attribute?.find((a) => a.name === key);
  const ints = (n: (typeof b.nodes)[number], key: string, def: number[]) => attr(n, key)?.ints?.map(Number) ?? def;
  let prev = 'x';
  return b.nodes.map((n) => {
    const [x, w, bias] = n.input ?? [];
    const shape = w === undefined ? undefined : dims.get(w);
    if (x !== prev || !shape) throw new Error(`torch stages: ${node.name} (${node.op}) is not a chain of Conv and Gemm over stored weights`);
    prev = n.output![0]!;
    if (n.opType === 'Conv') {
      return { op: 'Conv', weight: shape, group: Number(attr(n, 'group')?.i ?? 1), strides: ints(n, 'strides', [1, 1]), pads: ints(n, 'pads', [0, 0, 0, 0]), dilations: ints(n, 'dilations', [1, 1]), bias: bias !== undefined };
    }
    if (n.opType === 'Gemm' && Number(attr(n, 'transB')?.i ?? 0) === 1) return { op: 'Gemm', weight: shape, bias: bias !== undefined };
    throw new Error(`torch stages: ${node.name} (${node.op}) exports a ${n.opType}, which the peer does not build`);
  });
}
