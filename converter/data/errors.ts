export class DataError extends Error {
  constructor(readonly code: 'DATA_NOT_FOUND' | 'DATA_BAD_FILE' | 'DATA_BAD_NAME', message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}
