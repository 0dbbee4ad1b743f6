// Number flags, parsed in one place: absent -> undefined; a blank, non-numeric or out-of-range
// value -> BAD_ARGUMENT naming the flag, the value and what was expected.
import { availableParallelism } from 'node:os';
import { CliError } from './errors.js';

type Raw = string | number | undefined;

function blank(v: string | number): boolean {
  return typeof v === 'string' && v.trim() === '';
}

/**
 * A finite number. Without `check` a bad value is "<flag> <v>: not a number"; with it, any bad
 * value is "<flag> <v>: expected <check.what>".
 */
export function numberFlag(flag: string, v: Raw, check?: { ok: (n: number) => boolean; what: string }): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (blank(v) || !Number.isFinite(n) || (check && !check.ok(n))) {
    throw new CliError('BAD_ARGUMENT', `${flag} ${v}: ${check ? `expected ${check.what}` : 'not a number'}`);
  }
  return n;
}

/** An integer in [min, max]: "<flag> <v>: expected <what>" otherwise (what defaults to "an integer >= min"). */
export function integerFlag(flag: string, v: Raw, min = 1, what = `an integer >= ${min}`, max = Infinity): number | undefined {
  return numberFlag(flag, v, { ok: (n) => Number.isInteger(n) && n >= min && n <= max, what });
}

/** An integer >= 1: "<flag> <v>: expected a positive integer" otherwise. */
export function positiveIntFlag(flag: string, v: Raw): number | undefined {
  return integerFlag(flag, v, 1, 'a positive integer');
}

/** A byte count: an integer, or with a K or M suffix (KB, KiB, MB, MiB: powers of 1024), e.g. 491520 or 480K. */
export function bytesFlag(flag: string, v: Raw): number | undefined {
  if (v === undefined) return undefined;
  const m = /^\s*(\d+(?:\.\d+)?)\s*(k|kb|kib|m|mb|mib)?\s*$/i.exec(String(v));
  const unit = m?.[2]?.[0]?.toLowerCase();
  const n = m ? Math.round(Number(m[1]) * (unit === 'k' ? 1024 : unit === 'm' ? 1024 * 1024 : 1)) : NaN;
  if (!(Number.isInteger(n) && n >= 1)) throw new CliError('BAD_ARGUMENT', `${flag} ${v}: expected a byte count such as 491520 or 480K`);
  return n;
}

/** --threads N: the runtime's threads cap, an integer >= 1; absent: every core of this machine. */
export function threadsFlag(v: Raw): number {
  return integerFlag('--threads', v, 1, 'a positive integer (threads)', 1024) ?? availableParallelism();
}
