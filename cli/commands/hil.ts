// factorlite hil --model m.flm|m.tflite (--port <path> [--baud B] | --emulate host|cortex-m4|cortex-m4-f4|cortex-m4-l4r5|avr|avr-xmem) --data <set>
//                [--limit N] [--faults <spec>] [--out <report>] [--json]
// Uploads the model to a device (a real board on --port, or an emulator this command starts and
// stops), streams the test set through it, and compares every answer with the workstation runtime.
// A .tflite is imported and encoded as a .flm in memory (dense, as the file is): the device runs .flm.
import { fitDataToModel, limitDataset, loadData } from '../../converter/data/datasets.js';
import { INT8_FULL_KEY } from '../../runtime/int8full/params.js';
import { SerialTransport, FaultyTransport, parseFaultSpec, type ByteTransport } from '../../firmware-bridge/host/transport.js';
import { isBoard, startEmulator, BOARDS, type Emulator, type BoardKind } from '../../hardware-in-loop/emulators.js';
import { asU8Pixels, runHil, type HilReport } from '../../hardware-in-loop/hil.js';
import { reportSummary, reportTable, writeReportJson, writeReportPng } from '../../hardware-in-loop/report.js';
import { CliError } from '../errors.js';
import { checkOutputs } from '../outputs.js';
import { isFlm, loadModel, readFlmAt, readModelBytes } from '../modelFile.js';
import { isTflite, withNchwInputs } from '../../converter/tflite/index.js';
import { writeFlm } from '../../converter/writer.js';
import { log, progress } from '../progress.js';
import { parseLimit } from './evalCmd.js';
import { integerFlag, numberFlag, positiveIntFlag } from '../flags.js';

export interface HilArgs {
  model: string;
  port?: string;
  baud?: string;
  emulate?: string;
  data: string;
  labels?: string;
  targets?: string;
  tolerance?: string;
  limit?: string;
  faults?: string;
  out?: string;
  timeout?: string;
  retries?: string;
  window?: string;
  json?: boolean;
  progress?: boolean;
}

/** The Cortex-M4 port's builds, smallest first: what `--emulate cortex-m4` chooses from. */
export const CORTEX_M4_BUILDS: readonly BoardKind[] = ['cortex-m4', 'cortex-m4-l4r5'];
/** The default Cortex-M4 build's frame buffer and model store (ports/cortex-m4/port_config.h). */
const DEFAULT_BUILD = { maxFrame: 4096, flash: 256 * 1024 };
/** Whether the samples go to the device as u8 pixels (then the frame holds a byte per value). */
const asU8Input = (ds: { images: Float32Array }): boolean => asU8Pixels(ds.images) !== undefined;
/** Names that pick one build exactly: cortex-m4-f4 is the default build (sized like an STM32F4) alone. */
const EXACT_BUILDS: Record<string, BoardKind> = { 'cortex-m4-f4': 'cortex-m4' };

export async function hilCommand(a: HilArgs): Promise<HilReport> {
  if (!a.port === !a.emulate) throw new CliError('BAD_ARGUMENT', 'give exactly one of --port <path> and --emulate <board>');
  if (a.emulate !== undefined && !isBoard(a.emulate) && !(a.emulate in EXACT_BUILDS)) throw new CliError('BAD_ARGUMENT', `--emulate ${a.emulate}: expected one of ${[...BOARDS, ...Object.keys(EXACT_BUILDS)].join(', ')}`);
  const baud = positiveIntFlag('--baud', a.baud);
  const limit = parseLimit(a.limit);
  const timeoutMs = positiveIntFlag('--timeout', a.timeout);
  const retries = integerFlag('--retries', a.retries, 0, 'a non-negative integer');
  const window = positiveIntFlag('--window', a.window);
  const faults = a.faults !== undefined ? parseFaultSpec(a.faults) : undefined;
  const reportStem = a.out?.replace(/\.(json|png)$/i, '');
  if (reportStem !== undefined) checkOutputs({ inputs: [a.model, a.data], outputs: [`${reportStem}.json`, `${reportStem}.png`] });
  let bytes = readModelBytes(a.model);
  if (isTflite(bytes)) {
    // The board takes .flm: the TFLite model is imported (typed errors as for convert) and encoded
    // here, its NHWC input re-declared NCHW (the firmware has no transpose kernel).
    bytes = writeFlm(withNchwInputs(loadModel(a.model).model));
    log(`${a.model}: TFLite model imported and encoded in memory as a .flm of ${bytes.length} B (dense, no factorisation; input NCHW) for the device`);
  }
  if (!isFlm(bytes)) throw new CliError('NOT_A_MODEL', `${a.model} is not a .flm file or a .tflite (hil uploads .flm models; convert an ONNX model first)`);
  const tolerance = numberFlag('--tolerance', a.tolerance, { ok: (x) => x >= 0, what: 'a non-negative number' });
  // The data is checked against the model (shape, classes, labels or targets) before any device starts.
  const src = limitDataset(loadData(a.data, 'test', { ...(a.labels ? { labels: a.labels } : {}), ...(a.targets ? { targets: a.targets } : {}) }), limit);
  const fit = fitDataToModel(src, readFlmAt(a.model, bytes));
  const { labels: _l, answers: _a, ...inputs } = fit.data;
  const ds = { ...inputs, ...(fit.mode === 'classes' ? { labels: fit.labels! } : {}) };
  // A 'values' run compares the device with the workstation, and both with the targets (an autoencoder's are its inputs).
  const targets = fit.targets ? { data: fit.targets, source: fit.targetSource === 'inputs' ? 'inputs (reconstruction)' : fit.targetSource! } : undefined;
  const show = a.progress !== false;

  // --emulate cortex-m4 takes the smallest build of the Cortex-M4 port whose device accepts the
  // model (the device's own TOO_LARGE decides: flash, arena, frame and response sizes); a build
  // named exactly (cortex-m4-f4 for the default one, cortex-m4-l4r5) is the only one tried.
  // --emulate avr runs an int8-full model on the ATmega2560 image that has the int8-full path
  // (avr-int8: the default image leaves that code out to keep its model store).
  const model = readFlmAt(a.model, bytes);
  const int8Full = model.metadata?.[INT8_FULL_KEY] !== undefined;
  const builds: BoardKind[] = a.emulate === 'cortex-m4' ? [...CORTEX_M4_BUILDS]
    : a.emulate === 'avr' && int8Full ? ['avr-int8']
      : a.emulate ? [EXACT_BUILDS[a.emulate] ?? (a.emulate as BoardKind)] : [];
  if (builds[0] === 'avr-int8' && a.emulate === 'avr') log('hil: an int8-full model: the ATmega2560 image with the int8-full path (firmware-int8.elf, make avr-int8)');
  const tried: Array<{ board: BoardKind; why: string }> = [];
  let attempt = 0;
  const inBytes = 4 * (model.graph.inputs[0]?.shape.slice(1).reduce((p, d) => p * d, 1) ?? 0);
  for (;;) {
    const board = builds[attempt];
    // The default build's frame buffer and model store are known: a model whose f32 input frame or
    // file cannot fit them goes to the larger build without an upload the device must refuse.
    const skip = a.emulate === 'cortex-m4' && board === 'cortex-m4' && builds[attempt + 1]
      ? inBytes > DEFAULT_BUILD.maxFrame && !asU8Input(ds) ? `model input of ${inBytes} B (f32) larger than the frame buffer (${DEFAULT_BUILD.maxFrame} B)`
        : bytes.length > DEFAULT_BUILD.flash ? `model of ${bytes.length} bytes > flash ${DEFAULT_BUILD.flash}` : undefined
      : undefined;
    if (board && skip) {
      tried.push({ board, why: `TOO_LARGE: ${skip}` });
      log(`hil: the ${board} build cannot take the model (${skip}); using the larger ${builds[attempt + 1]} build`);
      attempt++;
      continue;
    }
    const { report, bars } = await runOn(board);
    bars();
    const next = builds[attempt + 1];
    if (board && next && report.results === null && report.refusal?.code === 'TOO_LARGE') {
      tried.push({ board, why: report.refusal.message });
      log(`hil: the ${board} build refused the model (${report.refusal.message}); trying the larger ${next} build`);
      attempt++;
      continue;
    }
    if (report.refusal?.code === 'TOO_LARGE' && /arena/.test(report.refusal.message) && report.device.arena > 0) {
      // A factorised form's scratch can be kept within the device when converting.
      log(`hil: the device's arena is ${report.device.arena} B; convert with --arena ${Math.max(0, report.device.arena - 16 * 1024)} (its arena less 16 KB for the firmware's tables) to keep forms that fit`);
    }
    if (board && a.emulate === 'cortex-m4') {
      report.emulated = { asked: a.emulate, board, tried };
      if (report.refusal) log(`hil: the ${board} build, the largest Cortex-M4 build, refused the model too`);
      else log(`hil: ran on the ${board} build${tried.length ? ` (the smallest Cortex-M4 build that takes the model; refused by ${tried.map((x) => x.board).join(', ')})` : ''}`);
    }
    if (a.out) {
      const stem = a.out.replace(/\.(json|png)$/i, '');
      await writeReportJson(`${stem}.json`, report);
      await writeReportPng(`${stem}.png`, report);
      log(`report: ${stem}.json, ${stem}.png`);
    }
    if (a.json) process.stdout.write(`${JSON.stringify({ ...reportSummary(report), ...(a.out ? { files: [`${a.out.replace(/\.(json|png)$/i, '')}.json`, `${a.out.replace(/\.(json|png)$/i, '')}.png`] } : {}) })}\n`);
    else process.stdout.write(`${reportTable(report)}\n`);
    return report;
  }

  /** One run on a fresh emulator of `board` (or on --port when board is undefined). */
  async function runOn(board: BoardKind | undefined): Promise<{ report: HilReport; bars: () => void }> {
    let emulator: Emulator | undefined;
    let serial: SerialTransport | undefined;
    let finished = false;
    try {
      let path = a.port!;
      if (board) {
        emulator = await startEmulator(board, { log });
        path = emulator.pty;
        // An emulator that dies mid-run says why on its output; show that beside the timeouts.
        const emu = emulator;
        void emu.exited.then((code) => {
          if (!finished) log(`${emu.board} emulator exited (${code}) during the run: ${emu.output().trim().split('\n').at(-1) ?? ''}`);
        });
      }
      // A real port has its own line rate; an emulator's pty is paced to --baud when one is given.
      serial = await SerialTransport.open(path, { baud: baud ?? 115200, pace: Boolean(board && baud), realLine: Boolean(a.port) });
      let transport: ByteTransport = serial;
      let faulty: FaultyTransport | undefined;
      if (faults) transport = faulty = new FaultyTransport(serial, faults);
      const upBar = progress('upload', bytes.length, show);
      const inferBar = progress('infer', ds.count, show);
      let phase: 'upload' | 'infer' = 'upload';
      const report = await runHil({
        modelBytes: bytes,
        modelPath: a.model,
        transport,
        data: ds,
        ...(targets ? { targets } : {}),
        ...(tolerance !== undefined ? { tolerance } : {}),
        board,
        // --timeout also bounds the first inference from below (its default 5 s is too short for a
        // 110 KB f32 input through an emulated UART on a loaded machine: the resends then queue up).
        client: { timeoutMs, ...(timeoutMs !== undefined ? { firstInferTimeoutMs: Math.max(5000, timeoutMs) } : {}), retries, window },
        faults: faulty ? { transport: faulty, spec: a.faults! } : undefined,
        log,
        onProgress: (p, done, total) => {
          if (p === 'infer' && phase === 'upload') {
            upBar.stop();
            phase = 'infer';
          }
          (p === 'upload' ? upBar : inferBar).update(done, p === 'upload' ? `${done}/${total} B` : '');
        },
      });
      return {
        report,
        bars: () => {
          upBar.stop();
          inferBar.stop();
        },
      };
    } finally {
      finished = true;
      await serial?.close();
      await emulator?.stop();
    }
  }
}
