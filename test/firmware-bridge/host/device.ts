// Test support: a real firmware on an emulated board (never a fake device), and small models
// converted from the shared fixtures for it. Missing tools skip the test, or fail it under
// FACTORLITE_CI=1 (test/support/require.ts).
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Test } from 'tap';
import { BridgeClient, type ClientOptions, type InferResult } from '../../../firmware-bridge/host/client.js';
import { FaultyTransport, SerialTransport, type ByteTransport, type FaultSpec } from '../../../firmware-bridge/host/transport.js';
import { boardTools, startEmulator, which, type BoardKind, type Emulator, type StartOptions } from '../../../hardware-in-loop/emulators.js';
import { cli } from '../../support/cli.js';
import { FIXTURES, missing, needFashion } from '../../support/require.js';
import { loadDataset, limitDataset, type Dataset } from '../../../converter/data/datasets.js';
import { asU8Pixels } from '../../../hardware-in-loop/hil.js';
import { writeFlm } from '../../../converter/writer.js';
import type { Model, StoredTensor } from '../../../runtime/ir.js';

/** True when the board's toolchain and emulator are installed; otherwise skips (or fails under CI). */
export function needBoard(t: Test, board: BoardKind): boolean {
  for (const tool of ['make', ...boardTools(board)]) if (!which(tool)) return missing(t, `${tool} is not installed (needed for the ${board} board)`);
  if (board === 'avr' && !existsSync('/usr/include/simavr/sim_avr.h')) return missing(t, 'libsimavr-dev is not installed (needed for the avr board)');
  return true;
}

export interface Device {
  emu: Emulator;
  serial: SerialTransport;
}

/** Starts the board's emulator (building its firmware if needed) and opens its pty; both stop at teardown. */
export async function startDevice(t: Test, board: BoardKind, opts: StartOptions = {}): Promise<Device> {
  const emu = await startEmulator(board, { log: (l) => t.comment(l), ...opts });
  const serial = await SerialTransport.open(emu.pty);
  t.teardown(async () => {
    await serial.close();
    await emu.stop();
  });
  return { emu, serial };
}

/**
 * Converts a fixture with fixed ranks (no rank search: a few seconds) into the test's folder.
 * LeNet-5 with int8 factors for the 32-bit boards; FC-2 for the AVR.
 */
export async function convertModel(t: Test, which: 'lenet5' | 'fc2', extra: string[] = []): Promise<string | undefined> {
  const onnx = join(FIXTURES, which === 'lenet5' ? 'lenet5_fashion.onnx' : 'mlp_fashion.onnx');
  if (!existsSync(onnx)) {
    missing(t, `fixture ${onnx} not found`);
    return undefined;
  }
  const dir = t.testdir();
  const ranks = join(dir, `${which}.ranks.json`);
  writeFileSync(ranks, JSON.stringify(which === 'lenet5' ? { '/c2/Conv': 16, '/f1/Gemm': 8 } : { '/f1/Gemm': 8 }));
  const out = join(dir, `${which}.flm`);
  const r = cli(['convert', onnx, '-o', out, '--ranks', ranks, '--quant', 'int8', ...extra, '--json']);
  if (r.status !== 0) throw new Error(`convert ${which} failed: ${r.stderr.trim().split('\n').at(-1)}`);
  return out;
}

/** The first `n` Fashion-MNIST test images as u8 pixels, or undefined (skipped) without the data. */
export function fashionPixels(t: Test, n: number): { ds: Dataset; u8: Uint8Array } | undefined {
  if (!needFashion(t)) return undefined;
  const ds = limitDataset(loadDataset('fashion-mnist', 'test'), n);
  const u8 = asU8Pixels(ds.images);
  if (!u8) throw new Error('Fashion-MNIST pixels are not k/255');
  return { ds, u8 };
}

/** Runs samples 0..n-1 through `client`; returns each answer by id. */
export async function inferAll(client: BridgeClient, u8: Uint8Array, n: number, onSample?: (i: number) => void | Promise<void>): Promise<Map<number, InferResult>> {
  const per = u8.length / n;
  const got = new Map<number, InferResult>();
  for (let i = 0; i < n; i++) {
    const r = await client.infer(i, u8.subarray(i * per, (i + 1) * per));
    if (got.has(r.id)) throw new Error(`sample ${r.id} answered twice`);
    got.set(r.id, r);
    await onSample?.(i);
  }
  return got;
}

export function faulty(serial: ByteTransport, spec: Partial<FaultSpec>): FaultyTransport {
  return new FaultyTransport(serial, { flip: 0, drop: 0, dup: 0, cut: 0, dir: 'both', seed: 1, ...spec });
}

export function clientOn(transport: ByteTransport, opts: ClientOptions = {}): BridgeClient {
  return new BridgeClient(transport, { timeoutMs: 150, retries: 20, firstInferTimeoutMs: 3000, ...opts });
}

export function readModel(path: string): Uint8Array {
  return new Uint8Array(readFileSync(path));
}


/**
 * A factorised MLP small enough for the ATmega2560's internal 8 KB (784 -> svd rank 6 -> 48 ->
 * relu -> 10, int8 factors with per-row scales), with seeded random weights: the HIL check is the
 * device against the workstation on the same file, which needs no trained weights. Written with
 * the converter's writer, so it carries the same "mcu" plan a converted model does.
 */
export function smallMlp(dir: string): string {
  let s = 20261123;
  const rnd = () => {
    s = (Math.imul(s ^ (s >>> 15), 0x2c1b3c6d) + 0x297a2d39) >>> 0;
    return s / 2 ** 32;
  };
  const i8 = (name: string, rows: number, cols: number, scale: number): StoredTensor => ({
    name, dtype: 'i8', shape: [rows, cols],
    data: Int8Array.from({ length: rows * cols }, () => Math.round((2 * rnd() - 1) * 127)),
    quant: { scale: Float32Array.from({ length: rows }, () => scale * (0.5 + rnd())), axis: 0 },
  });
  const f32 = (name: string, n: number): StoredTensor => ({ name, dtype: 'f32', shape: [n], data: Float32Array.from({ length: n }, () => 0.2 * (2 * rnd() - 1)) });
  const tensors = [i8('h.u', 48, 6, 0.03), i8('h.v', 6, 784, 0.0006), f32('h.bias', 48), i8('out.weight', 10, 48, 0.02), f32('out.bias', 10)];
  const model: Model = {
    graph: {
      inputs: [{ name: 'image', shape: [1, 1, 28, 28] }],
      outputs: ['logits'],
      nodes: [
        { name: 'flat', op: 'flatten', inputs: ['image'], outputs: ['x'], attrs: { axis: 1 }, weights: {} },
        { name: 'h', op: 'svd_dense', inputs: ['x'], outputs: ['h'], attrs: {}, weights: { u: 'h.u', v: 'h.v', bias: 'h.bias' } },
        { name: 'act', op: 'relu', inputs: ['h'], outputs: ['a'], attrs: {}, weights: {} },
        { name: 'out', op: 'dense', inputs: ['a'], outputs: ['logits'], attrs: {}, weights: { weight: 'out.weight', bias: 'out.bias' } },
      ],
    },
    tensors: new Map(tensors.map((x) => [x.name, x])),
    metadata: { 'source.model': 'hil-test-small-mlp' },
  };
  const out = join(dir, 'small-mlp.flm');
  writeFileSync(out, writeFlm(model));
  return out;
}
