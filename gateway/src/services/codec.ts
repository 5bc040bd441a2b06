/**
 * @module services/codec
 * The arguments and results of service ops are CBOR maps with small integer keys (SPEC §16.1):
 * builders and labelled readers for them. A reader throws LmError `schema` naming the op and the
 * field, so that a malformed request is answered with what was wrong.
 */
import { type CborValue, LmError, Reason } from '@livematrix/spec';

export type CborMap = ReadonlyMap<number | string, CborValue>;

/** A map of the given entries, leaving out the undefined ones. */
export function cmap(...entries: [number, CborValue | undefined][]): Map<number, CborValue> {
  const m = new Map<number, CborValue>();
  for (const [k, v] of entries) if (v !== undefined) m.set(k, v);
  return m;
}

/** A reader of one op's map: every accessor names the op and the field in its error. */
export class Fields {
  private readonly m: CborMap;

  constructor(v: CborValue, private readonly what: string) {
    if (!(v instanceof Map)) throw new LmError(Reason.schema, `${what}: expected a map`);
    this.m = v as CborMap;
  }

  private bad(k: number, expected: string): never {
    throw new LmError(Reason.schema, `${this.what}: field ${k} must be ${expected}`);
  }

  has(k: number): boolean {
    return this.m.has(k);
  }

  uint(k: number): number {
    const x = this.m.get(k);
    return typeof x === 'number' && Number.isSafeInteger(x) && x >= 0 ? x : this.bad(k, 'an unsigned integer');
  }

  /** A byte string of exactly `len` bytes, or of `[min, max]` bytes. */
  bytes(k: number, len: number | [number, number]): Uint8Array {
    const x = this.m.get(k);
    const [min, max] = typeof len === 'number' ? [len, len] : len;
    return x instanceof Uint8Array && x.length >= min && x.length <= max ? x : this.bad(k, min === max ? `a byte string of ${min} bytes` : `a byte string of ${min}..${max} bytes`);
  }

  optBytes(k: number, len: number | [number, number]): Uint8Array | undefined {
    return this.m.has(k) ? this.bytes(k, len) : undefined;
  }

  text(k: number, max: number): string {
    const x = this.m.get(k);
    return typeof x === 'string' && x.length <= max ? x : this.bad(k, `a text of at most ${max} characters`);
  }

  array(k: number, max: number): readonly CborValue[] {
    const x = this.m.get(k);
    return Array.isArray(x) && x.length <= max ? (x as readonly CborValue[]) : this.bad(k, `an array of at most ${max} items`);
  }
}

/** The items of an array entry as a tuple of known element types; throws `schema` otherwise. */
export function tupleOf(v: CborValue, what: string): readonly CborValue[] {
  if (!Array.isArray(v)) throw new LmError(Reason.schema, `${what}: expected an array`);
  return v as readonly CborValue[];
}

/** Splits concatenated 16-byte ids. */
export function splitIds(ids: Uint8Array, what: string): Uint8Array[] {
  if (ids.length % 16 !== 0) throw new LmError(Reason.schema, `${what}: ${ids.length} bytes is not a whole number of 16-byte ids`);
  const out: Uint8Array[] = [];
  for (let i = 0; i < ids.length; i += 16) out.push(ids.slice(i, i + 16));
  return out;
}

/** Concatenates byte strings. */
export function concat(parts: readonly Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
