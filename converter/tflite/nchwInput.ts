// An imported TFLite model keeps the file's NHWC input, followed by one transpose to the IR's NCHW.
// The firmware has no transpose kernel, so the copy sent to a device (hil) takes NCHW input
// directly: the input is re-declared as [N, C, H, W] and the transpose after it dropped.
import type { GraphNode, Model } from '../../runtime/ir.js';

const isToNchw = (n: GraphNode): boolean => n.op === 'transpose' && Array.isArray(n.attrs.perm) && n.attrs.perm.join() === '0,3,1,2';

/** The model with each NHWC input that only feeds a transpose to NCHW turned into an NCHW input. */
export function withNchwInputs(model: Model): Model {
  let nodes = [...model.graph.nodes];
  const inputs = model.graph.inputs.map((inp) => {
    const readers = nodes.filter((n) => n.inputs.includes(inp.name));
    if (inp.shape.length !== 4 || readers.length === 0 || !readers.every(isToNchw)) return inp;
    const renamed = new Map(readers.map((r) => [r.outputs[0]!, inp.name]));
    if ([...renamed.keys()].some((v) => model.graph.outputs.includes(v))) return inp;
    nodes = nodes.filter((n) => !readers.includes(n)).map((n) => ({ ...n, inputs: n.inputs.map((v) => renamed.get(v) ?? v) }));
    const [b, h, w, c] = inp.shape as [number, number, number, number];
    return { ...inp, shape: [b, c, h, w] };
  });
  return { ...model, graph: { ...model.graph, inputs, nodes } };
}
