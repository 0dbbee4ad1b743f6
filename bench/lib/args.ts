// Command-line options of the benchmark scripts: `--name value`, with a default. Numbers go through
// the CLI's one number-flag parser (cli/flags.ts), so a bad value stops the script naming the flag.
import { numberFlag } from '../../cli/flags.js';

/** The value after `--name`, else `fallback`. */
export function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1]! : fallback;
}

/** The number after `--name`, else `fallback`. */
export function numberArg(name: string, fallback: string): number {
  return numberFlag(`--${name}`, arg(name, fallback))!;
}
