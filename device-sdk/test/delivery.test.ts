/**
 * The delivery phase without a broker: chunk keys and their revisions ([LM-AEAD-2], [LM-REV-2]),
 * padding and AEAD checks ([LM-PACK-3], [LM-AEAD-4]), delivery in order and the end digest
 * ([LM-DLV-6]), consumption ([LM-DLV-4]) and the device's rate alarm ([LM-ALARM-2]).
 */
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { LmError, Reason, type RevisionKeys, type SessionParams, type SignedTx, pack, randomBytes, sealChunk, wrapChunkKey } from '@livematrix/spec';
import { Delivery, contentLayer, rateAlarm } from '../src/delivery.js';
import type { ChunkState } from '../src/receive.js';
import { revisionPolicy } from '../src/revisions.js';

const W = 20;
const PERIOD = 1000;
const EPOCH = 1_800_000_000_000;
const NOW = EPOCH + 10 * PERIOD + 500; // revision 10
const params: SessionParams = { suite: 3, w: W, L: 4, period: PERIOD, epoch: EPOCH, grace: 250, r0: 5, chunk: 20, symbolsPerFrame: 4096, wt: 16 };
const sid = randomBytes(16);
const wk = randomBytes(32);
const keysOf = (rev: number): RevisionKeys => ({ revision: rev, hk: new Uint8Array(32), wk });

/** A job of `n` chunks of 20 bytes (36 bytes sealed: 15 symbols of 20 bits, 12 bits of padding). */
function job(n: number) {
  const plain = Array.from({ length: n }, () => randomBytes(params.chunk));
  const keys = plain.map(() => randomBytes(32));
  const chunks = new Map<number, ChunkState>();
  plain.forEach((pt, j) => {
    const ct = sealChunk(keys[j]!, sid, j, pt);
    const symbols = pack(ct, W);
    chunks.set(j, { ctlen: ct.length, m: symbols.length, symbols, have: new Uint8Array(symbols.length).fill(1), missing: 0 });
  });
  const all = Buffer.concat(plain);
  const jd = new Uint8Array(createHash('sha256').update(all).digest());
  const tx = { body: { jd, size: all.length } } as unknown as SignedTx;
  const pushed: Uint8Array[] = [];
  const d = new Delivery({
    sid, params, tx, from: 0, clock: () => NOW, revisions: revisionPolicy(), content: contentLayer(),
    chunks: { has: (j) => chunks.has(j), complete: (j) => chunks.get(j), release: (j) => void chunks.delete(j) },
    keys: (rev) => (rev >= 9 ? keysOf(rev) : undefined), push: (pt) => void pushed.push(pt.slice()),
  });
  const key = (j: number, rev = 10) => d.onKey({ sid, chunk: j, rev, wrapped: wrapChunkKey(wk, sid, j, keys[j]!) });
  return { plain, chunks, jd, d, pushed, key };
}

describe('keys and decryption [LM-AEAD-2] [LM-AEAD-4] [LM-DLV-6]', () => {
  it('decrypts complete chunks in order, whatever order their keys come in', () => {
    const { plain, chunks, d, pushed, key } = job(3);
    expect(key(1)).toEqual({ kind: 'taken' });
    expect(key(2)).toEqual({ kind: 'taken' });
    d.deliver();
    expect(pushed).toEqual([]);
    key(0);
    d.deliver();
    expect(pushed).toEqual(plain);
    expect(d.nextChunk).toBe(3);
    expect(chunks.size).toBe(0); // delivered chunks are released
    expect(d.progress()).toEqual({ from: 0, delivered: 60, consumed: 0 });
  });

  it('refuses a chunk whose last symbol has non-zero padding and delivers nothing of it [LM-PACK-3]', () => {
    const { chunks, d, pushed, key } = job(1);
    const ch = chunks.get(0)!;
    expect(ch.m * W - 8 * ch.ctlen).toBe(12);
    ch.symbols[ch.m - 1] = (ch.symbols[ch.m - 1] as number) | 1;
    key(0);
    const err = (() => {
      try {
        d.deliver();
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(LmError);
    expect((err as LmError).code).toBe(Reason.padding);
    expect(pushed).toEqual([]);
  });

  it('refuses a chunk whose AEAD fails', () => {
    const { chunks, d, pushed, key } = job(1);
    const s = chunks.get(0)!.symbols;
    s[2] = (s[2] as number) ^ (1 << 19);
    key(0);
    expect(() => d.deliver()).toThrow(expect.objectContaining({ code: Reason.auth }));
    expect(pushed).toEqual([]);
  });

  it('refuses KEY frames of expired and future revisions, and reports a bad wrap as tampering [LM-REV-2]', () => {
    const { d, key } = job(1);
    expect(key(0, 8)).toMatchObject({ kind: 'refused', code: Reason.revExpired });
    expect(key(0, 11)).toMatchObject({ kind: 'refused', code: Reason.revFuture });
    expect(key(0, 9)).toEqual({ kind: 'taken' }); // c - 1 is served
    const bad = d.onKey({ sid, chunk: 0, rev: 10, wrapped: randomBytes(48) });
    expect(bad.kind).toBe('tampered');
    expect(bad.kind === 'tampered' && bad.error.code).toBe(Reason.auth);
  });

  it('ignores the key of a chunk it has no hints of', () => {
    const { chunks, key } = job(2);
    chunks.delete(1);
    expect(key(1)).toEqual({ kind: 'ignored' });
  });
});

describe('consumption and the end digest [LM-DLV-4] [LM-DLV-6]', () => {
  it('completes only when END came and the consumer took every byte; the digest is the job\'s', () => {
    const { plain, jd, d, pushed, key } = job(2);
    key(0);
    key(1);
    d.deliver();
    d.onEnd({ bytes: 40, digest: jd });
    expect(d.finish()).toBeUndefined();
    expect(d.consume(pushed[0]!)).toBe(20);
    expect(pushed[0]!.every((b) => b === 0)).toBe(true); // taken plaintext is wiped
    expect(d.finish()).toBeUndefined();
    d.consume(pushed[1]!);
    expect(d.progress()).toEqual({ from: 0, delivered: 40, consumed: 40 });
    expect(d.finish()).toEqual(jd);
    expect(plain).toHaveLength(2);
  });

  it('fails with digest when END disagrees', () => {
    const { d, pushed, key } = job(1);
    key(0);
    d.deliver();
    d.onEnd({ bytes: 20, digest: randomBytes(32) });
    d.consume(pushed[0]!);
    expect(() => d.finish()).toThrow(expect.objectContaining({ code: Reason.digest }));
  });
});

describe('rate alarm [LM-ALARM-2]', () => {
  it('allows rate · (t − t_start + G) / 1000 + burst from the first HINTS frame on', () => {
    const pace = rateAlarm({ rate: 1000, burst: 500, grace: 250 });
    expect(pace.check(1e9, 0)).toBeUndefined(); // no HINTS yet
    pace.start(10_000);
    pace.start(20_000); // t_start stays
    expect(pace.check(1750, 11_000)).toBeUndefined();
    const x = pace.check(1751, 11_000);
    expect(x).toMatchObject({ taken: 1751, allowed: 1750 });
    expect(x?.detail).toMatch(/took 1751 bytes in 1\.0 s; the transaction allows 1000 bytes\/s plus a burst of 500/);
  });
});
