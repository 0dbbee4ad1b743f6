// factorlite report: sweep folders, .flm files, hil and explain results -> one self-contained HTML page.
import { statSync } from 'node:fs';
import { writeFileAtomic } from '../../converter/atomicWrite.js';
import { buildReport } from '../../report/html.js';
import { readInputs } from '../../report/inputs.js';
import { CliError } from '../errors.js';

export interface ReportArgs { output: string; point?: string; hil?: string[]; explain?: string[]; json?: boolean }

export async function reportCommand(inputs: string[], a: ReportArgs): Promise<void> {
  if (!a.output.endsWith('.html')) throw new CliError('BAD_ARGUMENT', `-o ${a.output}: the report is an .html file`);
  const data = readInputs(inputs, a.hil ?? [], a.explain ?? []);
  const html = await buildReport(data, a.point ? { point: a.point } : {});
  await writeFileAtomic(a.output, html);
  const out = {
    output: a.output, bytes: statSync(a.output).size,
    sweeps: data.sweeps.map((s) => ({ dir: s.dir, points: s.rows.length })), models: data.models.length, hil: data.hil.length, explain: data.explain.length,
  };
  if (a.json) process.stdout.write(`${JSON.stringify(out)}\n`);
  else process.stdout.write(`${a.output}: ${out.bytes} bytes, ${out.sweeps.reduce((s, x) => s + x.points, 0)} sweep points, ${out.models} model(s), ${out.hil} hil, ${out.explain} explain\n`);
}
