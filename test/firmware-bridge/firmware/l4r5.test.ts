// The cortex-m4 port's STM32L4R5ZI build (make cortex-m4-l4r5: 640 KB SRAM, 2 MB flash, like
// MLPerf Tiny's NUCLEO-L4R5ZI) under QEMU: a model whose plan needs more than the default build's
// 128 KB arena, whose f32 input (49,152 B) is larger than the default 4,096-byte frame and whose
// 640 outputs (2,560 B) are larger than the default 1,024-byte response, is refused by the
// default build and runs on this one, equal to the Node runtime (runtime/session.ts). A frame one
// byte over the build's max_frame is dropped and counted, and the device answers the next one.
import t from 'tap';
import type { AttrValue, GraphNode, Model, OpName, StoredTensor } from '../../../runtime/ir.js';
import { writeFlm } from '../../../converter/writer.js';
import { readFlm } from '../../../runtime/format/reader.js';
import { quantizeTensor } from '../../../runtime/format/dtype.js';
import { Session } from '../../../runtime/session.js';
import { openDevice, randomTensor, seededRandom, worst } from './support.js';

const TOL = 1e-3;
const INPUT = [1, 3, 64, 64];

const rnd = seededRandom(4242);
const tensor = randomTensor(rnd);
function node(name: string, op: OpName, inputs: string[], attrs: Record<string, AttrValue> = {}, weights: Record<string, string> = {}): GraphNode {
  return { name, op, inputs, outputs: [`${name}.out`], attrs, weights };
}
const conv = (strides: number[]) => ({ strides, pads: [1, 1, 1, 1], dilations: [1, 1], group: 1 });

/** conv 3->12 at 64x64 (192 KB of f32 output), conv 12->4 stride 2, global pool, dense 4->640. */
function bigModel(int8: boolean): Model {
  const tensors = [tensor('c1.w', [12, 3, 3, 3]), tensor('c1.b', [12]), tensor('c2.w', [4, 12, 3, 3], 0.3), tensor('c2.b', [4]), tensor('d.w', [640, 4]), tensor('d.b', [640])];
  const m = new Map<string, StoredTensor>();
  for (const w of tensors) m.set(w.name, int8 && w.shape.length >= 2 ? quantizeTensor(w, 'i8', { perChannelAxis: 0 }) : w);
  return {
    graph: {
      inputs: [{ name: 'x', shape: [-1, ...INPUT.slice(1)] }],
      outputs: ['d.out'],
      nodes: [
        node('c1', 'conv2d', ['x'], conv([1, 1]), { weight: 'c1.w', bias: 'c1.b' }),
        node('r1', 'relu', ['c1.out']),
        node('c2', 'conv2d', ['r1.out'], conv([2, 2]), { weight: 'c2.w', bias: 'c2.b' }),
        node('r2', 'relu', ['c2.out']),
        node('g', 'global_avg_pool', ['r2.out']),
        node('f', 'flatten', ['g.out'], { axis: 1 }),
        node('d', 'dense', ['f.out'], {}, { weight: 'd.w', bias: 'd.b' }),
      ],
    },
    tensors: m,
    metadata: {},
  };
}


const f32 = (b: Uint8Array) => new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));

t.test('the default cortex-m4 build refuses the model: arena, frame and response too small', async (t) => {
  const frames = await openDevice(t);
  if (!frames) return;
  const bytes = writeFlm(bigModel(false));
  const plan = readFlm(bytes).memoryPlan?.plans.find((p) => p.profile === 'mcu');
  t.ok(plan && plan.arena > 128 * 1024, `the mcu plan needs more than 128 KiB (${plan?.arena} B)`);
  const end = await frames.upload(bytes);
  t.equal(end.kind, 0xff, 'upload_end is an error');
  t.equal(end.body['code'], 'TOO_LARGE', `TOO_LARGE: ${end.body['msg']}`);
});

t.test('cortex-m4-l4r5 under QEMU: the model runs and equals the Node runtime', async (t) => {
  const frames = await openDevice(t, 'cortex-m4-l4r5');
  if (!frames) return;
  const hello = await frames.call(0x01);
  t.equal(hello.kind, 0x81, 'hello answered');
  t.equal(hello.body['arena'], 480 * 1024, 'arena of 480 KB');
  t.equal(hello.body['flash'], 1536 * 1024, 'model store of 1.5 MB');
  t.equal(hello.body['max_frame'], 112 * 1024, 'frames up to 112 KB');
  const maxFrame = hello.body['max_frame'] as number;
  for (const int8 of [false, true]) {
    const label = int8 ? 'int8 weights' : 'f32 weights';
    const bytes = writeFlm(bigModel(int8));
    const end = await frames.upload(bytes);
    t.equal(end.kind, 0x84, `${label}: upload_end accepted ${JSON.stringify(end.body)}`);
    if (end.kind !== 0x84) continue;
    t.ok((end.body['plan_arena'] as number) > 128 * 1024, `${label}: plan arena ${end.body['plan_arena']} B > 128 KiB`);
    t.same(end.body['out'], [1, 640], `${label}: 640 outputs`);
    const session = Session.create(readFlm(bytes));
    for (let k = 0; k < 2; k++) {
      // f32 input (49,152 B in one frame), then u8 pixels widened to f32 on the device
      const u8 = new Uint8Array(INPUT.reduce((a, b) => a * b, 1)).map(() => Math.floor((rnd() + 1) * 127.5));
      const x = k === 0 ? Float32Array.from(u8, (v) => (v - 128) / 64) : Float32Array.from(u8, (v) => v / 255);
      const ref = session.runBatch({ shape: INPUT, data: x }).data;
      const body = k === 0 ? { id: k, x: new Uint8Array(x.buffer), dtype: 'f32' } : { id: k, x: u8, dtype: 'u8', div: 255 };
      const inf = await frames.call(0x05, body, 120000);
      t.equal(inf.kind, 0x85, `${label}, ${k === 0 ? 'f32' : 'u8'} input: infer answered ${inf.kind === 0xff ? JSON.stringify(inf.body) : ''}`);
      if (inf.kind !== 0x85) continue;
      const y = f32(inf.body['y'] as Uint8Array);
      t.equal(y.length, 640, 'all 640 outputs in the response');
      const w = worst(y, ref);
      t.ok(w <= TOL, `${label}, ${k === 0 ? 'f32' : 'u8'} input: max scaled error ${w.toExponential(2)} <= ${TOL} (${inf.body['cycles']} instructions)`);
    }
  }
  // a request one byte over max_frame is dropped (no answer) and counted; the next one is answered
  const before = await frames.call(0x06);
  const over = new Uint8Array(maxFrame);
  await t.rejects(frames.call(0x05, { id: 9, x: over, dtype: 'f32' }, 3000), 'no answer to a frame over max_frame');
  const after = await frames.call(0x06);
  t.equal(after.kind, 0x86, 'stats answered after the dropped frame');
  t.equal(after.body['bad_frames'], (before.body['bad_frames'] as number) + 1, 'the oversized frame is counted in bad_frames');
});
