// Counts typed-array and ArrayBuffer allocations made while a function runs: every typed-array
// constructor and ArrayBuffer are replaced by counting proxies, the typed-array methods that make
// new arrays (subarray, slice, map, filter, from, of) are wrapped, and so are ArrayBuffer#slice and
// WebAssembly.Memory#grow. Everything is restored afterwards, even when `fn` throws.

const TYPED = [
  'Int8Array', 'Uint8Array', 'Uint8ClampedArray', 'Int16Array', 'Uint16Array', 'Int32Array', 'Uint32Array',
  'Float32Array', 'Float64Array', 'BigInt64Array', 'BigUint64Array',
] as const;

export interface AllocationCount {
  total: number;
  /** What was allocated, e.g. "new Float32Array", "Float32Array#subarray". */
  kinds: Record<string, number>;
}

export function countAllocations(fn: () => void): AllocationCount {
  const g = globalThis as unknown as Record<string, unknown>;
  const count: AllocationCount = { total: 0, kinds: {} };
  const hit = (kind: string) => {
    count.total++;
    count.kinds[kind] = (count.kinds[kind] ?? 0) + 1;
  };
  const restore: Array<() => void> = [];
  const patch = (obj: Record<string, unknown>, key: string, value: unknown) => {
    const had = Object.getOwnPropertyDescriptor(obj, key);
    Object.defineProperty(obj, key, { value, writable: true, configurable: true });
    restore.push(() => {
      if (had) Object.defineProperty(obj, key, had);
      else delete obj[key];
    });
  };
  const proxyCtor = (name: string) => {
    const C = g[name] as new (...args: unknown[]) => object;
    const P = new Proxy(C, {
      construct(target, args, newTarget) {
        hit(`new ${name}`);
        return Reflect.construct(target, args, newTarget === P ? target : newTarget);
      },
    });
    patch(g, name, P);
  };
  const TypedArray = Object.getPrototypeOf(Int8Array) as { prototype: Record<string, unknown> } & Record<string, unknown>;
  const wrap = (obj: Record<string, unknown>, key: string, label: string) => {
    const f = obj[key] as (...a: unknown[]) => unknown;
    patch(obj, key, function (this: unknown, ...a: unknown[]) {
      const self = this as { constructor?: { name?: string } } | undefined;
      hit(`${self?.constructor?.name ?? '?'}${label}`);
      return f.apply(this, a);
    });
  };
  try {
    for (const name of TYPED) proxyCtor(name);
    proxyCtor('ArrayBuffer');
    for (const m of ['subarray', 'slice', 'map', 'filter']) wrap(TypedArray.prototype, m, `#${m}`);
    wrap(TypedArray, 'from', '.from');
    wrap(TypedArray, 'of', '.of');
    wrap(ArrayBuffer.prototype as unknown as Record<string, unknown>, 'slice', '#slice');
    wrap(WebAssembly.Memory.prototype as unknown as Record<string, unknown>, 'grow', '#grow');
    fn();
  } finally {
    for (const r of restore.reverse()) r();
  }
  return count;
}
