// Packages that only some commands need (serial ports, PNG pictures, the ONNX reference) are
// optional peers of the factorlite package: loaded when used, and when missing, one line naming
// the package to add. The runtime itself never calls this.
import { createRequire } from 'node:module';

export class MissingPackageError extends Error {
  readonly code = 'MISSING_PACKAGE';
  constructor(readonly pkg: string, purpose: string, options?: { cause?: unknown }) {
    super(`${purpose} needs the npm package ${pkg}, which is not installed: run npm install ${pkg}`, options);
    this.name = 'MissingPackageError';
  }
}

const require = createRequire(import.meta.url);

function missing(e: unknown, pkg: string): boolean {
  const code = (e as { code?: string }).code;
  const msg = e instanceof Error ? e.message : '';
  return (code === 'MODULE_NOT_FOUND' || code === 'ERR_MODULE_NOT_FOUND') && msg.includes(pkg);
}

/** require() of an optional CommonJS package; MissingPackageError names it when it is absent. */
export function requireOptional<T>(pkg: string, purpose: string): T {
  try {
    return require(pkg) as T;
  } catch (e) {
    if (missing(e, pkg)) throw new MissingPackageError(pkg, purpose, { cause: e });
    throw e;
  }
}

/** import() of an optional package; MissingPackageError names it when it is absent. */
export async function importOptional<T>(pkg: string, purpose: string): Promise<T> {
  try {
    return (await import(pkg)) as T;
  } catch (e) {
    if (missing(e, pkg)) throw new MissingPackageError(pkg, purpose, { cause: e });
    throw e;
  }
}
