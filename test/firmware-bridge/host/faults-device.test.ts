// Fault injection against the real host-port firmware (firmware-bridge/firmware, `make host`):
// flipped bits, dropped and duplicated bytes, frames cut short in both directions, a device reset
// in the middle of a run, a lost model, a malformed and an oversized upload. Every run must end
// with one answer per sample id, outputs bit for bit those of a fault-free run, and the device
// still answering hello.
import t, { type Test } from 'tap';
import type { InferResult } from '../../../firmware-bridge/host/client.js';
import { BridgeClient } from '../../../firmware-bridge/host/client.js';
import type { ByteTransport } from '../../../firmware-bridge/host/transport.js';
import { readFlm } from '../../../runtime/format/reader.js';
import { Session } from '../../../runtime/session.js';
import { argmax } from '../../../hardware-in-loop/hil.js';
import { clientOn, convertModel, fashionPixels, faulty, inferAll, needBoard, readModel, startDevice } from './device.js';

const N = 40;

if (needBoard(t, 'host')) {
  const path = await convertModel(t, "lenet5");
  const data = fashionPixels(t, N);
  if (path && data) await suite(readModel(path), data);
}

async function suite(model: Uint8Array, data: { ds: { images: Float32Array; count: number }; u8: Uint8Array }): Promise<void> {
  const { u8 } = data;
  let reference: Map<number, InferResult> | undefined;

  const sameAsReference = (t: Test, got: Map<number, InferResult>) => {
    t.equal(got.size, N, 'every sample answered once');
    for (let i = 0; i < N; i++) {
      const a = got.get(i);
      const b = reference!.get(i)!;
      if (!a || Buffer.compare(Buffer.from(a.y.buffer), Buffer.from(b.y.buffer)) !== 0) {
        t.fail(`sample ${i}: output differs from the fault-free run`);
        return;
      }
    }
    t.pass('outputs equal the fault-free run, bit for bit');
  };

  await t.test('fault-free run agrees with the workstation runtime', async (t) => {
    const { serial } = await startDevice(t, 'host');
    const client = clientOn(serial);
    const up = await client.upload(model);
    t.equal(up.ready, true);
    t.same(up.out, [1, 10]);
    reference = await inferAll(client, u8, N);
    const session = Session.create(readFlm(model));
    let agree = 0;
    let maxErr = 0;
    for (let i = 0; i < N; i++) {
      const ref = session.runBatch({ shape: [1, 1, 28, 28], data: data.ds.images.subarray(i * 784, (i + 1) * 784) }).data;
      const y = reference.get(i)!.y;
      for (let k = 0; k < 10; k++) maxErr = Math.max(maxErr, Math.abs(ref[k]! - y[k]!));
      if (argmax(ref) === argmax(y)) agree++;
    }
    t.ok(maxErr < 1e-3, `logits within 1e-3 of the workstation (max error ${maxErr})`);
    t.ok(agree >= N - 1, `top-1 agreement ${agree}/${N}`);
    const stats = await client.stats();
    t.equal(stats.infers, N);
    t.equal(stats.bad_frames, 0);
    await client.close();
  });

  const cases: Array<[string, Record<string, number | string>, 'flipped' | 'dropped' | 'duplicated' | 'cut' | null]> = [
    ['flipped bits', { flip: 4e-4, seed: 11 }, 'flipped'],
    ['dropped bytes', { drop: 4e-4, seed: 12 }, 'dropped'],
    ['duplicated bytes', { dup: 4e-4, seed: 13 }, 'duplicated'],
    ['frames cut short', { cut: 0.08, seed: 14 }, 'cut'],
    ['everything at once, device to host only', { flip: 3e-4, drop: 3e-4, dup: 3e-4, cut: 0.05, dir: 'rx', seed: 15 }, null],
    ['everything at once, both directions', { flip: 3e-4, drop: 3e-4, dup: 3e-4, cut: 0.05, seed: 16 }, null],
  ];
  for (const [name, spec, kind] of cases) {
    await t.test(`${name}: every sample answered once, no wrong result, device responsive`, async (t) => {
      const { serial } = await startDevice(t, 'host');
      // The upload runs on the faulty line too, in small chunks so that some get through intact.
      const line = faulty(serial, spec);
      const client = clientOn(line, { maxChunk: 512 });
      const up = await client.upload(model);
      t.equal(up.ready, true, 'model uploaded through the faults');
      const got = await inferAll(client, u8, N);
      sameAsReference(t, got);
      const c = line.counts();
      const total = (k: keyof typeof c.tx) => c.tx[k] + c.rx[k];
      if (kind) t.ok(total(kind) > 0, `${kind}: ${total(kind)} injected`);
      t.ok(total('flipped') + total('dropped') + total('duplicated') + total('cut') > 0, 'faults were injected');
      t.ok(client.counters.resends > 0, `the client resent (${client.counters.resends} times)`);
      line.setEnabled(false);
      const h = await client.hello();
      t.equal(h.boot, 1, 'the device answers hello and did not reset');
      const s = await client.stats();
      t.ok(s.infers >= N, `device ran ${s.infers} inferences for ${N} samples (repeats are served from the stored answer: ${s.retries_served})`);
      await client.close();
    });
  }

  await t.test('device reset in the middle of a run, with a request in flight', async (t) => {
    const { serial, emu } = await startDevice(t, 'host');
    // Resets the device right after the bytes of the 10th and 25th infer requests left the host.
    let inferWrites = 0;
    let counting = false;
    const resetting: ByteTransport = {
      baud: undefined,
      onData: (l) => serial.onData(l),
      close: () => serial.close(),
      write: (b) => {
        serial.write(b);
        if (counting && b.length > 700 && (++inferWrites === 10 || inferWrites === 25)) emu.signal('SIGUSR1');
      },
    };
    const client = clientOn(resetting);
    await client.upload(model);
    counting = true;
    const got = await inferAll(client, u8, N);
    sameAsReference(t, got);
    const h = await client.hello();
    t.equal(h.boot, 3, 'the device reset twice (boot 1 -> 3) and answers hello');
    t.ok(h.model?.ready, 'its model store kept the model');
    await client.close();
  });

  await t.test('reset command: answered first, then the device reboots with its model', async (t) => {
    const { serial } = await startDevice(t, 'host');
    const client = clientOn(serial);
    await client.upload(model);
    const h = await client.reset();
    t.equal(h.boot, 2, 'hello shows the new boot');
    t.ok(h.model?.ready, 'the model store kept the model');
    const r = await client.infer(0, u8.subarray(0, 784));
    t.same([...r.y], [...reference!.get(0)!.y], 'and it answers as before');
    await client.close();
  });

  await t.test('device loses its model mid-run: the client notices, uploads again, retries', async (t) => {
    const { serial, emu } = await startDevice(t, 'host');
    const client = clientOn(serial);
    await client.upload(model);
    const got = await inferAll(client, u8, N, async (i) => {
      if (i !== 14) return;
      // Someone starts another upload (the store starts over), then the board resets.
      const other = new BridgeClient(serial, { timeoutMs: 150 });
      await other.hello();
      await t.rejects(other.upload(model.slice(0, 1000)), { code: 'MODEL_INVALID' }, 'a 1000-byte truncated model is refused');
      await other.close();
      emu.signal('SIGUSR1');
      await new Promise((r) => setTimeout(r, 100));
    });
    sameAsReference(t, got);
    t.ok(client.counters.reuploads >= 1, `re-uploaded ${client.counters.reuploads} time(s)`);
    t.ok(client.counters.resets >= 1, 'noticed the reset from hello.boot');
    t.ok((await client.hello()).model?.ready, 'device answers hello with the model ready');
    await client.close();
  });

  await t.test('malformed model upload: refused by prepare, device still responsive and usable', async (t) => {
    const { serial } = await startDevice(t, 'host');
    const client = clientOn(serial);
    // The header's msgpack mangled: every byte after the preamble's first 24 bytes, 64 of them, set to 0xC1 (never valid msgpack).
    const bad = model.slice();
    for (let i = 24; i < 24 + 64; i++) bad[i] = 0xc1;
    await t.rejects(client.upload(bad), { code: 'MODEL_INVALID' }, 'MODEL_INVALID');
    // Random bytes of a plausible size.
    const noise = new Uint8Array(4096).map((_, i) => (i * 2654435761) >>> 24);
    await t.rejects(client.upload(noise), { code: 'MODEL_INVALID' }, 'noise: MODEL_INVALID');
    const h = await client.hello();
    t.equal(h.boot, 1, 'device did not crash or reset');
    t.notOk(h.model?.ready, 'no model is ready');
    await t.rejects(client.infer(0, u8.subarray(0, 784)), { code: 'NO_MODEL' }, 'infer without a model: NO_MODEL');
    await client.upload(model);
    const r = await client.infer(0, u8.subarray(0, 784));
    t.same([...r.y], [...reference!.get(0)!.y], 'the good model then runs and answers as before');
    await client.close();
  });

  await t.test('oversized model upload: TOO_LARGE before any byte is sent', async (t) => {
    const { serial } = await startDevice(t, 'host', { args: ['--flash', '16384'] });
    const client = clientOn(serial);
    const h = await client.hello();
    t.equal(h.flash, 16384);
    const before = client.counters.requests;
    await t.rejects(client.upload(model), { code: 'TOO_LARGE' }, `a ${model.length}-byte model on a 16 KB store: TOO_LARGE`);
    t.equal(client.counters.requests - before, 1, 'only upload_begin was sent');
    const after = await client.hello();
    t.equal(after.boot, 1, 'device still answers hello');
    await client.close();
  });
}
