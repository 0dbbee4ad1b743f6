// cp_conv2d runs a batch whose R-channel maps would be large through its chain a chunk of images at
// a time, with scratch for one chunk (runtime/layers/cpConv2d.ts). Checked here: the chunk rule
// itself, the plan's smaller scratch, and outputs bit for bit those of the whole-batch chain (the
// same kernel calls over all images at once, made here) on the reference kernels, the wasm-simd
// kernels and the threaded kernels, at batches that chunk evenly (32) and unevenly (5, 33).
import t from 'tap';
import type { GraphNode, Model, StoredTensor, Tensor } from '../../../runtime/ir.js';
import { numel } from '../../../runtime/ir.js';
import { hasWasmSimd, hasWasmThreads, referenceBackend, wasmBackend, type KernelBackend } from '../../../runtime/kernels/backend.js';
import { conv2dGeometry, type Conv2dParams } from '../../../runtime/kernels/reference.js';
import { CP_CHUNK_FLOATS, cpChunkImages, cpChunks } from '../../../runtime/layers/cpConv2d.js';
import { Session } from '../../../runtime/session.js';

let seed = 777;
function randArray(n: number): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    a[i] = seed / 2147483648 - 0.5;
  }
  return a;
}

t.test('chunks cover the batch evenly, within the size limit and never below the lane rule', async (t) => {
  for (const R of [1, 3, 4, 24]) {
    for (const per of [1, 1000, CP_CHUNK_FLOATS / 8, CP_CHUNK_FLOATS / 3, CP_CHUNK_FLOATS, 4 * CP_CHUNK_FLOATS]) {
      for (let N = 1; N <= 70; N++) {
        const c = cpChunkImages(N, R, per);
        const parts = cpChunks(N, c);
        t.equal(parts[0]![0], 0);
        t.equal(parts[parts.length - 1]![1], N);
        for (let i = 1; i < parts.length; i++) t.equal(parts[i]![0], parts[i - 1]![1]);
        const sizes = parts.map(([a, b]) => b - a);
        t.ok(Math.max(...sizes) <= c && Math.max(...sizes) - Math.min(...sizes) <= 1, `R ${R} per ${per} N ${N}: ${sizes}`);
        // The maps fit the limit unless the lane rule asks for more images.
        if (c * per > CP_CHUNK_FLOATS) t.ok(c <= (R >= 4 ? 4 : 8), `R ${R} per ${per} N ${N}: chunk ${c}`);
        if (parts.length > 1) t.ok(Math.min(...sizes) >= (R >= 4 ? 2 : 4), `R ${R} per ${per} N ${N}: ${sizes}`);
      }
    }
  }
});

// ResNet-8's first CP convs (16 -> 16 channels, rank about 24, 32 x 32 maps, which the cost model
// contracts): 3 * 24 * 1024 floats of maps an image, so chunks of at most 4 images.
const [I, R, O, H, W] = [16, 24, 16, 32, 32];
const tensors: StoredTensor[] = [
  { name: 'ai', dtype: 'f32', shape: [R, I], data: randArray(R * I) },
  { name: 'kh', dtype: 'f32', shape: [R, 3], data: randArray(R * 3) },
  { name: 'kw', dtype: 'f32', shape: [R, 3], data: randArray(R * 3) },
  { name: 'ao', dtype: 'f32', shape: [O, R], data: randArray(O * R) },
  { name: 'b', dtype: 'f32', shape: [O], data: randArray(O) },
];
const w = (name: string) => tensors.find((x) => x.name === name)!.data as Float32Array;

function model(attrs: GraphNode['attrs']): Model {
  return {
    graph: {
      inputs: [{ name: 'x', shape: [-1, I, H, W] }],
      outputs: ['y'],
      nodes: [{ name: 'n', op: 'cp_conv2d', inputs: ['x'], outputs: ['y'], attrs, weights: { a_in: 'ai', k_h: 'kh', k_w: 'kw', a_out: 'ao', bias: 'b' } }],
    },
    tensors: new Map(tensors.map((s) => [s.name, s])),
    metadata: {},
  };
}

/** The chain over the whole batch in one call per stage (the layer's code before chunking). */
function wholeBatch(k: KernelBackend, x: Tensor, p: Conv2dParams): Float32Array {
  const N = x.shape[0]!;
  const vertical: Conv2dParams = { strides: [p.strides[0], 1], pads: [p.pads[0], 0, p.pads[2], 0], dilations: [p.dilations[0], 1], group: R };
  const horizontal: Conv2dParams = { strides: [1, p.strides[1]], pads: [0, p.pads[1], 0, p.pads[3]], dilations: [1, p.dilations[1]], group: R };
  const aShape = [N, R, H, W];
  const gv = conv2dGeometry(aShape, [R, 1, 3, 1], vertical);
  const gh = conv2dGeometry(gv.shape, [R, 1, 1, 3], horizontal);
  const a = new Float32Array(numel(aShape));
  const v = new Float32Array(numel(gv.shape));
  const h = new Float32Array(numel(gh.shape));
  const cols = new Float32Array(Math.max(gv.cols, gh.cols));
  const y = new Float32Array(N * O * gh.shape[2]! * gh.shape[3]!);
  k.conv1x1Into(x.data, x.shape, w('ai'), R, undefined, a);
  if (!k.cpSeparableInto?.(a, aShape, w('kh'), w('kw'), 3, 3, vertical, horizontal, h)) {
    k.conv2dInto(a, aShape, w('kh'), [R, 1, 3, 1], undefined, vertical, v, cols);
    k.conv2dInto(v, gv.shape, w('kw'), [R, 1, 1, 3], undefined, horizontal, h, cols);
  }
  k.conv1x1Into(h, gh.shape, w('ao'), O, w('b'), y);
  return y;
}

function firstDiff(a: Float32Array, b: Float32Array): string {
  if (a.length !== b.length) return `lengths ${a.length} vs ${b.length}`;
  for (let i = 0; i < a.length; i++) if (!Object.is(a[i], b[i])) return `at ${i}: ${a[i]} vs ${b[i]}`;
  return 'none';
}

const ATTRS: Conv2dParams[] = [
  { strides: [1, 1], pads: [1, 1, 1, 1], dilations: [1, 1], group: 1 }, // ResNet-8's 3 x 3
  { strides: [2, 2], pads: [1, 1, 1, 1], dilations: [1, 1], group: 1 }, // its strided ones
  { strides: [2, 1], pads: [1, 2, 0, 1], dilations: [1, 2], group: 1 },
];

async function backends(): Promise<Array<[string, KernelBackend, () => void]>> {
  const out: Array<[string, KernelBackend, () => void]> = [['reference', referenceBackend, () => {}]];
  if (hasWasmSimd()) out.push(['wasm-simd', await wasmBackend({ simd: 'simd128' }), () => {}]);
  if (hasWasmSimd() && hasWasmThreads()) {
    // Every splittable call split over 3 threads (ragged slices), as sessionThreads.test.ts forces.
    const mt = await wasmBackend({ threads: 3, minMacsPerThread: 0 });
    out.push(['threaded x3', mt, () => mt.threads!.close()]);
  }
  return out;
}

t.test('chunked runs give the whole-batch chain bit for bit, with scratch for one chunk', async (t) => {
  const list = await backends();
  t.teardown(() => list.forEach(([, , close]) => close()));
  for (const [name, k] of list) {
    for (const p of ATTRS) {
      const m = model({ strides: p.strides, pads: p.pads, dilations: p.dilations, group: 1 });
      const s = Session.create(m, { backend: k, threadChoice: 'model' });
      for (const N of [32, 5, 33]) {
        const x: Tensor = { shape: [N, I, H, W], data: randArray(N * I * H * W) };
        const got = s.runBatch(x).data;
        const want = wholeBatch(k, x, p);
        t.equal(firstDiff(got, want), 'none', `${name} ${JSON.stringify(p.strides)} batch ${N}: first difference`);
      }
      const plan = s.arenaInfo().find((a) => a.batch === 33)!.plan;
      t.same(plan.strategy?.map((x) => x.use), ['contract'], `${name}: the session contracts (runs the chain)`);
      // Scratch for 4 images' maps (each [R, H, W] at most) and one image's im2col columns, not 33 images'.
      const bound = 4 * (4 * 3 * R * H * W + R * 3 * H * W);
      t.ok(plan.peak_scratch <= bound, `${name}: peak scratch ${plan.peak_scratch} B <= ${bound} B`);
      t.ok(plan.peak_scratch < (33 * 3 * R * H * W * 4) / 4, `${name}: scratch well under the whole batch's maps`);
      s.dispose();
    }
  }
});
