// The typed error of post-training compression (converter/compress.ts and what it calls).
export class CompressError extends Error {
  constructor(readonly code: 'BAD_OPTIONS' | 'RANK_UNREACHABLE' | 'BAD_RANKS' | 'AGREEMENT_UNMET', message: string) {
    super(message);
  }
}
