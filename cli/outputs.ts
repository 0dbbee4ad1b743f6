// Nothing lost: every command that writes checks its output paths before any work starts. An
// output must not resolve (after symlinks, or as a hard link) to one of the command's inputs, must
// not be a folder, and its folder must exist and be writable. The files themselves are then
// written through converter/atomicWrite.ts (a temporary file beside the target, then a rename), so
// a failure half-way leaves the old file as it was.
import { accessSync, constants, lstatSync, readlinkSync, realpathSync, statSync, type Stats } from 'node:fs';
import { basename, dirname, resolve, sep } from 'node:path';
import { CliError } from './errors.js';

/** Where `path` really is: symlinks followed (also a dangling one), folders resolved. */
export function resolvedPath(path: string): string {
  const abs = resolve(path);
  try {
    return realpathSync(abs);
  } catch {
    // A new file (or a dangling link): its folder's real path, plus the name or the link's target.
    let name = basename(abs);
    let dir = dirname(abs);
    for (let hops = 0; hops < 32; hops++) {
      let st: Stats | undefined;
      try {
        st = lstatSync(resolve(dir, name));
      } catch {
        st = undefined;
      }
      if (!st?.isSymbolicLink()) break;
      const target = resolve(dir, readlinkSync(resolve(dir, name)));
      dir = dirname(target);
      name = basename(target);
    }
    try {
      return resolve(realpathSync(dir), name);
    } catch {
      return resolve(dir, name);
    }
  }
}

function statOrUndefined(path: string): Stats | undefined {
  try {
    return statSync(path);
  } catch {
    return undefined;
  }
}

export interface OutputCheck {
  /** Files (or folders) the command reads; names that are not paths (e.g. `fashion-mnist`) are skipped. */
  inputs: ReadonlyArray<string | undefined>;
  /** Files the command will write. */
  outputs: ReadonlyArray<string>;
}

/**
 * Refuses, before any work, an output that is one of the inputs (OUTPUT_IS_INPUT), a folder, or in
 * a folder that is missing or not writable (BAD_OUTPUT). Two outputs naming one file are refused too.
 */
export function checkOutputs(c: OutputCheck): void {
  const inputs = c.inputs.filter((p): p is string => typeof p === 'string' && p.length > 0)
    .map((p) => ({ path: p, real: resolvedPath(p), st: statOrUndefined(p) }))
    .filter((i) => i.st !== undefined);
  const seen = new Map<string, string>();
  for (const out of c.outputs) {
    const real = resolvedPath(out);
    const st = statOrUndefined(out);
    if (st?.isDirectory()) throw new CliError('BAD_OUTPUT', `output ${out} is a folder; give a file name`);
    for (const inp of inputs) {
      const same = inp.real === real || (st !== undefined && inp.st!.isFile() && st.dev === inp.st!.dev && st.ino === inp.st!.ino);
      if (same) {
        throw new CliError('OUTPUT_IS_INPUT', `output ${out} is the input ${inp.path}${inp.path !== out ? ` (${real})` : ''}; writing it would destroy the input, choose another output path`);
      }
      // A data folder's files are all inputs: an existing one is never replaced.
      if (st && inp.st!.isDirectory() && real.startsWith(inp.real.endsWith(sep) ? inp.real : inp.real + sep)) {
        throw new CliError('OUTPUT_IS_INPUT', `output ${out} is an existing file in the input folder ${inp.path}; choose another output path`);
      }
    }
    const other = seen.get(real);
    if (other !== undefined) throw new CliError('OUTPUT_IS_INPUT', `outputs ${other} and ${out} are the same file ${real}`);
    seen.set(real, out);
    const dir = dirname(real);
    const dst = statOrUndefined(dir);
    if (!dst) throw new CliError('BAD_OUTPUT', `output ${out}: folder ${dirname(out)} does not exist`);
    if (!dst.isDirectory()) throw new CliError('BAD_OUTPUT', `output ${out}: ${dirname(out)} is not a folder`);
    try {
      accessSync(dir, constants.W_OK | constants.X_OK);
    } catch {
      throw new CliError('BAD_OUTPUT', `output ${out}: folder ${dirname(out)} is not writable`);
    }
    if (st) {
      try {
        accessSync(real, constants.W_OK);
      } catch {
        throw new CliError('BAD_OUTPUT', `output ${out} exists and is not writable`);
      }
    }
  }
}

/**
 * An output folder that the command replaces (bundle -o DIR --force removes what is there): it must
 * not be one of the inputs nor hold one (OUTPUT_IS_INPUT), and must not be a file (BAD_OUTPUT).
 */
export function checkOutputFolder(c: { inputs: ReadonlyArray<string | undefined>; folder: string }): void {
  const st = statOrUndefined(c.folder);
  if (st && !st.isDirectory()) throw new CliError('BAD_OUTPUT', `output ${c.folder} is a file; this command writes a folder`);
  const real = resolvedPath(c.folder);
  const inside = real.endsWith(sep) ? real : real + sep;
  for (const p of c.inputs) {
    if (typeof p !== 'string' || p.length === 0 || !statOrUndefined(p)) continue;
    const inp = resolvedPath(p);
    if (inp === real || inp.startsWith(inside)) {
      throw new CliError('OUTPUT_IS_INPUT', `output folder ${c.folder} holds the input ${p}; replacing it would destroy the input, choose another folder`);
    }
  }
}

/**
 * An output folder (demo --out-dir): created when missing (with its parents), else it must be a
 * writable folder. Files the command writes inside it are then checked with checkOutputs.
 */
export async function prepareOutputDir(dir: string): Promise<void> {
  const { mkdir } = await import('node:fs/promises');
  const st = statOrUndefined(dir);
  if (st && !st.isDirectory()) throw new CliError('BAD_OUTPUT', `output folder ${dir} is a file`);
  if (!st) {
    try {
      await mkdir(dir, { recursive: true });
    } catch (e) {
      throw new CliError('BAD_OUTPUT', `output folder ${dir} cannot be created (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, { cause: e });
    }
  }
  try {
    accessSync(dir, constants.W_OK | constants.X_OK);
  } catch {
    throw new CliError('BAD_OUTPUT', `output folder ${dir} is not writable`);
  }
}
