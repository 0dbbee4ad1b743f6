// The typed error of post-training compression (converter/compress.ts and what it calls).
export class CompressError extends Error {
  constructor(readonly code: 'BAD_OPTIONS' | 'RANK_UNREACHABLE' | 'BAD_RANKS' | 'AGREEMENT_UNMET'
    /** --method decouple: no dense → activation → dense pair it can replace. */
    | 'NO_PAIR'
    /** --method decouple: --neurons is not a count the pairs allow. */
    | 'BAD_NEURONS'
    /** --method decouple: --basis is not one it knows. */
    | 'BAD_BASIS'
    /** --arena: the model cannot be made to fit the device's arena (converter/rank/arenaFit.ts). */
    | 'ARENA_EXCEEDED'
    /** --quant int8-full: a node whose kind the integer path lacks (converter/int8Full.ts). */
    | 'INT8_UNSUPPORTED', message: string) {
    super(message);
  }
}
