// Errors that the CLI reports as one line and a non-zero exit.
export class CliError extends Error {
  constructor(readonly code: 'BAD_ARGUMENT' | 'BAD_INPUT' | 'NOT_A_MODEL', message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}
