// What a relative output error means for a model whose outputs are not class scores: the figure
// convert's check reports for such models (||y - y_source|| / ||y_source|| on the held-out
// calibration samples) against the task's own quality, on the two trained models of
// scripts/train_regressors.py (an anomaly-detection autoencoder of MLPerf Tiny's AD shape, scored by
// ROC AUC; a rotation-angle CNN regressor, scored by R^2), compressed by several methods at several
// ratios. The threshold of converter/check.ts (WARN_OUTPUT_ERROR) is chosen from this table: the
// smallest output error at which a result lost more than TOLERANCE of its task metric.
//
//   /usr/bin/python3 scripts/train_regressors.py bench/out/regress
//   node --import tsx bench/outputError.ts [--dir bench/out/regress] [--ratios 1.5,2,3,5,8,12,20]
//        [--methods svd,tt,tucker] [--readme README.md | --no-readme] [--report-only]
//
// --report-only rewrites the tables from bench/results/outputError.json (no compression), e.g. after
// the threshold changed.
//
// Calibration as `convert --calib x.npy`: the first 256 of {model}_calib.npy for the search, the
// next 256 held out for the check. Writes bench/results/outputError.{json,md} and the README section
// <!-- bench:outputError:start --> ... <!-- bench:outputError:end -->.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { compressModel, type Method } from '../converter/compress.js';
import { WARN_OUTPUT_ERROR } from '../converter/check.js';
import { parseNpy } from '../converter/data/npy.js';
import { importOnnxFile } from '../converter/onnx/index.js';
import { initKernels } from '../runtime/kernels/backend.js';
import type { Model, Tensor } from '../runtime/ir.js';
import { Session } from '../runtime/session.js';
import { writeBenchResults } from './readme.js';

const ROOT = dirname(dirname(fileURLToPath(import.meta.url)));
function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1]! : fallback;
}
const DIR = resolve(arg('dir', join(ROOT, 'bench', 'out', 'regress')));
const RATIOS = arg('ratios', '1.5,2,3,5,8,12,20').split(',').filter(Boolean).map(Number);
const METHODS = arg('methods', 'svd,tt,tucker').split(',').filter(Boolean) as Method[];
const README = process.argv.includes('--no-readme') ? null : resolve(arg('readme', join(ROOT, 'README.md')));
/** A result that lost more than this of its task metric (AUC or R^2, absolute) counts as damaged. */
const TOLERANCE = 0.02;
/** Thresholds the table weighs: results damaged without a warning, and warnings for nothing. */
const CANDIDATES = [0.05, 0.1, 0.15, 0.2, 0.3, 0.5];
const REPORT_ONLY = process.argv.includes('--report-only');
const log = (s: string) => process.stderr.write(`${s}\n`);

function npy(name: string): Tensor {
  const a = parseNpy(readFileSync(join(DIR, name)), name);
  return { shape: a.shape, data: a.data };
}

function run(model: Model, x: Tensor): Float32Array {
  const s = Session.create(model);
  try {
    return s.runBatch(x).data;
  } finally {
    s.dispose();
  }
}

/** ROC AUC of `scores` for labels 1 (positive) against 0, by ranks (ties averaged). */
function auc(scores: Float64Array, labels: Float32Array): number {
  const idx = [...scores.keys()].sort((a, b) => scores[a]! - scores[b]!);
  const rank = new Float64Array(scores.length);
  for (let i = 0; i < idx.length;) {
    let j = i;
    while (j + 1 < idx.length && scores[idx[j + 1]!] === scores[idx[i]!]) j++;
    for (let k = i; k <= j; k++) rank[idx[k]!] = (i + j) / 2 + 1;
    i = j + 1;
  }
  let pos = 0;
  let sum = 0;
  for (let i = 0; i < labels.length; i++) if (labels[i] === 1) { pos++; sum += rank[i]!; }
  const neg = labels.length - pos;
  return (sum - (pos * (pos + 1)) / 2) / (pos * neg);
}

interface Task {
  name: string;
  metric: 'AUC' | 'R^2';
  quality(model: Model): number;
}

function tasks(): Task[] {
  const aeX = npy('ae_x.npy');
  const aeY = npy('ae_y.npy').data;
  const rotX = npy('rot_x.npy');
  const rotY = npy('rot_y.npy').data;
  return [
    {
      name: 'ae', metric: 'AUC',
      quality: (m) => {
        // Anomaly score: the reconstruction MSE of each image.
        const y = run(m, aeX);
        const d = aeX.shape[1]!;
        const s = new Float64Array(aeX.shape[0]!);
        for (let i = 0; i < s.length; i++) {
          let e = 0;
          for (let j = 0; j < d; j++) e += (y[i * d + j]! - aeX.data[i * d + j]!) ** 2;
          s[i] = e / d;
        }
        return auc(s, aeY);
      },
    },
    {
      name: 'rot', metric: 'R^2',
      quality: (m) => {
        const y = run(m, rotX);
        let mean = 0;
        for (const v of rotY) mean += v / rotY.length;
        let res = 0;
        let tot = 0;
        for (let i = 0; i < rotY.length; i++) {
          res += (y[i]! - rotY[i]!) ** 2;
          tot += (rotY[i]! - mean) ** 2;
        }
        return 1 - res / tot;
      },
    },
  ];
}

interface Row {
  model: string;
  metric: string;
  method: string;
  ratio: number;
  achieved?: number;
  outputError?: number;
  quality?: number;
  loss?: number;
  corrected?: boolean;
  error?: string;
}

async function main(): Promise<void> {
  if (!existsSync(join(DIR, 'summary.json'))) {
    throw new Error(`${DIR} has no models: run /usr/bin/python3 scripts/train_regressors.py ${DIR}`);
  }
  await initKernels();
  let rows: Row[] = [];
  let dense: Record<string, number> = {};
  let cmd = `node --import tsx bench/outputError.ts ${process.argv.slice(2).join(' ')}`.trim();
  if (REPORT_ONLY) {
    const j = JSON.parse(readFileSync(join(ROOT, 'bench', 'results', 'outputError.json'), 'utf8')) as { command: string; dense: Record<string, number>; rows: Row[] };
    ({ rows, dense } = j);
    cmd = j.command;
  }
  for (const task of REPORT_ONLY ? [] : tasks()) {
    const model = importOnnxFile(join(DIR, `${task.name}.onnx`));
    const cal = npy(`${task.name}_calib.npy`);
    const per = cal.data.length / cal.shape[0]!;
    const calibration: Tensor = { shape: [256, ...cal.shape.slice(1)], data: cal.data.subarray(0, 256 * per) };
    const holdout: Tensor = { shape: [256, ...cal.shape.slice(1)], data: cal.data.subarray(256 * per, 512 * per) };
    dense[task.name] = task.quality(model);
    log(`${task.name}: dense ${task.metric} ${dense[task.name]!.toFixed(4)}`);
    for (const method of METHODS) {
      for (const ratio of RATIOS) {
        try {
          const { model: out, report } = compressModel(model, { method, ratio, calibration, holdout });
          const q = task.quality(out);
          const row: Row = {
            model: task.name, metric: task.metric, method, ratio, achieved: report.ratio, outputError: report.check!.outputError,
            quality: q, loss: dense[task.name]! - q, corrected: report.correction?.kept === true,
          };
          rows.push(row);
          log(`${task.name} ${method} ${ratio}x: output error ${row.outputError!.toFixed(4)}, ${task.metric} ${q.toFixed(4)}`);
        } catch (e) {
          rows.push({ model: task.name, metric: task.metric, method, ratio, error: (e as Error).message });
          log(`${task.name} ${method} ${ratio}x: ${(e as Error).message}`);
        }
      }
    }
  }
  const ok = rows.filter((r) => r.outputError !== undefined).sort((a, b) => a.outputError! - b.outputError!);
  const damaged = ok.filter((r) => r.loss! > TOLERANCE);
  const firstDamaged = damaged.length ? damaged[0]!.outputError! : null;
  // Undamaged results above the smallest damaged error: a warning there would be a false alarm.
  const falseAlarms = (th: number) => ok.filter((r) => r.outputError! > th && r.loss! <= TOLERANCE).length;
  const missed = (th: number) => ok.filter((r) => r.outputError! <= th && r.loss! > TOLERANCE).length;
  const f4 = (x: number | undefined) => (x === undefined ? '–' : x.toFixed(4));
  const lines = [
    `Made by \`/usr/bin/python3 scripts/train_regressors.py bench/out/regress\` then \`${cmd}\`. Models: ae (autoencoder of MLPerf Tiny's AD shape on Fashion-MNIST, normal classes 0-7; task: anomaly detection of classes 8 and 9 by reconstruction MSE, ROC AUC on 1000 test images), rot (CNN regressing the rotation angle of Fashion-MNIST images; R^2 on 1000 rotated test images). Dense: ${Object.entries(dense).map(([k, v]) => `${k} ${v.toFixed(4)}`).join(', ')}. "output error": ||y − y_source|| / ||y_source|| on 256 held-out calibration samples, the figure convert's check reports (after the output correction when convert kept it). "loss": dense metric − compressed metric. Sorted by output error.`,
    '',
    '| model | method | ratio asked | ratio | output error | metric | dense | compressed | loss | damaged (loss > ' + TOLERANCE + ') |',
    '|---|---|---|---|---|---|---|---|---|---|',
    ...ok.map((r) => `| ${r.model} | ${r.method}${r.corrected ? ' + correction' : ''} | ${r.ratio} | ${r.achieved!.toFixed(2)} | ${f4(r.outputError)} | ${r.metric} | ${f4(dense[r.model])} | ${f4(r.quality)} | ${f4(r.loss)} | ${r.loss! > TOLERANCE ? 'yes' : 'no'} |`),
    ...rows.filter((r) => r.error).map((r) => `| ${r.model} | ${r.method} | ${r.ratio} | – | failed: ${r.error!.slice(0, 80)} | | | | | |`),
    '',
    `Thresholds (of ${ok.length} results, ${damaged.length} damaged):`,
    '',
    '| threshold | damaged results below it (no warning) | undamaged results above it (warning for nothing) |',
    '|---|---|---|',
    ...[...new Set([...CANDIDATES, WARN_OUTPUT_ERROR])].sort((a, b) => a - b).map((th) => `| ${th}${th === WARN_OUTPUT_ERROR ? ' (convert\'s WARN_OUTPUT_ERROR)' : ''} | ${missed(th)} | ${falseAlarms(th)} |`),
    '',
    firstDamaged === null
      ? `No result lost more than ${TOLERANCE} of its metric.`
      : `Smallest output error of a damaged result: ${firstDamaged.toFixed(4)} (${damaged[0]!.model} ${damaged[0]!.method} ${damaged[0]!.ratio}x). ` +
        `With convert's threshold WARN_OUTPUT_ERROR = ${WARN_OUTPUT_ERROR}: ${missed(WARN_OUTPUT_ERROR)} damaged results below it (no warning), ${falseAlarms(WARN_OUTPUT_ERROR)} undamaged results above it (a warning for nothing), of ${ok.length}.`,
  ];
  writeBenchResults(join(ROOT, 'bench', 'results'), 'outputError', { command: cmd, tolerance: TOLERANCE, threshold: WARN_OUTPUT_ERROR, dense, rows }, lines.join('\n'), README);
}

await main();
