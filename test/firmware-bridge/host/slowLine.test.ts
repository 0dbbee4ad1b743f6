// A line slower than the client is told, as an emulated UART is on a loaded machine: large f32
// frames (27,648 B of input each) crawl to the device at a rate the transport does not state
// (no baud). The client must measure the line and wait for it, not resend frame after frame
// behind one another until the device seems dead (RECOVERY_FAILED), and every answer must still
// equal the Node runtime's. The real firmware runs in the host process.
import t from 'tap';
import type { Test } from 'tap';
import { BridgeClient } from '../../../firmware-bridge/host/client.js';
import { LinePacer, type ByteTransport } from '../../../firmware-bridge/host/transport.js';
import { writeFlm } from '../../../converter/writer.js';
import { readFlm } from '../../../runtime/format/reader.js';
import { Session } from '../../../runtime/session.js';
import type { Model, StoredTensor } from '../../../runtime/ir.js';
import { needBoard, startDevice } from './device.js';

/** Bytes to the device released at `bytesPerSecond`, a rate the client is not told (baud undefined). */
class HiddenSlowLine implements ByteTransport {
  readonly baud = undefined;
  private readonly pacer: LinePacer;
  constructor(private readonly inner: ByteTransport, bytesPerSecond: number) {
    this.pacer = new LinePacer(bytesPerSecond * 10, (b) => inner.write(b));
  }
  write(bytes: Uint8Array): void {
    this.pacer.push(bytes.slice());
  }
  onData(listener: (bytes: Uint8Array) => void): () => void {
    return this.inner.onData(listener);
  }
  async close(): Promise<void> {
    this.pacer.stop();
  }
}

/** [1,3,48,48] -> global average pool -> flatten -> dense 3 -> 4: a tiny model with a large input. */
function bigInputModel(): Uint8Array {
  const f32 = (name: string, shape: number[], data: number[]): StoredTensor => ({ name, dtype: 'f32', shape, data: Float32Array.from(data) });
  const model: Model = {
    graph: {
      inputs: [{ name: 'x', shape: [1, 3, 48, 48] }],
      outputs: ['y'],
      nodes: [
        { name: 'gap', op: 'global_avg_pool', inputs: ['x'], outputs: ['p'], attrs: {}, weights: {} },
        { name: 'flat', op: 'flatten', inputs: ['p'], outputs: ['f'], attrs: { axis: 1 }, weights: {} },
        { name: 'fc', op: 'dense', inputs: ['f'], outputs: ['y'], attrs: {}, weights: { weight: 'fc.w', bias: 'fc.b' } },
      ],
    },
    tensors: new Map([
      ['fc.w', f32('fc.w', [4, 3], [0.5, -1, 2, 1.5, 0.25, -0.75, -2, 1, 0.125, 3, -0.5, 0.3])],
      ['fc.b', f32('fc.b', [4], [0.1, -0.2, 0.3, -0.4])],
    ]),
    metadata: { 'source.model': 'slow-line-test' },
  };
  return writeFlm(model);
}

/** `n` pseudo-random samples through `client`, each checked against the Node runtime. */
async function inferSamples(t: Test, client: BridgeClient, bytes: Uint8Array, n: number): Promise<void> {
  const session = Session.create(readFlm(bytes));
  let s = 7;
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    const x = Float32Array.from({ length: 3 * 48 * 48 }, () => {
      s = (Math.imul(s, 1103515245) + 12345) >>> 0;
      return s / 2 ** 32 - 0.5;
    });
    const ti = performance.now();
    const r = await client.infer(i, x);
    t.comment(`sample ${i}: ${((performance.now() - ti) / 1000).toFixed(1)} s, ${client.counters.resends} resends so far`);
    t.equal(r.id, i, `sample ${i} answered`);
    const ref = session.runBatch({ shape: [1, 3, 48, 48], data: x }).data;
    t.ok(ref.every((v, k) => Math.abs(v - r.y[k]!) <= 1e-5 * Math.max(1, Math.abs(v))), `sample ${i} equals the Node runtime`);
  }
  const seconds = (performance.now() - t0) / 1000;
  t.comment(`${n} samples in ${seconds.toFixed(1)} s; ${client.counters.resends} resends, ${client.counters.timeouts} timeouts; measured line ${((client.measuredLineRate ?? 0) * 1000).toFixed(0)} B/s`);
  t.ok(client.measuredLineRate !== undefined && client.measuredLineRate * 1000 < 20000, 'the client measured the slow line');
  // Each frame crosses the line once (a resend would queue 27.7 KB more behind it); only the first,
  // sent before anything was measured, may time out once.
  t.ok(client.counters.resends <= 1, `at most one resend (${client.counters.resends})`);
}

t.test('large frames on a line slower than stated: the run slows down and does not fail', async (t) => {
  if (!needBoard(t, 'host')) return;
  const dev = await startDevice(t, 'host');
  // 9,000 B/s: one 27.7 KB infer frame takes about 3 s on the line, six times the base timeout.
  const line = new HiddenSlowLine(dev.serial, 9000);
  t.teardown(() => line.close());
  const client = new BridgeClient(line, {});
  t.teardown(() => client.close());
  const bytes = bigInputModel();
  await client.hello();
  await client.upload(bytes);
  await inferSamples(t, client, bytes, 3);
});

t.test('the first large frame times out before the line is measured: the late answer measures it', async (t) => {
  if (!needBoard(t, 'host')) return;
  const dev = await startDevice(t, 'host');
  // The first infer waits 1.5 s for a frame that takes about 3 s on the line: it times out for
  // sure, as a 5 s wait does on a loaded machine. The answer to its first copy comes during the
  // resend's wait; the client must measure the line from it, or each later frame waits the base
  // timeout behind the queued copy and resends again and again.
  const line = new HiddenSlowLine(dev.serial, 9000);
  t.teardown(() => line.close());
  const client = new BridgeClient(line, { firstInferTimeoutMs: 1500 });
  t.teardown(() => client.close());
  const bytes = bigInputModel();
  await client.hello();
  await client.upload(bytes);
  await inferSamples(t, client, bytes, 2);
  t.ok(client.counters.timeouts >= 1, `the first frame timed out (${client.counters.timeouts} timeouts)`);
});

/** [1,1,32,32] -> flatten -> dense 1024 -> 2: 8 KB of f32 weights, five upload chunks of 2 KB. */
function bigWeightModel(): Uint8Array {
  let s = 11;
  const w = Float32Array.from({ length: 2 * 1024 }, () => {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    return s / 2 ** 32 - 0.5;
  });
  const model: Model = {
    graph: {
      inputs: [{ name: 'x', shape: [1, 1, 32, 32] }],
      outputs: ['y'],
      nodes: [
        { name: 'flat', op: 'flatten', inputs: ['x'], outputs: ['f'], attrs: { axis: 1 }, weights: {} },
        { name: 'fc', op: 'dense', inputs: ['f'], outputs: ['y'], attrs: {}, weights: { weight: 'fc.w', bias: 'fc.b' } },
      ],
    },
    tensors: new Map([
      ['fc.w', { name: 'fc.w', dtype: 'f32', shape: [2, 1024], data: w }],
      ['fc.b', { name: 'fc.b', dtype: 'f32', shape: [2], data: Float32Array.from([0.1, -0.2]) }],
    ]),
    metadata: { 'source.model': 'slow-line-upload-test' },
  };
  return writeFlm(model);
}

t.test('an upload on a line slower than stated: each chunk crosses once, the device keeps answering', async (t) => {
  if (!needBoard(t, 'host')) return;
  const dev = await startDevice(t, 'host');
  // 1,500 B/s: one 2 KB chunk takes about 1.4 s on the line, three times the base timeout, and the
  // window of four chunks about 5.5 s (the emulated Cortex-M4's UART on a loaded machine).
  const line = new HiddenSlowLine(dev.serial, 1500);
  t.teardown(() => line.close());
  const client = new BridgeClient(line, {});
  t.teardown(() => client.close());
  const bytes = bigWeightModel();
  await client.hello();
  const t0 = performance.now();
  const up = await client.upload(bytes);
  const seconds = (performance.now() - t0) / 1000;
  t.comment(`upload of ${bytes.length} B in ${seconds.toFixed(1)} s: ${up.sentBytes} B sent in ${up.chunks} chunks; ${client.counters.resends} resends, ${client.counters.timeouts} timeouts`);
  t.equal(up.bytes, bytes.length, 'the whole model uploaded');
  // Before the line is measured a silence may send one chunk again, never a window of them (each
  // copy queues behind the first ones: the client of before resent whole windows until even hello
  // went unanswered).
  t.ok(up.sentBytes <= bytes.length + 3 * 2048, `at most three chunks sent twice (${up.sentBytes} B for ${bytes.length} B)`);
  t.ok(client.counters.resends <= 3, `at most three resends (${client.counters.resends})`);
  const x = Float32Array.from({ length: 1024 }, (_, i) => Math.sin(i));
  const r = await client.infer(1, x);
  const ref = Session.create(readFlm(bytes)).runBatch({ shape: [1, 1, 32, 32], data: x }).data;
  t.ok(ref.every((v, k) => Math.abs(v - r.y[k]!) <= 1e-5 * Math.max(1, Math.abs(v))), 'the uploaded model answers as the Node runtime');
});
