// Every ordering of a short list, lazily: the contraction-order searches of the runtime's tensor
// networks (execution and the cost model) walk them. Imports nothing.

/** Yields each permutation of `items` once (n! of them: meant for the handful of a network's tensors). */
export function* permutations<T>(items: readonly T[]): Generator<T[]> {
  if (items.length <= 1) {
    yield items.slice();
    return;
  }
  for (let i = 0; i < items.length; i++) {
    const rest = [...items.slice(0, i), ...items.slice(i + 1)];
    for (const p of permutations(rest)) yield [items[i]!, ...p];
  }
}
