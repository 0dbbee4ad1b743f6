import { writeBundle } from '../../targets/bundle.js';
import { getTarget } from '../../targets/profiles.js';
import { isFlm, readModelBytes } from '../modelFile.js';
import { CliError } from '../errors.js';
import { formatBytes } from '../table.js';
import { VERSION } from '../version.js';
import { numberFlag } from '../flags.js';
import { checkOutputFolder } from '../outputs.js';

export async function bundleCommand(path: string, a: { target: string; output: string; margin?: string; force?: boolean; json?: boolean }): Promise<void> {
  const margin = numberFlag('--margin', a.margin, { ok: (x) => x >= 0 && x < 1, what: 'a fraction in [0, 1)' });
  getTarget(a.target);
  checkOutputFolder({ inputs: [path], folder: a.output });
  const bytes = readModelBytes(path);
  if (!isFlm(bytes)) throw new CliError('NOT_A_MODEL', `${path} is not a .flm file (convert it first: factorlite convert ${path} -o m.flm --target ${a.target})`);
  const r = await writeBundle(bytes, a.target, a.output, { version: VERSION, ...(margin !== undefined ? { margin } : {}), ...(a.force ? { force: true } : {}) });
  if (a.json) {
    process.stdout.write(`${JSON.stringify(r)}\n`);
    return;
  }
  process.stdout.write(
    `bundle for ${r.target} in ${r.dir}: ${r.files} files, ${formatBytes(r.bytes)} (runtime ${formatBytes(r.runtimeBytes)}, model ${formatBytes(r.modelBytes)})\n` +
      `predicted latency on ${r.target}: ${r.fit.latencyMs.toFixed(3)} ms per sample (${r.fit.latencySource})\n` +
      `run it there: node ${r.dir}/run.mjs --input x.npy [--output y.npy]\n`,
  );
}
