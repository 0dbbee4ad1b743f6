import { summarize, summarizePlans } from '../../runtime/describe.js';
import { CliError } from '../errors.js';
import { isFlm, readFlmAt, readModelBytes } from '../modelFile.js';
import { formatBytes, table } from '../table.js';
import { mcuOpsFor, mcuRefusal } from '../../runtime/plan/mcu.js';
import { isInt8Full } from '../../runtime/int8full/params.js';

export function inspectCommand(path: string, a: { json?: boolean }): void {
  const bytes = readModelBytes(path);
  if (!isFlm(bytes)) throw new CliError('NOT_A_MODEL', `${path} is not a .flm file (inspect reads .flm; convert an ONNX model first)`);
  const model = readFlmAt(path, bytes);
  // The reshape of the tensorial kinds (t_modes / s_modes; out_modes / in_modes of tt / tr) as OUT/IN.
  const modesOf = new Map(model.graph.nodes.flatMap((n) => {
    const o = n.attrs['t_modes'] ?? n.attrs['out_modes'];
    const i = n.attrs['s_modes'] ?? n.attrs['in_modes'];
    return Array.isArray(o) && Array.isArray(i) ? [[n.name, `${o.join('x')}/${i.join('x')}`] as const] : [];
  }));
  const layers = summarize(model).map((l) => (modesOf.has(l.name) ? { ...l, modes: modesOf.get(l.name)! } : l));
  const plans = summarizePlans(model);
  const params = layers.reduce((s, l) => s + l.params, 0);
  const tensorBytes = layers.reduce((s, l) => s + l.bytes, 0);
  const meta = model.metadata;
  const sourceParams = typeof meta['convert.source_params'] === 'number' ? meta['convert.source_params'] : typeof meta['source.params'] === 'number' ? meta['source.params'] : undefined;
  const sourceBytes = sourceParams !== undefined ? sourceParams * 4 : undefined;
  const totals = {
    params, tensorBytes, fileBytes: bytes.length,
    sourceParams: sourceParams ?? null, sourceBytes: sourceBytes ?? null,
    paramsRatio: sourceParams ? sourceParams / params : null,
    bytesRatio: sourceBytes ? sourceBytes / bytes.length : null,
    factorisedLayers: layers.filter((l) => l.factorised).length,
    denseLayers: layers.filter((l) => !l.factorised && l.tensors.some((t) => t.role === 'weight')).length,
  };
  // Without an "mcu" plan the firmware cannot run the file; name the ops it lacks, if that is why.
  const hasMcu = plans.some((p) => p.profile === 'mcu');
  // Per node: the firmware may run a kind but refuse one node of it (adtn_dense of arity 3).
  const refused = model.graph.nodes.map((n) => ({ n, why: mcuRefusal(n, model) })).filter((r) => r.why !== undefined);
  const lacking = [...new Set(refused.map((r) => r.n.op))];
  const refusedNodes = refused.map((r) => ({ node: r.n.name, op: r.n.op, why: r.why! }));
  const firmware = { mcuPlan: hasMcu, missingOps: lacking, refusedNodes, int8Full: isInt8Full(model) };
  if (a.json) {
    process.stdout.write(`${JSON.stringify({ model: path, layers, totals, metadata: meta, plans, firmware, graph: { inputs: model.graph.inputs, outputs: model.graph.outputs, nodes: model.graph.nodes.length } })}\n`);
    return;
  }
  process.stdout.write(`${table(
    ['layer', 'kind', 'ranks', 'tensors', 'dtype', 'params', 'bytes'],
    layers.map((l) => [l.name, l.op, l.ranks.join('x') || '-', l.tensors.map((t) => `${t.role}[${t.shape.join('x')}]`).join(' '),
      [...new Set(l.tensors.map((t) => t.dtype))].join('/'), l.params, l.bytes]),
  )}\n\n`);
  process.stdout.write(`${params} parameters in ${formatBytes(tensorBytes)} of tensors; file ${formatBytes(bytes.length)}\n`);
  if (sourceParams) {
    process.stdout.write(`source: ${sourceParams} parameters (${formatBytes(sourceBytes!)} as f32): ${totals.paramsRatio!.toFixed(2)}x fewer parameters, ${totals.bytesRatio!.toFixed(2)}x fewer bytes\n`);
  }
  if (!hasMcu && lacking.length > 0) {
    const where = lacking.map((op) => {
      const nodes = refused.filter((r) => r.n.op === op);
      const own = mcuOpsFor(model).has(op) ? nodes : [];
      return `${op} (${nodes.map((r) => r.n.name).slice(0, 3).join(', ')}${own.length ? `: ${own[0]!.why}` : ''})`;
    });
    const path = isInt8Full(model) ? ' on the int8-full path' : '';
    process.stdout.write(`firmware: no mcu plan; the firmware lacks ${lacking.length === 1 ? 'op' : 'ops'} ${where.join('; ')}${path}\n`);
  }
  if (plans.length === 0) {
    process.stdout.write('memory plan: none stored (the runtime plans its arena at load)\n');
  } else {
    process.stdout.write(`\nmemory plans (docs/FORMAT.md section 7):\n${table(
      ['profile', 'batch', 'arena', 'peak scratch', 'buffers', 'one buffer each', 'strategy', 'check'],
      plans.map((p) => [
        p.profile, p.batch, formatBytes(p.arenaBytes), formatBytes(p.peakScratchBytes),
        `${p.buffers} (${p.values} values${p.external ? `, ${p.external} external` : ''}${p.fused ? `, ${p.fused} fused` : ''}, ${p.scratch} scratch)`,
        formatBytes(p.unsharedBytes),
        p.strategy ? `${p.strategy.contract} contract, ${p.strategy.rebuild} rebuild` : '-',
        p.check,
      ]),
    )}\n`);
  }
}
