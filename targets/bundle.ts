// factorlite bundle: a folder a Pi or a Jetson runs with its own Node and nothing else.
//
//   dir/
//     run.mjs          launcher: checks manifest.json, loads model.flm, runs a .npy batch
//     package.json     { "type": "module" }
//     manifest.json    factorlite version, target, Node needed, SHA-256 of every file below
//     model.flm
//     runtime/         the runtime compiled to JavaScript, kernels/wasm/kernels.wasm, crc32.js
//
// No converter code and no node_modules: the runtime's one dependency (crc-32) is replaced by a
// CRC-32 module of ours (launcher/crc32.mjs). The runtime comes from dist/ when factorlite runs
// compiled, else from the TypeScript sources transpiled here (the typescript package of a checkout).
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readFlm } from '../runtime/format/reader.js';
import { importOptional } from '../runtime/optionalPackage.js';
import { checkFit, DEFAULT_MARGIN, type FitReport } from './fit.js';
import { getTarget, TargetError } from './profiles.js';

export interface BundleOptions {
  /** factorlite version recorded in the manifest. */
  version: string;
  margin?: number;
  /** Write over a non-empty output folder. */
  force?: boolean;
}

export interface BundleReport {
  dir: string;
  target: string;
  files: number;
  bytes: number;
  runtimeBytes: number;
  modelBytes: number;
  fit: FitReport;
}

export interface BundleManifest {
  format: 1;
  factorlite: string;
  target: string;
  model: string;
  node: { minMajor: number; arch: string };
  files: Record<string, string>;
}

const RUNTIME_DIR = fileURLToPath(new URL('../runtime/', import.meta.url));
const LAUNCHER_DIR = fileURLToPath(new URL('./launcher/', import.meta.url));

function walk(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...walk(p));
    else out.push(p);
  }
  return out;
}

/** `from 'crc-32'` becomes a relative import of the bundle's runtime/crc32.js. */
function dropCrcPackage(js: string, rel: string): string {
  const depth = rel.split(sep).length - 1;
  const to = depth === 0 ? './crc32.js' : `${'../'.repeat(depth)}crc32.js`;
  return js.replace(/from\s+['"]crc-32['"]/g, `from '${to}'`);
}

/** The runtime as JavaScript: relative path -> contents. */
async function runtimeFiles(): Promise<Map<string, Uint8Array>> {
  const files = new Map<string, Uint8Array>();
  const compiled = existsSync(join(RUNTIME_DIR, 'index.js'));
  type Ts = typeof import('typescript');
  const ts = compiled ? undefined : ((await importOptional<{ default: Ts }>('typescript', 'bundling from TypeScript sources')).default);
  for (const p of walk(RUNTIME_DIR)) {
    const rel = relative(RUNTIME_DIR, p);
    // kernels.wasm and kernels-relaxed.wasm (55 KB; the runtime picks it where relaxed SIMD validates)
    // go in; the threaded modules (kernels-mt.wasm and kernels-mt-relaxed.wasm, 900 KB each) stay out:
    // the launcher runs on one thread.
    if (rel.endsWith('.wasm') && rel.startsWith(`kernels${sep}wasm`) && !rel.split(sep).pop()!.startsWith('kernels-mt')) files.set(rel, readFileSync(p));
    else if (compiled && rel.endsWith('.js')) files.set(rel, Buffer.from(dropCrcPackage(readFileSync(p, 'utf8'), rel)));
    else if (!compiled && rel.endsWith('.ts') && !rel.endsWith('.d.ts')) {
      const out = ts!.transpileModule(readFileSync(p, 'utf8'), {
        compilerOptions: { module: ts!.ModuleKind.ES2022, target: ts!.ScriptTarget.ES2022, esModuleInterop: true },
        fileName: p,
      });
      const jsRel = rel.replace(/\.ts$/, '.js');
      files.set(jsRel, Buffer.from(dropCrcPackage(out.outputText, jsRel)));
    }
  }
  if (![...files.keys()].some((k) => k.endsWith('.wasm'))) throw new TargetError('DOES_NOT_FIT', `kernels.wasm not found under ${RUNTIME_DIR}; run scripts/build-wasm.sh`);
  files.set('crc32.js', readFileSync(join(LAUNCHER_DIR, 'crc32.mjs')));
  return files;
}

const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

/** Writes the bundle of `modelBytes` for `targetName` into `dir`. */
export async function writeBundle(modelBytes: Uint8Array, targetName: string, dir: string, opts: BundleOptions): Promise<BundleReport> {
  const target = getTarget(targetName);
  if (target.kind !== 'node' || !target.node) {
    throw new TargetError('NOT_A_NODE_TARGET', `${target.name} runs the C firmware, not Node: use hil --emulate ${target.hilBoard ?? target.name} or the firmware-bridge instead of a bundle`);
  }
  const model = readFlm(modelBytes);
  const fit = checkFit(model, modelBytes.length, target, opts.margin ?? DEFAULT_MARGIN);
  if (!fit.fits) throw new TargetError('DOES_NOT_FIT', `the model does not fit ${target.name}: ${fit.why.join('; ')}`);
  if (existsSync(dir) && (!statSync(dir).isDirectory() || (readdirSync(dir).length > 0 && !opts.force))) {
    throw new TargetError('DOES_NOT_FIT', `output ${dir} exists and is not an empty folder (pass --force to replace it)`);
  }
  const files = new Map<string, Uint8Array>();
  for (const [rel, b] of await runtimeFiles()) files.set(join('runtime', rel).split(sep).join('/'), b);
  files.set('model.flm', modelBytes);
  files.set('run.mjs', readFileSync(join(LAUNCHER_DIR, 'run.mjs')));
  // ES modules whatever the Node version (20.11 does not detect module syntax in .js files).
  files.set('package.json', Buffer.from(`${JSON.stringify({ name: `factorlite-bundle-${target.name}`, private: true, type: 'module' }, null, 2)}\n`));
  if (opts.force) rmSync(dir, { recursive: true, force: true });
  const manifest: BundleManifest = {
    format: 1,
    factorlite: opts.version,
    target: target.name,
    model: 'model.flm',
    node: { minMajor: Number(target.node.version.split('.')[0]), arch: target.node.arch },
    files: {},
  };
  let bytes = 0;
  let runtimeBytes = 0;
  for (const [rel, b] of [...files].sort(([a], [c]) => a.localeCompare(c))) {
    const p = join(dir, rel);
    mkdirSync(dirname(p), { recursive: true });
    writeFileSync(p, b);
    manifest.files[rel] = sha256(b);
    bytes += b.length;
    if (rel.startsWith('runtime/')) runtimeBytes += b.length;
  }
  const m = Buffer.from(`${JSON.stringify(manifest, null, 2)}\n`);
  writeFileSync(join(dir, 'manifest.json'), m);
  return { dir, target: target.name, files: files.size + 1, bytes: bytes + m.length, runtimeBytes, modelBytes: modelBytes.length, fit };
}
