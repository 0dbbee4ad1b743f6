import { createRequire } from 'node:module';

// ../package.json from the sources; ../../package.json from the compiled dist/cli/.
const require = createRequire(import.meta.url);
function packageVersion(): string {
  for (const p of ['../package.json', '../../package.json']) {
    try {
      const pkg = require(p) as { name?: string; version: string };
      if (pkg.name === 'factorlite') return pkg.version;
    } catch {
      // not at this level
    }
  }
  return '0.0.0';
}

export const VERSION: string = packageVersion();
