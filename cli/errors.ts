// Errors that the CLI reports as one line and a non-zero exit.
import type { FlmErrorCode } from '../runtime/format/errors.js';

export type CliErrorCode =
  | 'BAD_ARGUMENT' | 'BAD_INPUT' | 'NOT_A_MODEL'
  /** An output path resolves to one of the command's inputs (cli/outputs.ts). */
  | 'OUTPUT_IS_INPUT'
  /** An output is a folder, or its folder is missing or not writable (checked before any work). */
  | 'BAD_OUTPUT'
  /** An error without a code reached the top level: a bug, reported as such. */
  | 'INTERNAL'
  /** A .flm file that does not read (cli/modelFile.ts readFlmAt names the file). */
  | FlmErrorCode;

export class CliError extends Error {
  constructor(readonly code: CliErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/**
 * The code the command line reports for an error's code. Every bad flag value or combination is
 * BAD_ARGUMENT there, whichever layer finds it: the converter's BAD_OPTIONS (compressModel's
 * options are the convert flags: --ratio, --energy, --modes, --method none with a ratio ...) and
 * the sweep's flag parsers are reported so; every other code is kept.
 */
export function cliCode(code: string): string {
  return code === 'BAD_OPTIONS' ? 'BAD_ARGUMENT' : code;
}
