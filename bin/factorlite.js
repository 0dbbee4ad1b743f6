#!/usr/bin/env node
// In the repository: runs the TypeScript sources through tsx (a dev dependency).
// In an installed package: runs the JavaScript that `npm pack` compiled into dist/ (prepack).
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const sources = fileURLToPath(new URL('../cli/main.ts', import.meta.url));
let main;
if (existsSync(sources)) {
  const { register } = await import('tsx/esm/api');
  register();
  ({ main } = await import('../cli/main.ts'));
} else {
  ({ main } = await import('../dist/cli/main.js'));
}
process.exitCode = await main(process.argv.slice(2));
