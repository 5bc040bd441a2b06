/**
 * @module aead
 * The content layer of SPEC.md §7.4 and §7.5: ChaCha20-Poly1305 chunks, chunk-key wraps under
 * revision wrap keys, telemetry encryption.
 */
import { createCipheriv, createDecipheriv } from 'node:crypto';
import { abytes, ascii, concatBytes, u64be } from './bytes.js';
import { LmError, Reason } from './errors.js';

export const TAG_LENGTH = 16;

function nonceOf(j: number): Uint8Array {
  return concatBytes(new Uint8Array(4), u64be(j));
}

// RFC 8439 ChaCha20-Poly1305 from OpenSSL (node:crypto): the same bytes as @noble/ciphers (the
// vectors check both), several times faster on a 12 KiB chunk.
/** ChaCha20-Poly1305 seal (RFC 8439): ciphertext ‖ tag. Shared by the content layers of SPEC §7.4 and §16. @internal */
export function seal(key: Uint8Array, nonce: Uint8Array, aad: Uint8Array, pt: Uint8Array): Uint8Array {
  const c = createCipheriv('chacha20-poly1305', key, nonce, { authTagLength: TAG_LENGTH });
  c.setAAD(aad, { plaintextLength: pt.length });
  const body = c.update(pt);
  c.final();
  const out = new Uint8Array(pt.length + TAG_LENGTH);
  out.set(body);
  out.set(c.getAuthTag(), pt.length);
  return out;
}

/** ChaCha20-Poly1305 open; LmError `auth` (and nothing of the plaintext) when the tag does not verify. @internal */
export function open(key: Uint8Array, nonce: Uint8Array, ct: Uint8Array, aad: Uint8Array, what: string): Uint8Array {
  if (ct.length < TAG_LENGTH) throw new LmError(Reason.auth, `${what}: ${ct.length} bytes is shorter than the tag`);
  const n = ct.length - TAG_LENGTH;
  const d = createDecipheriv('chacha20-poly1305', key, nonce, { authTagLength: TAG_LENGTH });
  d.setAAD(aad, { plaintextLength: n });
  d.setAuthTag(ct.subarray(n));
  const pt = new Uint8Array(n);
  pt.set(d.update(ct.subarray(0, n)));
  try {
    d.final();
  } catch {
    pt.fill(0); // nothing of a chunk that does not verify leaves here
    throw new LmError(Reason.auth, `${what}: authentication tag does not verify`);
  }
  return pt;
}

const chunkAad = (sid: Uint8Array, j: number): Uint8Array => concatBytes(ascii('lm1 chunk'), abytes('sid', sid, 16), u64be(j));
const wrapAad = (sid: Uint8Array, j: number): Uint8Array => concatBytes(ascii('lm1 wrap'), abytes('sid', sid, 16), u64be(j));
const telAad = (sid: Uint8Array, seq: number): Uint8Array => concatBytes(ascii('lm1 telemetry'), abytes('sid', sid, 16), u64be(seq));

/** ct_j of [LM-AEAD-1]. */
export function sealChunk(chunkKey: Uint8Array, sid: Uint8Array, j: number, plaintext: Uint8Array): Uint8Array {
  return seal(abytes('chunk key', chunkKey, 32), nonceOf(j), chunkAad(sid, j), plaintext);
}

export function openChunk(chunkKey: Uint8Array, sid: Uint8Array, j: number, ct: Uint8Array): Uint8Array {
  return open(abytes('chunk key', chunkKey, 32), nonceOf(j), ct, chunkAad(sid, j), `chunk ${j} ([LM-AEAD-4])`);
}

/** The wrapped chunk key of [LM-AEAD-2]: 48 bytes. */
export function wrapChunkKey(wk: Uint8Array, sid: Uint8Array, j: number, chunkKey: Uint8Array): Uint8Array {
  return seal(abytes('wrap key', wk, 32), nonceOf(j), wrapAad(sid, j), abytes('chunk key', chunkKey, 32));
}

export function unwrapChunkKey(wk: Uint8Array, sid: Uint8Array, j: number, wrapped: Uint8Array): Uint8Array {
  abytes('wrapped key', wrapped, 48);
  return open(abytes('wrap key', wk, 32), nonceOf(j), wrapped, wrapAad(sid, j), `key wrap of chunk ${j} ([LM-AEAD-2])`);
}

/** Largest telemetry payload, bytes ([LM-TEL-1]). */
export const TELEMETRY_MAX = 4096;

/** Telemetry ciphertext of [LM-TEL-1]; a payload over TELEMETRY_MAX bytes is `too-large`. */
export function sealTelemetry(wk: Uint8Array, sid: Uint8Array, seq: number, payload: Uint8Array): Uint8Array {
  if (payload.length > TELEMETRY_MAX) throw new LmError(Reason.tooLarge, `telemetry payload of ${payload.length} bytes; at most ${TELEMETRY_MAX} ([LM-TEL-1])`);
  return seal(abytes('wrap key', wk, 32), nonceOf(seq), telAad(sid, seq), payload);
}

/** Opens telemetry ([LM-TEL-2]); a ciphertext of a payload over TELEMETRY_MAX bytes is `too-large` before it is opened. */
export function openTelemetry(wk: Uint8Array, sid: Uint8Array, seq: number, ct: Uint8Array): Uint8Array {
  if (ct.length > TELEMETRY_MAX + TAG_LENGTH) throw new LmError(Reason.tooLarge, `telemetry ciphertext of ${ct.length} bytes; a payload is at most ${TELEMETRY_MAX} ([LM-TEL-1])`);
  return open(abytes('wrap key', wk, 32), nonceOf(seq), ct, telAad(sid, seq), `telemetry ${seq} ([LM-TEL-2])`);
}
