/**
 * @module bytes
 * Small byte helpers shared by the reference modules.
 */
import { LmError, Reason } from './errors.js';

export { concatBytes, randomBytes } from '@noble/hashes/utils.js';

const te = new TextEncoder();
export const ascii = (s: string): Uint8Array => te.encode(s);

/** Bytes of the UTF-8 encoding of `s`: the unit of every text length limit ([LM-FRAME-11]). */
export function utf8Length(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length && (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      n += 4; // a surrogate pair: one code point of four bytes
      i++;
    } else n += 3; // a lone surrogate is encoded as U+FFFD, three bytes
  }
  return n;
}

/**
 * The longest prefix of `s` whose UTF-8 encoding fits `maxBytes`, never cutting a code point
 * ([LM-FRAME-11]): for a `detail` of at most 256 bytes.
 * @example clipUtf8('é'.repeat(200), 256).length // 128
 */
export function clipUtf8(s: string, maxBytes: number): string {
  if (utf8Length(s) <= maxBytes) return s;
  let out = '';
  let n = 0;
  for (const cp of s) {
    const len = utf8Length(cp);
    if (n + len > maxBytes) break;
    out += cp;
    n += len;
  }
  return out;
}

export function u32be(x: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, x >>> 0);
  return b;
}

export function u64be(x: number): Uint8Array {
  if (!Number.isSafeInteger(x) || x < 0) throw new LmError(Reason.schema, `u64be: ${x} is not a safe non-negative integer`);
  const b = new Uint8Array(8);
  const dv = new DataView(b.buffer);
  dv.setUint32(0, Math.floor(x / 0x100000000));
  dv.setUint32(4, x >>> 0);
  return b;
}

/** Constant-time equality of byte strings ([LM-SEC-2]). */
export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let d = 0;
  for (let i = 0; i < a.length; i++) d |= (a[i] as number) ^ (b[i] as number);
  return d === 0;
}

/** Overwrites with zeros ([LM-KEY-4]). */
export function wipe(...arrays: (Uint8Array | undefined)[]): void {
  for (const a of arrays) a?.fill(0);
}

export function toHex(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');
}

export function fromHex(s: string): Uint8Array {
  if (s.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(s)) throw new LmError(Reason.schema, `not a hex string: "${s.slice(0, 32)}"`);
  return new Uint8Array(Buffer.from(s, 'hex'));
}

/** Asserts a byte string of an exact length, with a labelled message (TypeError/RangeError style). */
export function abytes(label: string, b: unknown, len?: number): Uint8Array {
  if (!(b instanceof Uint8Array)) throw new LmError(Reason.schema, `"${label}" expected Uint8Array, got ${typeof b}`);
  if (len !== undefined && b.length !== len) throw new LmError(Reason.schema, `"${label}" expected Uint8Array of length ${len}, got length=${b.length}`);
  return b;
}
