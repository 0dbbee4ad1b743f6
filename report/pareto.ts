// The accuracy-size front: points that no other point beats on both (higher accuracy, fewer bytes).
export interface FrontPoint { key: string; accuracy: number; cost: number }

/** Keys on the front, cheapest first. Ties on both coordinates keep the first key. */
export function paretoFront(points: readonly FrontPoint[]): string[] {
  const sorted = [...points].sort((a, b) => a.cost - b.cost || b.accuracy - a.accuracy || (a.key < b.key ? -1 : 1));
  const front: string[] = [];
  let best = -Infinity;
  for (const p of sorted) {
    if (p.accuracy > best) {
      front.push(p.key);
      best = p.accuracy;
    }
  }
  return front;
}
