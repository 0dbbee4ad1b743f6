// Rank selection from a spectrum, and mode factorisations for TT / TR / TTL layers.

/** Smallest r ≥ 1 whose leading squared singular values hold at least `energy` of the total. */
export function rankForEnergy(singularValues: ArrayLike<number>, energy: number): number {
  const n = singularValues.length;
  const cumulative = new Float64Array(n);
  let acc = 0;
  for (let i = 0; i < n; i++) {
    acc += singularValues[i]! * singularValues[i]!;
    cumulative[i] = acc;
  }
  // The total is the last cumulative sum, so energy = 1 is reached exactly at r = n.
  const target = Math.min(1, Math.max(0, energy)) * acc;
  for (let i = 0; i < n; i++) if (cumulative[i]! >= target) return i + 1;
  return Math.max(1, n);
}

/** Smallest r ≥ 1 with Σ_{i≥r} σ_i² ≤ maxTail, then clamped to [1, cap]: TT-SVD / TR-SVD truncation. */
export function rankForTail(singularValues: ArrayLike<number>, maxTail: number, cap = Infinity): number {
  const n = singularValues.length;
  let tail = 0;
  let r = n;
  // Walk from the smallest value up while the discarded energy stays within budget.
  while (r > 1) {
    const s = singularValues[r - 1]!;
    if (tail + s * s > maxTail) break;
    tail += s * s;
    r--;
  }
  return Math.max(1, Math.min(r, Math.floor(cap), n));
}

/** Every way to write n as a non-decreasing product of `parts` factors ≥ min. */
function factorings(n: number, parts: number, min: number): number[][] {
  if (parts === 1) return n >= min ? [[n]] : [];
  const out: number[][] = [];
  for (let f = min; f ** parts <= n; f++) {
    if (n % f !== 0) continue;
    for (const rest of factorings(n / f, parts - 1, f)) out.push([f, ...rest]);
  }
  return out;
}

/**
 * Split n into `parts` factors as balanced as possible (smallest largest factor, then largest
 * smallest factor), ascending; 1s pad when n has too few prime factors (10 in 3 -> [1, 2, 5]).
 */
export function factorModes(n: number, parts: number): number[] {
  if (!Number.isInteger(n) || n < 1) throw new Error(`factorModes: n must be a positive integer, got ${n}`);
  if (!Number.isInteger(parts) || parts < 1) throw new Error(`factorModes: parts must be a positive integer, got ${parts}`);
  let best: number[] = [];
  for (const c of factorings(n, parts, 1)) {
    const better =
      best.length === 0 ||
      c[parts - 1]! < best[parts - 1]! ||
      (c[parts - 1]! === best[parts - 1]! && c[0]! > best[0]!);
    if (better) best = c;
  }
  return best;
}
