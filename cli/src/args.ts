/**
 * @module args
 * Command-line parsing for the `livematrix` subcommands: options, required values, numbers in a
 * range, public keys, and the two errors a command throws for the operator (usage, failure).
 */
import { parseArgs } from 'node:util';
import { errorMessage, fromHex } from '@livematrix/spec';

export const EXIT = { ok: 0, failure: 1, usage: 2 } as const;

/** A mistake on the command line: printed with a pointer to --help, exit code 2. */
export class UsageError extends Error {}
/** A failure with a message written for the operator: printed as it is, exit code 1. */
export class Failure extends Error {}

/** Parsed option values by name (a string array for an option given `multiple`). */
export type Values = Record<string, string | string[] | boolean | undefined>;
export type OptionSpec = Record<string, { type: 'string' | 'boolean'; short?: string; multiple?: boolean }>;

/** Parses `argv` strictly; every command also takes --help / -h. */
export function parse(argv: string[], options: OptionSpec): { values: Values; positionals: string[] } {
  try {
    const r = parseArgs({ args: argv, options: { ...options, help: { type: 'boolean', short: 'h' } }, allowPositionals: true, strict: true });
    return { values: r.values as Values, positionals: r.positionals };
  } catch (e) {
    throw new UsageError(errorMessage(e));
  }
}

/** The value of a string option, else `dflt`. */
export function opt(v: Values, name: string, dflt: string): string {
  const x = v[name];
  return typeof x === 'string' ? x : dflt;
}

/** Every value of a repeatable option (`multiple: true`), in order; empty when it is absent. */
export function list(v: Values, name: string): string[] {
  const x = v[name];
  return Array.isArray(x) ? x : typeof x === 'string' ? [x] : [];
}

export function need(v: Values, name: string): string {
  const x = v[name];
  if (typeof x !== 'string' || !x) throw new UsageError(`--${name} is required`);
  return x;
}

export function num(v: Values, name: string, dflt: number, min = 0, max = Number.MAX_SAFE_INTEGER): number {
  const x = v[name];
  if (x === undefined) return dflt;
  const n = Number(x);
  if (typeof x !== 'string' || !Number.isFinite(n) || n < min || n > max) throw new UsageError(`--${name} must be a number in ${min}..${max}, got "${String(x)}"`);
  return n;
}

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** A duration such as `90s`, `30m`, `1h` or `2d` (a bare number is seconds), in ms, within min..max ms; else `dflt`. */
export function duration(v: Values, name: string, dflt: number, min: number, max: number): number {
  const x = v[name];
  if (x === undefined) return dflt;
  const m = typeof x === 'string' ? /^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$/.exec(x.trim()) : null;
  const ms = m ? Math.round(Number(m[1]) * (UNIT_MS[m[2] ?? 's'] as number)) : NaN;
  if (!(ms >= min && ms <= max)) throw new UsageError(`--${name} must be a duration such as 90s, 30m, 1h or 2d, from ${min / 1000} s to ${max / 86_400_000} days, got "${String(x)}"`);
  return ms;
}

export function hexKey(v: Values, name: string): Uint8Array {
  const s = need(v, name);
  if (!/^[0-9a-fA-F]{64}$/.test(s)) throw new UsageError(`--${name} must be 64 hex digits (an Ed25519 public key)`);
  return fromHex(s);
}
