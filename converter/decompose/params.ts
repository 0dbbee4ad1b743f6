// Parameter counts of each factor layer kind (weights only; a bias adds `out` to any of them).

/** svd_dense / svd_conv2d: u [rows, r] + v [r, cols]. */
export function paramsSvd(rows: number, cols: number, r: number): number {
  return r * (rows + cols);
}

/** tucker2_conv2d: u_in [rIn, I] + core [rOut, rIn, kh, kw] + u_out [O, rOut]. */
export function paramsTucker2(O: number, I: number, kh: number, kw: number, rOut: number, rIn: number): number {
  return rIn * I + rOut * rIn * kh * kw + O * rOut;
}

/** CP conv kind: a_in [R, I] + k_h [R, kh] + k_w [R, kw] + a_out [O, R]. */
export function paramsCp(O: number, I: number, kh: number, kw: number, R: number): number {
  return R * (I + kh + kw + O);
}

/** tt_dense: Σ_k r_k m_k n_k r_{k+1}, ranks of length d+1 with r_0 = r_d = 1. */
export function paramsTt(outModes: readonly number[], inModes: readonly number[], ranks: readonly number[]): number {
  let total = 0;
  outModes.forEach((m, k) => {
    total += ranks[k]! * m * inModes[k]! * ranks[k + 1]!;
  });
  return total;
}

/** tr_dense: as paramsTt with r_d = r_0; ranks may have length d (closing rank implied) or d+1. */
export function paramsTr(outModes: readonly number[], inModes: readonly number[], ranks: readonly number[]): number {
  const closed = ranks.length === outModes.length ? [...ranks, ranks[0]!] : ranks;
  return paramsTt(outModes, inModes, closed);
}

/** ttl_dense: core Π r_k + Σ_k dim_k r_k over dims = [...outModes, ...inModes]. */
export function paramsTtl(outModes: readonly number[], inModes: readonly number[], ranks: readonly number[]): number {
  const dims = [...outModes, ...inModes];
  let core = 1;
  let factors = 0;
  dims.forEach((d, k) => {
    core *= ranks[k]!;
    factors += d * ranks[k]!;
  });
  return core + factors;
}
