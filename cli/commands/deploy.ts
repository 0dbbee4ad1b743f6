import { readFileSync } from 'node:fs';
import { deploy } from '../../targets/deploy.js';
import { getTarget } from '../../targets/profiles.js';
import { CliError } from '../errors.js';
import { isFlm, readModelBytes } from '../modelFile.js';
import { formatBytes } from '../table.js';
import { VERSION } from '../version.js';
import { integerFlag } from '../flags.js';

export interface DeployArgs {
  target: string;
  host: string;
  key?: string;
  port?: string;
  node?: string;
  dir?: string;
  kernels?: string;
  hil?: boolean;
  data?: string;
  json?: boolean;
}

export async function deployCommand(path: string, a: DeployArgs): Promise<void> {
  getTarget(a.target);
  if (a.hil) throw new CliError('BAD_ARGUMENT', '--hil is not built yet: deploy runs the smoke inference only (see README, "Deploy to a Pi or a Jetson")');
  const port = integerFlag('--port', a.port, 1, '1..65535', 65535) ?? 22;
  if (a.kernels !== undefined && a.kernels !== 'wasm-simd' && a.kernels !== 'reference') throw new CliError('BAD_ARGUMENT', `--kernels ${a.kernels}: expected wasm-simd or reference`);
  const keyPath = a.key ?? `${process.env['HOME'] ?? ''}/.ssh/id_ed25519`;
  let privateKey: Buffer;
  try {
    privateKey = readFileSync(keyPath);
  } catch {
    throw new CliError('BAD_INPUT', `key file ${keyPath} cannot be read${a.key ? '' : ' (pass --key FILE)'}`);
  }
  const bytes = readModelBytes(path);
  if (!isFlm(bytes)) throw new CliError('NOT_A_MODEL', `${path} is not a .flm file`);
  const r = await deploy(bytes, {
    target: a.target, host: a.host, port, privateKey, version: VERSION,
    ...(a.node ? { remoteNode: a.node } : {}), ...(a.dir ? { remoteDir: a.dir } : {}),
    ...(a.kernels ? { kernels: a.kernels as 'wasm-simd' | 'reference' } : {}),
    log: a.json ? undefined : (l) => process.stderr.write(`${l}\n`),
  });
  if (a.json) {
    process.stdout.write(`${JSON.stringify(r)}\n`);
    return;
  }
  process.stdout.write(
    `deployed to ${r.host}:${r.remote.dir} (Node ${r.remote.node} ${r.remote.arch}), ${r.bundle.files} files, ${formatBytes(r.bundle.bytes)} in ${r.uploadSeconds.toFixed(2)} s\n` +
      `smoke inference (${r.smoke.kernels}): worst relative difference ${r.smoke.worst.toExponential(2)} (tolerance ${r.smoke.tolerance}), ${r.smoke.bitExact}/${r.smoke.count} bit for bit; start-up ${r.smoke.startupMs.toFixed(1)} ms, peak RSS ${formatBytes(r.smoke.peakRssBytes)}\n` +
      `run it there: node ${r.remote.dir}/run.mjs --input x.npy [--output y.npy]\n`,
  );
}
