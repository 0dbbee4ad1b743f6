// External things some tests need (the shared fixtures, the Debian Fashion-MNIST package, python
// numpy). Missing ones skip the test with the reason printed, except under FACTORLITE_CI=1, where
// a missing requirement is a failure: CI must never pass by skipping.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Test } from 'tap';

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
/** The shared fixtures (the one lookup: bench/lib/fixtures.ts). */
export { FIXTURES } from '../../bench/lib/fixtures.js';
import { FIXTURES } from '../../bench/lib/fixtures.js';
export const FASHION_DIR = '/usr/share/datasets/fashion-mnist';
export const PYTHON = '/usr/bin/python3';

const strict = (): boolean => process.env['FACTORLITE_CI'] === '1';

/** Records a missing requirement on `t`: a skip with the reason, or a failure under FACTORLITE_CI=1. */
export function missing(t: Test, why: string): false {
  if (strict()) {
    t.fail(`${why} (required because FACTORLITE_CI=1)`);
  } else {
    process.stderr.write(`# skip: ${why}\n`);
    t.skip(`skipped: ${why}`);
  }
  return false;
}

/** True when `path` exists; otherwise skips (or, under FACTORLITE_CI=1, fails) with a reason. */
export function needPath(t: Test, path: string, what: string): boolean {
  return existsSync(path) || missing(t, `${what} not found at ${path}`);
}

let numpyOk: boolean | undefined;
/** True when /usr/bin/python3 can import numpy; otherwise skips or fails as needPath does. */
export function needNumpy(t: Test): boolean {
  if (numpyOk === undefined) {
    const r = existsSync(PYTHON) ? spawnSync(PYTHON, ['-c', 'import numpy'], { encoding: 'utf8' }) : undefined;
    numpyOk = r?.status === 0;
  }
  return numpyOk || missing(t, `${PYTHON} with numpy is not available`);
}

/** The Fashion-MNIST test files of the Debian package. */
export function needFashion(t: Test): boolean {
  return needPath(t, `${FASHION_DIR}/t10k-images-idx3-ubyte.gz`, 'Fashion-MNIST (Debian package dataset-fashion-mnist)')
    && needPath(t, `${FASHION_DIR}/t10k-labels-idx1-ubyte.gz`, 'Fashion-MNIST labels');
}

/** A fixture file under ../shared/fixtures. */
export function needFixture(t: Test, name: string): string | undefined {
  const p = resolve(FIXTURES, name);
  return needPath(t, p, `fixture ${name}`) ? p : undefined;
}
