// The ADTN layer's circuit layout: the index pairing and the gates' places, shared by the layer
// kind (adtnDense.ts) and its MPS (adtnMps.ts).

export const ADTN_PAIRINGS = ['brickwall', 'fixed'] as const;
export type AdtnPairing = (typeof ADTN_PAIRINGS)[number];

export interface AdtnLayout {
  /** Indices of dimension 2: 2^q >= out * in. */
  q: number;
  depth: number;
  arity: number;
  pairing: AdtnPairing;
  /** Per layer, the first index of each gate (gates act on [p, p + arity)). */
  layers: number[][];
  /** Gates in all, the first axis of `gates`. */
  gates: number;
}
