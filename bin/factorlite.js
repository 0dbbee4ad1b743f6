#!/usr/bin/env node
// Runs the TypeScript sources through tsx; `npm run build` also emits dist/ for library use.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../cli/main.ts');
process.exitCode = await main(process.argv.slice(2));
