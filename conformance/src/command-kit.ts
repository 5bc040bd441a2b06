/**
 * @module command-kit
 * What every profile's command shares: the shape of a profile entry, usage errors, option
 * readers. Kept apart from commands.ts, which imports every profile, so that a profile can use
 * these without an import cycle.
 */
import type { ParseArgsConfig } from 'node:util';
import { fromHex } from '@livematrix/spec';
import type { Report } from './report.js';

export type Values = Record<string, string | boolean | undefined>;

/** A usage error: the command line is wrong (exit code 2). */
export class UsageError extends Error {
  override name = 'UsageError';
}

export interface ProfileCommand {
  name: string;
  /** usage lines and what the profile does, for --help */
  usage: string;
  options: NonNullable<ParseArgsConfig['options']>;
  /** the tests of this profile with the IDs each declares (for `list` and the lint) */
  tests: () => readonly { id: string; title: string; covers: readonly string[] }[];
  run(values: Values, log: (line: string) => void): Promise<Report>;
}

export function need(values: Values, k: string): string {
  const v = values[k];
  if (typeof v !== 'string' || !v) throw new UsageError(`--${k} is required`);
  return v;
}

export function hexKey(values: Values, k: string): Uint8Array {
  const v = need(values, k);
  if (!/^[0-9a-fA-F]{64}$/.test(v)) throw new UsageError(`--${k} must be 64 hex digits`);
  return fromHex(v);
}
