// factorlite deploy: copy a bundle to a Pi or a Jetson over SSH (npm ssh2), check the device's
// Node (version and architecture), run a smoke inference there and compare it with this machine.
//
//   workstation                                   device (user@host)
//   writeBundle -> tmp/bundle  ──sftp──▶  ~/factorlite/<target>-<sha8>/{run.mjs, manifest.json, model.flm, runtime/}
//   Session (same kernels)                        node run.mjs --input smoke.npy --json
//        └──────────── compare logits, |d| <= 1e-5 x max(1, |y|) ───────────┘
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, posix } from 'node:path';
import type { Client, ClientChannel, SFTPWrapper } from 'ssh2';
import { readFlm } from '../runtime/format/reader.js';
import type { Tensor } from '../runtime/ir.js';
import { referenceBackend, selectBackend } from '../runtime/kernels/backend.js';
import { importOptional } from '../runtime/optionalPackage.js';
import { mulberry32 } from '../shared/prng.js';
import { Session } from '../runtime/session.js';
import { writeBundle, type BundleManifest, type BundleReport } from './bundle.js';
import { getTarget, TargetError } from './profiles.js';

/** Relative tolerance of the smoke comparison (the kernels are deterministic WebAssembly or the same TypeScript). */
export const SMOKE_TOLERANCE = 1e-5;

export class DeployError extends Error {
  constructor(
    readonly code: 'BAD_HOST' | 'SSH_FAILED' | 'NO_NODE' | 'WRONG_NODE' | 'REMOTE_FAILED' | 'MISMATCH',
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'DeployError';
  }
}

export interface DeployOptions {
  target: string;
  /** user@host (user defaults to $USER). */
  host: string;
  port?: number;
  /** Private key (OpenSSH or PEM). */
  privateKey: Buffer;
  passphrase?: string;
  /** The node command on the device (default: node from its PATH). */
  remoteNode?: string;
  /** Folder on the device (default: factorlite/<target>-<first 8 hex of the model's SHA-256>, relative to the login folder). */
  remoteDir?: string;
  kernels?: 'wasm-simd' | 'reference';
  version: string;
  margin?: number;
  log?: (line: string) => void;
}

export interface DeployReport {
  host: string;
  port: number;
  hostKeySha256: string;
  target: string;
  remote: { node: string; arch: string; dir: string };
  bundle: Omit<BundleReport, 'dir' | 'fit'> & { latencyMs: number };
  uploadSeconds: number;
  smoke: { kernels: string; shape: number[]; worst: number; tolerance: number; bitExact: number; count: number; startupMs: number; peakRssBytes: number };
}

function parseHost(spec: string): { user: string; host: string } {
  const at = spec.lastIndexOf('@');
  const user = at >= 0 ? spec.slice(0, at) : process.env['USER'] ?? '';
  const host = at >= 0 ? spec.slice(at + 1) : spec;
  if (!user || !host || /\s/.test(spec)) throw new DeployError('BAD_HOST', `--host ${spec}: expected user@host`);
  return { user, host };
}

/** A shell word: single-quoted. */
const sh = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;

function exec(c: Client, cmd: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    c.exec(cmd, (err: Error | undefined, ch: ClientChannel) => {
      if (err) return reject(new DeployError('SSH_FAILED', `ssh exec failed: ${err.message}`, { cause: err }));
      let stdout = '';
      let stderr = '';
      ch.on('data', (d: Buffer) => (stdout += d.toString()));
      ch.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      ch.on('close', (code: number | null) => resolve({ code: code ?? -1, stdout, stderr }));
    });
  });
}

function sftpOf(c: Client): Promise<SFTPWrapper> {
  return new Promise((resolve, reject) => c.sftp((e: Error | undefined, s: SFTPWrapper) => (e ? reject(new DeployError('SSH_FAILED', `sftp: ${e.message}`, { cause: e })) : resolve(s))));
}

function put(s: SFTPWrapper, data: Uint8Array, remote: string): Promise<void> {
  return new Promise((resolve, reject) => s.writeFile(remote, Buffer.from(data), (e: Error | null | undefined) => (e ? reject(new DeployError('SSH_FAILED', `sftp write ${remote}: ${e.message}`, { cause: e })) : resolve())));
}

/** A little-endian float32 .npy. */
function npy(shape: readonly number[], data: Float32Array): Buffer {
  let header = `{'descr': '<f4', 'fortran_order': False, 'shape': (${shape.join(', ')}${shape.length === 1 ? ',' : ''}), }`;
  header += `${' '.repeat(63 - ((10 + header.length) % 64))}\n`;
  const pre = Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0, header.length & 0xff, header.length >> 8]);
  return Buffer.concat([pre, Buffer.from(header, 'latin1'), Buffer.from(data.buffer, data.byteOffset, data.byteLength)]);
}

/** The smoke batch: one sample of uniform [0, 1) values, seeded. */
function smokeInput(shape: readonly number[]): Tensor {
  const s = shape.map((d, k) => (k === 0 || d < 0 ? 1 : d));
  const n = s.reduce((a, b) => a * b, 1);
  const r = mulberry32(19);
  const data = new Float32Array(n);
  for (let i = 0; i < n; i++) data[i] = r();
  return { shape: s, data };
}

export async function deploy(modelBytes: Uint8Array, o: DeployOptions): Promise<DeployReport> {
  const log = o.log ?? (() => undefined);
  const target = getTarget(o.target);
  const { user, host } = parseHost(o.host);
  const port = o.port ?? 22;
  const local = mkdtempSync(join(tmpdir(), 'factorlite-deploy-'));
  try {
    if (!target.node) throw new TargetError('NOT_A_NODE_TARGET', `${target.name} runs the C firmware, not Node: use hil --port or hil --emulate instead of deploy`);
    const wantArch = target.node.arch;
    const minMajor = Number(target.node.version.split('.')[0]);
    const { Client } = (await importOptional<{ default: typeof import('ssh2') }>('ssh2', 'deploy (SSH)')).default;
    const c = new Client();
    let hostKeySha256 = '';
    await new Promise<void>((resolve, reject) => {
      c.on('ready', () => resolve());
      c.on('error', (e: Error) => reject(new DeployError('SSH_FAILED', `ssh to ${user}@${host}:${port}: ${e.message}`, { cause: e })));
      try {
        c.connect({
          host, port, username: user, privateKey: o.privateKey, ...(o.passphrase ? { passphrase: o.passphrase } : {}), readyTimeout: 20_000,
          hostHash: 'sha256',
          // Trust on first use, as ssh with StrictHostKeyChecking=accept-new would; the fingerprint is reported.
          hostVerifier: (hash: string) => {
            hostKeySha256 = hash;
            return true;
          },
        } as Parameters<Client['connect']>[0]);
      } catch (e) {
        reject(new DeployError('SSH_FAILED', `ssh to ${user}@${host}:${port}: ${(e as Error).message}`, { cause: e }));
      }
    });
    try {
      log(`deploy: connected to ${user}@${host}:${port}, host key sha256 ${hostKeySha256}`);
      const nodeCmd = o.remoteNode ?? 'node';
      const probe = await exec(c, `${sh(nodeCmd)} -e ${sh('process.stdout.write(JSON.stringify({ v: process.versions.node, arch: process.arch }))')}`);
      if (probe.code !== 0) throw new DeployError('NO_NODE', `no Node on ${host} (${nodeCmd} exited ${probe.code}: ${probe.stderr.trim().split('\n').pop() ?? ''}); install Node ${target.node.version} (${wantArch}) there`);
      const remote = JSON.parse(probe.stdout) as { v: string; arch: string };
      const major = Number(remote.v.split('.')[0]);
      if (remote.arch !== wantArch) throw new DeployError('WRONG_NODE', `${host} runs Node on ${remote.arch}, target ${target.name} is ${wantArch}: pick the target that matches the device`);
      if (major < minMajor) throw new DeployError('WRONG_NODE', `${host} has Node ${remote.v}; the bundle needs Node ${minMajor} or later`);
      log(`deploy: ${host} has Node ${remote.v} on ${remote.arch}`);

      const bundle = await writeBundle(modelBytes, target.name, join(local, 'bundle'), { version: o.version, ...(o.margin !== undefined ? { margin: o.margin } : {}) });
      const manifest = JSON.parse(readFileSync(join(bundle.dir, 'manifest.json'), 'utf8')) as BundleManifest;
      const remoteDir = o.remoteDir ?? `factorlite/${target.name}-${manifest.files['model.flm']!.slice(0, 8)}`;
      log(`deploy: bundle for ${target.name}, ${bundle.files} files, ${bundle.bytes} B`);

      const mk = await exec(c, `mkdir -p ${sh(remoteDir)} && cd ${sh(remoteDir)} && pwd`);
      if (mk.code !== 0) throw new DeployError('REMOTE_FAILED', `cannot make ${remoteDir} on ${host}: ${mk.stderr.trim()}`);
      const absDir = mk.stdout.trim();
      const dirs = new Set<string>();
      for (const f of Object.keys(manifest.files)) {
        const d = posix.dirname(f);
        if (d !== '.') dirs.add(d);
      }
      if (dirs.size) {
        const r = await exec(c, `cd ${sh(absDir)} && mkdir -p ${[...dirs].map(sh).join(' ')}`);
        if (r.code !== 0) throw new DeployError('REMOTE_FAILED', `mkdir on ${host}: ${r.stderr.trim()}`);
      }
      const sftp = await sftpOf(c);
      const t0 = performance.now();
      for (const f of [...Object.keys(manifest.files), 'manifest.json']) await put(sftp, readFileSync(join(bundle.dir, f)), posix.join(absDir, f));
      const x = smokeInput(readFlm(modelBytes).graph.inputs[0]!.shape);
      await put(sftp, npy(x.shape, x.data), posix.join(absDir, 'smoke.npy'));
      const uploadSeconds = (performance.now() - t0) / 1e3;
      sftp.end();
      log(`deploy: copied to ${absDir} in ${uploadSeconds.toFixed(2)} s`);

      const kernels = o.kernels ?? 'wasm-simd';
      const run = await exec(c, `cd ${sh(absDir)} && ${sh(nodeCmd)} run.mjs --input smoke.npy --kernels ${kernels} --json`);
      if (run.code !== 0) throw new DeployError('REMOTE_FAILED', `smoke inference on ${host} failed: ${run.stderr.trim().split('\n').pop() ?? `exit ${run.code}`}`);
      const got = JSON.parse(run.stdout) as { data: number[]; shape: number[]; kernels: string; startupMs: number; peakRssBytes: number };
      const backend = kernels === 'reference' ? referenceBackend : (await selectBackend(['wasm-simd'])).backend;
      const want = Session.create(readFlm(modelBytes), { backend, retainWeights: false }).runBatch(x);
      let worst = 0;
      let bitExact = 0;
      if (got.data.length !== want.data.length) throw new DeployError('MISMATCH', `the device gave ${got.data.length} outputs, this machine ${want.data.length}`);
      for (let i = 0; i < want.data.length; i++) {
        worst = Math.max(worst, Math.abs(got.data[i]! - want.data[i]!) / Math.max(1, Math.abs(want.data[i]!)));
        if (Math.fround(got.data[i]!) === want.data[i]) bitExact++;
      }
      if (!(worst <= SMOKE_TOLERANCE)) throw new DeployError('MISMATCH', `smoke inference on ${host} differs from this machine: worst relative difference ${worst.toExponential(2)} > ${SMOKE_TOLERANCE}`);
      log(`deploy: smoke inference matches (${bitExact}/${want.data.length} outputs bit for bit)`);
      return {
        host: `${user}@${host}`, port, hostKeySha256, target: target.name,
        remote: { node: remote.v, arch: remote.arch, dir: absDir },
        bundle: { target: bundle.target, files: bundle.files, bytes: bundle.bytes, runtimeBytes: bundle.runtimeBytes, modelBytes: bundle.modelBytes, latencyMs: bundle.fit.latencyMs },
        uploadSeconds,
        smoke: { kernels: got.kernels, shape: got.shape, worst, tolerance: SMOKE_TOLERANCE, bitExact, count: want.data.length, startupMs: got.startupMs, peakRssBytes: got.peakRssBytes },
      };
    } finally {
      c.end();
    }
  } finally {
    rmSync(local, { recursive: true, force: true });
  }
}
