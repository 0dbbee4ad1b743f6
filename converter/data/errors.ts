export type DataErrorCode =
  | 'DATA_NOT_FOUND' // the file or folder is not there
  | 'DATA_BAD_FILE' // not a readable IDX / .npy file
  | 'DATA_BAD_NAME' // --data names no known set
  | 'DATA_BAD_DTYPE' // a .npy dtype that cannot be read as numbers
  | 'DATA_BAD_SHAPE' // inputs, labels or targets of a shape the model does not take
  | 'DATA_BAD_LABELS' // labels outside the model's classes, or not whole numbers
  | 'DATA_NO_LABELS' // the command needs labels (or targets) and the set has none
  | 'DATA_EMPTY'; // no samples

export class DataError extends Error {
  constructor(readonly code: DataErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}
