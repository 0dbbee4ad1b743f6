// Every op's attributes through "missing", "wrong type", "zero", "negative" and "huge": the reader
// (readFlm) either refuses the file with one FLM_ATTR_* code, or accepts it, and then a session on
// each kernel backend either runs one inference (the wasm result matching the reference) or refuses
// with a typed error (an error with a string code) -- never a plain Error or a WebAssembly trap. The
// firmware's reader (host port, --check) refuses every file the TypeScript reader refuses.
// The matrix walks OP_ATTRS, so a new op's attributes are covered once the op has a model below.
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import t from 'tap';
import { writeFlm } from '../../../converter/writer.js';
import { OP_ATTRS, type AttrSpec } from '../../../runtime/format/attrs.js';
import { FlmError, readFlm } from '../../../runtime/format/index.js';
import { numel, type AttrValue, type GraphNode, type Model, type OpName, type StoredTensor } from '../../../runtime/ir.js';
import { hasWasmSimd, referenceBackend, wasmBackend, type KernelBackend } from '../../../runtime/kernels/backend.js';
import { MCU_OPS, mcuProfile } from '../../../runtime/plan/mcu.js';
import { getProfile, registerProfile } from '../../../runtime/plan/profiles.js';
import { Session } from '../../../runtime/session.js';
import { TMP, buildPort } from '../../firmware-bridge/firmware/support.js';
import { missing } from '../../support/require.js';
import { edit } from './fixtures/flm.js';

let seed = 12345;
const tensor = (name: string, shape: number[]): StoredTensor => ({
  name, dtype: 'f32', shape,
  data: Float32Array.from({ length: numel(shape) }, () => {
    seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
    return seed / 2 ** 32 - 0.5;
  }),
});

/** A small valid model around one node of `op` with the given attributes and weights. */
function oneNode(op: OpName, input: number[], attrs: Record<string, AttrValue>, weights: StoredTensor[] = [], roles: Record<string, string> = {}): Model {
  const node: GraphNode = { name: 'n', op, inputs: ['x'], outputs: ['y'], attrs, weights: roles };
  return { graph: { inputs: [{ name: 'x', shape: input }], outputs: ['y'], nodes: [node] }, tensors: new Map(weights.map((w) => [w.name, w])), metadata: {} };
}
const conv = { strides: [1, 1], pads: [1, 1, 1, 1], dilations: [1, 1], group: 1 };
/** The reshaped tensorial kinds, modes T = [2, 3], ranks 2 (a dense layer is the case kh = kw = 1). */
function reshapedModels(): Partial<Record<OpName, () => Model>> {
  const out: Partial<Record<OpName, () => Model>> = {};
  for (const method of ['rcp', 'rtk', 'rtt', 'rtr'] as const) {
    for (const isConv of [false, true]) {
      const sm = isConv ? [1, 2] : [3, 4];
      const [kh, kw] = isConv ? [3, 3] : [1, 1];
      const shapes: Record<string, number[]> = {};
      for (let m = 1; m <= 2; m++) {
        const mode = [[2, 3][m - 1]!, sm[m - 1]!];
        shapes[`factor.${m}`] = method === 'rcp' ? [2, ...mode] : method === 'rtk' ? [2, ...mode] : method === 'rtt' ? (m === 1 ? [2, ...mode] : [2, 2, ...mode]) : [2, 2, ...mode];
      }
      shapes['factor.0'] = method === 'rtr' ? [2, 2, kh, kw] : [2, kh, kw];
      if (method === 'rtk') shapes['core'] = [2, 2, 2];
      const op = `${method}_${isConv ? 'conv2d' : 'dense'}` as OpName;
      out[op] = () => oneNode(op, isConv ? [1, 2, 6, 6] : [1, 12], { ...(isConv ? conv : {}), t_modes: [2, 3], s_modes: sm },
        Object.entries(shapes).map(([role, shape]) => tensor(role, shape)), Object.fromEntries(Object.keys(shapes).map((r) => [r, r])));
    }
  }
  return out;
}
const MODELS: Partial<Record<OpName, () => Model>> = {
  conv2d: () => oneNode('conv2d', [1, 2, 6, 6], conv, [tensor('w', [3, 2, 3, 3])], { weight: 'w' }),
  svd_conv2d: () => oneNode('svd_conv2d', [1, 2, 6, 6], conv, [tensor('v', [2, 2, 3, 3]), tensor('u', [3, 2])], { v: 'v', u: 'u' }),
  tucker2_conv2d: () => oneNode('tucker2_conv2d', [1, 2, 6, 6], conv, [tensor('ui', [2, 2]), tensor('c', [2, 2, 3, 3]), tensor('uo', [3, 2])], { u_in: 'ui', core: 'c', u_out: 'uo' }),
  cp_conv2d: () => oneNode('cp_conv2d', [1, 2, 6, 6], conv, [tensor('ai', [2, 2]), tensor('kh', [2, 3]), tensor('kw', [2, 3]), tensor('ao', [3, 2])], { a_in: 'ai', k_h: 'kh', k_w: 'kw', a_out: 'ao' }),
  tt_dense: () => oneNode('tt_dense', [1, 12], { out_modes: [2, 3], in_modes: [3, 4] }, [tensor('g0', [1, 2, 3, 2]), tensor('g1', [2, 3, 4, 1])], { 'core.0': 'g0', 'core.1': 'g1' }),
  tr_dense: () => oneNode('tr_dense', [1, 12], { out_modes: [2, 3], in_modes: [3, 4] }, [tensor('g0', [2, 2, 3, 2]), tensor('g1', [2, 3, 4, 2])], { 'core.0': 'g0', 'core.1': 'g1' }),
  ttl_dense: () => oneNode('ttl_dense', [1, 12], { out_modes: [2, 3], in_modes: [3, 4] },
    [tensor('c', [2, 2, 2, 2]), tensor('f0', [2, 2]), tensor('f1', [3, 2]), tensor('f2', [3, 2]), tensor('f3', [4, 2])],
    { core: 'c', 'factor.0': 'f0', 'factor.1': 'f1', 'factor.2': 'f2', 'factor.3': 'f3' }),
  leaky_relu: () => oneNode('leaky_relu', [1, 12], { alpha: 0.1 }),
  clip: () => oneNode('clip', [1, 12], { min: -0.2, max: 0.3 }),
  max_pool: () => oneNode('max_pool', [1, 2, 6, 6], { kernel: [2, 2], strides: [2, 2], pads: [0, 0, 0, 0], dilations: [1, 1], ceil_mode: 0 }),
  avg_pool: () => oneNode('avg_pool', [1, 2, 6, 6], { kernel: [3, 3], strides: [1, 1], pads: [1, 1, 1, 1], ceil_mode: 0, count_include_pad: 0 }),
  flatten: () => oneNode('flatten', [1, 2, 6, 6], { axis: 1 }),
  reshape: () => oneNode('reshape', [1, 12], { shape: [1, 3, 4] }),
  transpose: () => oneNode('transpose', [1, 3, 4], { perm: [0, 2, 1] }),
  softmax: () => oneNode('softmax', [1, 12], { axis: -1 }),
  pad: () => oneNode('pad', [1, 2, 4, 4], { pads: [0, 0, 1, 1, 0, 0, 1, 1], mode: 'constant', value: 0 }),
  concat: () => oneNode('concat', [1, 2, 3], { axis: 1 }),
  slice: () => oneNode('slice', [1, 2, 6], { axes: [2], starts: [1], ends: [5], steps: [1] }),
  resize: () => oneNode('resize', [1, 2, 3, 3], { scales: [1, 1, 2, 2], mode: 'nearest', coord: 'asymmetric', nearest: 'floor' }),
  conv_transpose2d: () => oneNode('conv_transpose2d', [1, 2, 4, 4], { ...conv, output_padding: [0, 0] }, [tensor('w', [2, 3, 3, 3])], { weight: 'w' }),
  hard_sigmoid: () => oneNode('hard_sigmoid', [1, 12], { alpha: 0.2, beta: 0.5 }),
  log_softmax: () => oneNode('log_softmax', [1, 12], { axis: -1 }),
  gelu: () => oneNode('gelu', [1, 12], { approximate: 'tanh' }),
  pow: () => oneNode('pow', [1, 12], { exponent: 2 }),
  reduce: () => oneNode('reduce', [1, 3, 4], { op: 'sum', axes: [-1, 1], keepdims: 0 }),
  flexact: () => oneNode('flexact', [1, 12], { basis: 'poly', degree: 3 }, [tensor('v', [4, 12]), tensor('w', [5, 4]), tensor('c', [4, 3])], { v: 'v', w: 'w', coeffs: 'c' }),
  ...reshapedModels(),
  // 3x4 weights -> Q = 4 indices; depth 2, arity 2, brick wall: gates at (0, 2), then (1).
  adtn_dense: () => oneNode('adtn_dense', [1, 4], { features: [3, 4], depth: 2, arity: 2, pairing: 'brickwall' },
    [tensor('st', [4, 2]), tensor('g', [3, 4, 4])], { start: 'st', gates: 'g' }),
  dwlr_conv2d: () => oneNode('dwlr_conv2d', [1, 2, 6, 6], { ...conv, group: 2 }, [tensor('v', [1, 3, 3]), tensor('u', [2, 1])], { v: 'v', u: 'u' }),
  // a 2x1x2x2 kernel -> Q = 3 indices; depth 1, arity 2, brick wall: one gate at 0.
  adtn_conv2d: () => oneNode('adtn_conv2d', [1, 1, 4, 4], { ...conv, weight_shape: [2, 1, 2, 2], depth: 1, arity: 2, pairing: 'brickwall' },
    [tensor('st', [3, 2]), tensor('g', [1, 4, 4])], { start: 'st', gates: 'g' }),
  layer_norm: () => oneNode('layer_norm', [1, 3, 4], { axis: -2, epsilon: 1e-5 }, [tensor('s', [12]), tensor('b', [12])], { scale: 's', bias: 'b' }),
};

const HUGE = 2 ** 40;
/** The five attacks on one attribute: the value to put in its place (undefined: delete it). */
function attacks(spec: AttrSpec, valid: AttrValue | undefined): Array<[string, AttrValue | undefined]> {
  const len = Array.isArray(valid) ? valid.length : 'len' in spec && typeof spec.len === 'number' ? spec.len : 2;
  const list = (v: number) => Array.from({ length: len }, () => v);
  if (spec.type === 'ints') {
    return [['missing', undefined], ['wrong type (a number)', 3], ['wrong type (a string)', 'x'], ['wrong type (fractions)', list(1.5)],
      ['zero', list(0)], ['negative', list(-1)], ['huge', list(HUGE)], ['too long', [...(valid as number[] ?? []), 1, 1, 1, 1, 1, 1, 1, 1, 1]]];
  }
  if (spec.type === 'string') {
    return [['missing', undefined], ['wrong type (a list)', [1]], ['wrong type (a number)', 0], ['unknown value', 'x'], ['empty', '']];
  }
  if (spec.type === 'numbers') {
    return [['missing', undefined], ['wrong type (a number)', 3], ['wrong type (a string)', 'x'], ['zero', list(0)], ['negative', list(-1)],
      ['huge', list(HUGE)], ['infinite', list(Infinity)], ['too long', [...(valid as number[] ?? []), 1, 1, 1, 1, 1, 1, 1, 1, 1]]];
  }
  return [['missing', undefined], ['wrong type (a list)', [1]], ['wrong type (a string)', 'x'], ...(spec.type === 'int' ? [['wrong type (a fraction)', 0.5]] as Array<[string, AttrValue]> : []),
    ['zero', 0], ['negative', -1], ['huge', HUGE], ['infinite', Infinity]];
}

t.test('every op with attributes has a model in this test', async (t) => {
  for (const [op, specs] of Object.entries(OP_ATTRS)) {
    if (Object.keys(specs).length > 0) t.ok(MODELS[op as OpName], `${op} has a model`);
  }
});

t.test('attribute attacks: one typed verdict from the reader, each backend and the firmware', async (t) => {
  if (!getProfile('mcu')) registerProfile(mcuProfile);
  const backends: KernelBackend[] = [referenceBackend];
  if (hasWasmSimd()) backends.push(await wasmBackend());
  else missing(t, 'this Node has no WebAssembly SIMD');
  const fw = buildPort(t, 'host');
  mkdirSync(TMP, { recursive: true });
  const file = resolve(TMP, `attrs-${process.pid}.flm`);
  const tally = { refused: 0, ran: 0, sessionRefused: 0, firmwareRuns: 0 };
  const codes = new Map<string, number>();
  for (const [op, specs] of Object.entries(OP_ATTRS) as [OpName, Record<string, AttrSpec>][]) {
    const make = MODELS[op];
    if (!make) continue;
    const valid = writeFlm(make());
    t.doesNotThrow(() => readFlm(valid), `${op}: the valid model reads`);
    for (const [key, spec] of Object.entries(specs)) {
      for (const [what, value] of attacks(spec, make().graph.nodes[0]!.attrs[key])) {
        const where = `${op}.${key} ${what}`;
        // Edited in the header (the writer would refuse it), with the CRC made right.
        const bytes = edit(valid, (p) => {
          const attrs = p.header.graph.nodes[0].attrs as Record<string, unknown>;
          if (value === undefined) delete attrs[key];
          else attrs[key] = value;
        });
        let model: Model | undefined;
        try {
          model = readFlm(bytes);
        } catch (e) {
          if (!(e instanceof FlmError)) {
            t.fail(`${where}: reader threw ${String(e)}`);
            continue;
          }
          // A string lands as a header type error before the table; everything else in the table.
          if (!/^FLM_ATTR_|^FLM_HEADER_SCHEMA$/.test(e.code)) t.fail(`${where}: refused with ${e.code}, expected an FLM_ATTR_ code`);
          codes.set(e.code, (codes.get(e.code) ?? 0) + 1);
          tally.refused++;
        }
        if (model) {
          let want: Float32Array | undefined;
          for (const backend of backends) {
            const x = { shape: model.graph.inputs[0]!.shape, data: Float32Array.from({ length: numel(model.graph.inputs[0]!.shape) }, (_, i) => Math.sin(i)) };
            try {
              const s = Session.create(model, { backend });
              const y = s.runBatch(x).data;
              s.dispose();
              if (!want) want = y;
              else {
                let err = 0;
                for (let i = 0; i < y.length; i++) err = Math.max(err, Math.abs(y[i]! - want[i]!));
                if (!(y.length === want.length && err <= 1e-4)) t.fail(`${where}: ${backend.name} differs from the reference (max |diff| ${err})`);
              }
              tally.ran++;
            } catch (e) {
              const code = (e as { code?: unknown }).code;
              if (typeof code !== 'string') t.fail(`${where}: ${backend.name} threw an untyped ${String(e)}`);
              tally.sessionRefused++;
            }
          }
        }
        if (fw && MCU_OPS.has(op) && model === undefined) {
          writeFileSync(file, bytes);
          const r = spawnSync(fw, ['--check', file], { encoding: 'utf8', timeout: 20000 });
          tally.firmwareRuns++;
          t.equal(r.status, 2, `${where}: the firmware refuses it too (${r.stderr.trim()})`);
        }
      }
    }
  }
  t.ok(tally.refused > 50, `reader refused ${tally.refused} attacks (${JSON.stringify(Object.fromEntries(codes))}); sessions ran ${tally.ran}, refused ${tally.sessionRefused} (typed); firmware checked ${tally.firmwareRuns}`);
  for (const c of ['FLM_ATTR_MISSING', 'FLM_ATTR_TYPE', 'FLM_ATTR_LENGTH', 'FLM_ATTR_RANGE']) t.ok(codes.has(c), `${c} is reached`);
});

t.test('max_pool with a dilation of 0 no longer reaches the SIMD kernel', async (t) => {
  const bytes = edit(writeFlm(MODELS.max_pool!()), (p) => {
    p.header.graph.nodes[0].attrs.dilations = [0, 1];
  });
  t.throws(() => readFlm(bytes), { code: 'FLM_ATTR_RANGE' });
});

t.test('a quant.scale list holding a non-number: the reader and the firmware both refuse it', async (t) => {
  const fw = buildPort(t, 'host');
  const m = MODELS.conv2d!();
  const w = m.tensors.get('w')!;
  m.tensors.set('w', { ...w, dtype: 'i8', data: Int8Array.from(w.data, (v) => Math.round(v * 100)), quant: { scale: Float32Array.from({ length: 3 }, () => 0.01), axis: 0 } });
  const valid = writeFlm(m);
  mkdirSync(TMP, { recursive: true });
  const file = resolve(TMP, `scale-${process.pid}.flm`);
  for (const bad of ['x', null, true, [1], {}] as unknown[]) {
    const bytes = edit(valid, (p) => {
      const ten = (p.header.tensors as Array<{ name: string; quant?: { scale: unknown[] } }>).find((x) => x.name === 'w')!;
      ten.quant!.scale[1] = bad;
    });
    t.throws(() => readFlm(bytes), { code: 'FLM_HEADER_SCHEMA' }, `reader: scale ${JSON.stringify(bad)}`);
    if (!fw) continue;
    writeFileSync(file, bytes);
    for (const nomap of ['0', '1']) {
      const r = spawnSync(fw, ['--check', file], { encoding: 'utf8', env: { ...process.env, FL_HOST_NOMAP: nomap }, timeout: 20000 });
      t.equal(r.status, 2, `firmware (${nomap === '1' ? 'store read through the port' : 'store mapped'}): scale ${JSON.stringify(bad)} refused: ${r.stderr.trim()}`);
    }
  }
});
