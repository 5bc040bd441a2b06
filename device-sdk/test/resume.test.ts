/**
 * Resume without the plaintext ([LM-DLV-20], [LM-DLV-21], [LM-DLV-22]), without a broker: the
 * SHA-256 state taken out and put back (FIPS 180-4 known answers, and equality with OpenSSL's
 * SHA-256 over every split), masked and tagged points, the choice of a resume point (a point whose
 * tag fails is skipped), points kept spread over time, the licence store that
 * keeps points beside the tickets and erases them with the print, the bounded write rate, and
 * the delivery phase carrying the end digest across a crash ([LM-DLV-6]): it verifies from a kept
 * point, skips one that was altered for an older one (or 0), and fails with `digest` should a
 * wrong state ever get past the tags, for plain and protected jobs.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  LmError, Reason, type RevisionKeys, type SessionParams, type SignedTx, equalBytes, fromHex, identityKeyPair, keyedJobDigest, pack, randomBytes, sealChunk, toHex, wrapChunkKey,
} from '@livematrix/spec';
import { ManualClock } from '@livematrix/testkit';
import { Delivery, contentLayer } from '../src/delivery.js';
import { type LicenceRecord, Licences, type LicenceStore, fileLicenceStore, memoryLicenceStore } from '../src/licences.js';
import type { ChunkState } from '../src/receive.js';
import {
  type HashPoint, POINTS_KEPT, type SealedPoint, ResumableSha256, digestCheckpoints, maskPoint, openPoint, pickPoint, pointKeys, pointMaskKey, pointStep, pointTag,
  retainPoints, sealPoint,
} from '../src/resume.js';

/** the write interval the tests run with (a device's default is POINT_SAVE_MS, 10 s) */
const POINT_SAVE_MS = 1000;
import { revisionPolicy } from '../src/revisions.js';

const sha256 = (b: Uint8Array) => new Uint8Array(createHash('sha256').update(b).digest());
const T0 = 1_800_000_000_000;
const HOUR = 3600_000;
const identity = identityKeyPair();

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'lm-resume-'));
  dirs.push(d);
  return d;
}

describe('SHA-256 state out and back in (FIPS 180-4 §6.2.2) [LM-DLV-20]', () => {
  it('gives H(0) before any block and H(1) of the padded block of "abc" after it (FIPS 180-4 example)', () => {
    const h0 = new ResumableSha256().point();
    expect(h0 && toHex(h0.h)).toBe('6a09e667bb67ae853c6ef372a54ff53a510e527f9b05688c1f83d9ab5be0cd19');
    // "abc" padded is one block; hashed as data, the state after it is SHA-256("abc")
    const block = new Uint8Array(64);
    block.set([0x61, 0x62, 0x63, 0x80]);
    block[63] = 24;
    const h1 = new ResumableSha256().update(block).point();
    expect(h1).toEqual({ n: 64, h: fromHex('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad') });
  });

  it('continues from a point to the digest OpenSSL gives of the whole message, for every block boundary', () => {
    const msg = randomBytes(64 * 9 + 37);
    const want = sha256(msg);
    for (let n = 0; n <= 64 * 9; n += 64) {
      const p = new ResumableSha256().update(msg.subarray(0, n)).point();
      expect(p?.n).toBe(n);
      const got = ResumableSha256.at(p!).update(msg.subarray(n)).digest();
      expect(equalBytes(got, want)).toBe(true);
    }
  });

  it('has no point between blocks, and refuses a point of the wrong shape', () => {
    expect(new ResumableSha256().update(new Uint8Array(65)).point()).toBeUndefined();
    expect(() => ResumableSha256.at({ n: 100, h: new Uint8Array(32) })).toThrow(RangeError);
    expect(() => ResumableSha256.at({ n: 128, h: new Uint8Array(31) })).toThrow(RangeError);
    expect(ResumableSha256.at({ n: 128, h: new Uint8Array(32) })).toBeInstanceOf(ResumableSha256);
  });
});

describe('masked points and the resume point [LM-DLV-20] [LM-DLV-22]', () => {
  it('masks under a key of the licence: the stored value is not the state, and unmasks to it', () => {
    const mk = pointMaskKey(randomBytes(32));
    const p = new ResumableSha256().update(randomBytes(256)).point()!;
    const m = maskPoint(mk, p);
    expect(m.n).toBe(256);
    expect(equalBytes(m.h, p.h)).toBe(false);
    expect(maskPoint(mk, m)).toEqual(p);
    // another licence's key unmasks to something else; the same state at another n masks differently
    expect(equalBytes(maskPoint(pointMaskKey(randomBytes(32)), m).h, p.h)).toBe(false);
    expect(equalBytes(maskPoint(mk, { n: 320, h: p.h }).h, m.h)).toBe(false);
  });

  it('steps by lcm(C, 64) and picks the largest kept point at most the consumer\'s count and a multiple of C', () => {
    expect([pointStep(256), pointStep(96), pointStep(8176), pointStep(3069)]).toEqual([256, 192, 32704, 196416]);
    const keys = pointKeys(randomBytes(32));
    const at = (n: number): SealedPoint => sealPoint(keys, { n, h: new Uint8Array(32) });
    const kept = [at(192), at(384), at(576), at(768)];
    expect(pickPoint(kept, 700, 96, keys)).toEqual({ n: 576, h: new Uint8Array(32) }); // unmasked
    expect(pickPoint(kept, 768, 96, keys)?.n).toBe(768);
    expect(pickPoint(kept, 700, 128, keys)?.n).toBe(384); // a session of another C: only points on its chunks
    expect(pickPoint(kept, 191, 96, keys)).toBeUndefined();
    expect(pickPoint([], 10_000, 96, keys)).toBeUndefined();
  });

  it('tags each point: one whose n, masked h or tag changed is skipped for the next older one, and reported [LM-DLV-22]', () => {
    const licence = randomBytes(32);
    const keys = pointKeys(licence);
    const real = (n: number) => new ResumableSha256().update(new Uint8Array(n).fill(7)).point()!;
    const sealed = [192, 384, 576].map((n) => sealPoint(keys, real(n)));
    expect(openPoint(keys, sealed[2]!)).toEqual(real(576));
    const flip = (b: Uint8Array, i: number) => b.map((x, j) => (j === i ? x ^ 1 : x));
    const bad: number[] = [];
    // one bit of the masked state (an SD card's flip)
    expect(pickPoint([sealed[0]!, sealed[1]!, { ...sealed[2]!, h: flip(sealed[2]!.h, 31) }], 600, 192, keys, (n) => bad.push(n))).toEqual(real(384));
    expect(bad).toEqual([576]);
    // a bit of the tag; a point moved to another n
    expect(pickPoint([sealed[0]!, { ...sealed[1]!, t: flip(sealed[1]!.t, 0) }], 600, 192, keys, (n) => bad.push(n))).toEqual(real(192));
    expect(pickPoint([{ ...sealed[0]!, n: 384 }], 600, 192, keys, (n) => bad.push(n))).toBeUndefined();
    expect(bad).toEqual([576, 384, 384]);
    // altered with its tag recomputed: without the licence's tag key the tag is wrong. The mask
    // key alone does not make a tag; the keys of another licence do not either
    const forged = maskPoint(pointMaskKey(licence), { n: 576, h: randomBytes(32) });
    expect(openPoint(keys, { ...forged, t: pointTag(pointMaskKey(licence), forged) })).toBeUndefined();
    expect(openPoint(keys, { ...forged, t: pointTag(pointKeys(randomBytes(32)).subarray(32), forged) })).toBeUndefined();
    // the tag key of this licence would make it pass: it is the key that keeps it out
    expect(openPoint(keys, { ...forged, t: pointTag(keys.subarray(32), forged) })).toBeDefined();
  });

  it('keeps at most POINTS_KEPT points spread over time: for every lag of A saves up to 2^8 a point between A and 3A saves old [LM-DLV-20]', () => {
    let list: { s: number }[] = [];
    let worst = 0;
    let longest = 0;
    for (let s = 1; s <= 2000; s++) {
      list = retainPoints([...list, { s }]);
      longest = Math.max(longest, list.length);
      expect(list.some((p) => p.s === s)).toBe(true); // the newest always
      if (s <= 2 * 256) continue; // the bands are filled
      for (let a = 1; a <= 256; a++) {
        const older = list.map((p) => s - p.s).filter((age) => age >= a);
        expect(older.length).toBeGreaterThan(0);
        worst = Math.max(worst, Math.min(...older) / a);
      }
    }
    expect(longest).toBe(POINTS_KEPT);
    expect(worst).toBeLessThan(3);
    // (the newest POINTS_KEPT alone would leave a lag of POINTS_KEPT saves with none.) Of 40 saves: the newest, the oldest of each band
    expect(retainPoints(Array.from({ length: 40 }, (_, i) => ({ s: i + 1 }))).map((p) => 40 - p.s).sort((x, y) => x - y)).toEqual([0, 1, 3, 7, 15, 31, 39]);
  });
});

describe('points beside the tickets [LM-DLV-20] [LM-DLV-21] [LM-LIC-2]', () => {
  const txh = toHex(randomBytes(32));
  const point = (n: number): SealedPoint => ({ n, h: randomBytes(32), t: randomBytes(32) });

  it('keeps the newest points of a running or held print, one per count, across a restart of the file store', () => {
    const dir = tempDir();
    const clock = new ManualClock(T0);
    const l = new Licences(fileLicenceStore(dir), identity, 'p1', clock.clock);
    const sid = toHex(randomBytes(16));
    l.keepPoint(txh, point(64)); // no ticket yet: nothing resumes, nothing is kept
    expect(l.points(txh)).toEqual([]);
    l.count(txh, 1, { sid, off: 0, exp: T0 + HOUR });
    for (let i = 1; i <= POINTS_KEPT + 3; i++) l.keepPoint(txh, point(64 * i));
    const again = point(64 * (POINTS_KEPT + 3));
    l.keepPoint(txh, again);
    const reloaded = new Licences(fileLicenceStore(dir), identity, 'p1', clock.clock); // the process restarted
    const kept = reloaded.points(txh);
    // 14 saves (the last again at 832, now the newest): it, and the oldest of each band of ages
    // [2,4) 704, [4,8) 576, [8,16) 64; the band [1,2) held 832 before its second save
    expect(kept.map((p) => p.n)).toEqual([64, 576, 704, 832]);
    expect(kept.at(-1)).toEqual(again);
    expect(reloaded.held(txh)).toBeDefined(); // its running ticket is held now, and the points with it
  });

  it('erases them when the print completes, and when its ticket expires, not when it is cut off [LM-DLV-21]', () => {
    const clock = new ManualClock(T0);
    const l = new Licences(memoryLicenceStore(), identity, 'p1', clock.clock);
    const [a, b] = [toHex(randomBytes(32)), toHex(randomBytes(32))];
    const [sa, sb] = [toHex(randomBytes(16)), toHex(randomBytes(16))];
    l.count(a, 1, { sid: sa, off: 0, exp: T0 + HOUR });
    l.count(b, 1, { sid: sb, off: 0, exp: T0 + HOUR });
    l.keepPoint(a, point(128));
    l.keepPoint(b, point(128));
    l.hold(sa, 200);
    expect(l.points(a)).toHaveLength(1); // cut off: the points resume it
    l.close(sb);
    expect(l.points(b)).toEqual([]); // completed: nothing of it stays
    clock.advance(HOUR + 8 * 24 * HOUR); // past the held ticket's grace
    l.keepPoint(b, point(64)); // any change drops what expired
    expect(l.points(a)).toEqual([]);
  });
});

describe('writes at a bounded rate [LM-DLV-20]', () => {
  it('writes a point at most once per second, the newest on flush, nothing after destroy, and erases its key', () => {
    const clock = new ManualClock(T0);
    const written: number[] = [];
    const mask = pointKeys(randomBytes(32));
    const cp = digestCheckpoints({ txh: 'x', chunk: 256, start: undefined, keys: mask, clock: clock.clock, store: { keepPoint: (_t, p) => void written.push(p.n) }, interval: POINT_SAVE_MS });
    expect(cp.step).toBe(256);
    const p = (n: number): HashPoint => ({ n, h: new Uint8Array(32) });
    cp.passed(p(256)); // the first point goes at once
    clock.advance(POINT_SAVE_MS / 2);
    cp.passed(p(512));
    expect(written).toEqual([256]);
    clock.advance(POINT_SAVE_MS / 2);
    cp.passed(p(768));
    expect(written).toEqual([256, 768]);
    clock.advance(10);
    cp.passed(p(1024));
    cp.flush(); // the session is cut off: its newest point goes too
    expect(written).toEqual([256, 768, 1024]);
    cp.flush();
    expect(written).toEqual([256, 768, 1024]); // nothing new, nothing written
    cp.destroy();
    expect(mask.every((x) => x === 0)).toBe(true);
    clock.advance(POINT_SAVE_MS);
    cp.passed(p(1280));
    cp.flush();
    expect(written).toEqual([256, 768, 1024]);
  });

  it('goes on when a write fails: the next point is written once the store takes it again', () => {
    const clock = new ManualClock(T0);
    let failing = true;
    const written: number[] = [];
    const cp = digestCheckpoints({
      txh: 'x', chunk: 256, start: undefined, keys: randomBytes(64), clock: clock.clock, interval: POINT_SAVE_MS,
      store: { keepPoint: (_t, p) => (failing ? (() => { throw new Error('disk full'); })() : void written.push(p.n)) },
    });
    cp.passed({ n: 256, h: new Uint8Array(32) });
    failing = false;
    clock.advance(POINT_SAVE_MS);
    cp.passed({ n: 512, h: new Uint8Array(32) });
    expect(written).toEqual([512]);
  });
});

// ---- the delivery phase across a crash ----
const W = 20;
const PERIOD = 1000;
const EPOCH = 1_800_000_000_000;
const NOW = EPOCH + 10 * PERIOD + 500;
const C = 96; // lcm(96, 64) = 192: a point every second chunk
const params: SessionParams = { suite: 3, w: W, L: 4, period: PERIOD, epoch: EPOCH, grace: 250, r0: 5, chunk: C, symbolsPerFrame: 4096, wt: 16 };
const wk = randomBytes(32);
const keysOf = (rev: number): RevisionKeys => ({ revision: rev, hk: new Uint8Array(32), wk });

/** A job of `n` chunks of C bytes, a transaction of its digest (keyed for a protected job, [LM-PROT-4]), and its ticket in `licences`. */
function job(n: number, protectedJob: boolean) {
  const plain = randomBytes(n * C);
  const licence = randomBytes(32);
  const kd = randomBytes(32);
  const jd = protectedJob ? keyedJobDigest(kd, sha256(plain)) : sha256(plain);
  const tx = { body: { jd, size: plain.length } } as unknown as SignedTx;
  const txh = toHex(randomBytes(32));
  return { plain, licence, kd, jd, tx, txh, protectedJob };
}
type Job = ReturnType<typeof job>;

/** One session of the job from `from` (a device process): its delivery phase fed every chunk and key. */
function session(j: Job, licences: Licences, clock: ManualClock, from: number, start: HashPoint | undefined) {
  const sid = randomBytes(16);
  const chunks = new Map<number, ChunkState>();
  const keys = new Map<number, Uint8Array>();
  for (let i = from / C; i < j.plain.length / C; i++) {
    const k = randomBytes(32);
    const ct = sealChunk(k, sid, i, j.plain.subarray(i * C, (i + 1) * C));
    const symbols = pack(ct, W);
    chunks.set(i, { ctlen: ct.length, m: symbols.length, symbols, have: new Uint8Array(symbols.length).fill(1), missing: 0 });
    keys.set(i, k);
  }
  const checkpoints = digestCheckpoints({ txh: j.txh, chunk: C, start, keys: pointKeys(j.licence), clock: clock.clock, store: licences, interval: POINT_SAVE_MS });
  const pushed: Uint8Array[] = [];
  const d = new Delivery({
    sid, params, tx: j.tx, from, clock: () => NOW, revisions: revisionPolicy(), content: contentLayer(), checkpoints,
    chunks: { has: (i) => chunks.has(i), complete: (i) => chunks.get(i), release: (i) => void chunks.delete(i) },
    keys: (rev) => (rev >= 9 ? keysOf(rev) : undefined), push: (pt) => void pushed.push(pt),
    ...(j.protectedJob ? { digestKey: j.kd.slice() } : {}),
  });
  for (const [i, k] of keys) d.onKey({ sid, chunk: i, rev: 10, wrapped: wrapChunkKey(wk, sid, i, k) });
  d.deliver();
  d.onEnd({ bytes: j.plain.length, digest: j.jd });
  return { d, pushed, checkpoints };
}

/**
 * The first process takes `took` bytes (whole chunks), a point a second apart, and dies without
 * a word (no flush: the store has what the rate let through); a second process on the same
 * store resumes from what the consumer reports, as the OFFER desk does.
 */
function crashAndResume(j: Job, store: LicenceStore, tamper?: (r: LicenceRecord) => void) {
  const clock = new ManualClock(T0);
  const first = new Licences(store, identity, 'p1', clock.clock);
  first.count(j.txh, 1, { sid: toHex(randomBytes(16)), off: 0, exp: T0 + HOUR });
  const s1 = session(j, first, clock, 0, undefined);
  const took = 7 * C + 10; // the machine made 7 chunks and 10 bytes of the 8th
  for (const b of s1.pushed.slice(0, 7)) {
    s1.d.consume(b);
    clock.advance(POINT_SAVE_MS);
  }
  // the process is gone: s1 is never flushed or wiped
  if (tamper) {
    const r = store.load()!;
    tamper(r);
    store.save(r);
  }
  const second = new Licences(store, identity, 'p1', clock.clock);
  const bad: number[] = [];
  const kept = pickPoint(second.points(j.txh), took, C, pointKeys(j.licence), (n) => bad.push(n));
  const from = kept?.n ?? 0;
  const s2 = session(j, second, clock, from, kept);
  let d: Uint8Array | undefined;
  let err: unknown;
  try {
    for (const b of s2.pushed) {
      s2.d.consume(b);
      d = s2.d.finish() ?? d;
    }
  } catch (e) {
    err = e;
  }
  return { digest: d, err, from, bad };
}

describe('the end digest across a crash, from a kept point [LM-DLV-20] [LM-DLV-6]', () => {
  for (const protectedJob of [false, true]) {
    const kind = protectedJob ? 'a protected job (keyed digest, [LM-PROT-4])' : 'a job';
    it(`${kind}: verifies from the kept point with nothing of the first ${6 * C} bytes read back`, () => {
      const j = job(12, protectedJob);
      const { digest, err, from, bad } = crashAndResume(j, memoryLicenceStore());
      expect(from).toBe(6 * C); // 672 = 7·96 is no multiple of 64; 576 = 3·192 is the newest point
      expect(bad).toEqual([]);
      expect(err).toBeUndefined();
      expect(digest && equalBytes(digest, j.jd)).toBe(true);
    });

    it(`${kind}: skips a kept point that was altered (its tag fails) and resumes from an older one to the right digest [LM-DLV-22]`, () => {
      const j = job(12, protectedJob);
      const { digest, err, from, bad } = crashAndResume(j, memoryLicenceStore(), (r) => {
        const newest = r.points![j.txh]!.find((p) => p.n === 6 * C)!;
        newest.h = toHex(fromHex(newest.h).map((x, i) => (i === 31 ? x ^ 1 : x))); // one bit of H(i)
      });
      expect(bad).toEqual([6 * C]);
      expect(from).toBe(4 * C);
      expect(err).toBeUndefined();
      expect(digest && equalBytes(digest, j.jd)).toBe(true);
    });

    it(`${kind}: with every point altered, resumes from 0 to the right digest [LM-DLV-22]`, () => {
      const j = job(12, protectedJob);
      const { digest, err, from, bad } = crashAndResume(j, memoryLicenceStore(), (r) => {
        for (const p of r.points![j.txh]!) p.t = toHex(fromHex(p.t!).map((x, i) => (i === 0 ? x ^ 0x80 : x)));
      });
      expect(bad).toEqual([6 * C, 4 * C, 2 * C]);
      expect(from).toBe(0);
      expect(err).toBeUndefined();
      expect(digest && equalBytes(digest, j.jd)).toBe(true);
    });

    it(`${kind}: a wrong state that got past the tags still fails the end digest with digest, never completes [LM-DLV-6]`, () => {
      const j = job(12, protectedJob);
      const licences = new Licences(memoryLicenceStore(), identity, 'p1', new ManualClock(T0).clock);
      licences.count(j.txh, 1, { sid: toHex(randomBytes(16)), off: 0, exp: T0 + HOUR });
      const real = new ResumableSha256().update(j.plain.subarray(0, 6 * C)).point()!;
      const wrong = { n: real.n, h: real.h.map((x, i) => (i === 31 ? x ^ 1 : x)) };
      const s2 = session(j, licences, new ManualClock(T0), 6 * C, wrong);
      const e = (() => {
        try {
          for (const b of s2.pushed) {
            s2.d.consume(b);
            s2.d.finish();
          }
        } catch (x) {
          return x;
        }
        return undefined;
      })();
      expect(e).toBeInstanceOf(LmError);
      expect((e as LmError).code).toBe(Reason.digest);
    });
  }

  it('stores no point in the clear: the file holds the masked values, which unmask with the licence to the real state [LM-DLV-22]', () => {
    const dir = tempDir();
    const j = job(12, false);
    crashAndResume(j, fileLicenceStore(dir));
    const text = readFileSync(join(dir, 'licences.json'), 'utf8');
    const stored = (JSON.parse(text) as LicenceRecord).points![j.txh]!;
    expect(stored.length).toBeGreaterThan(0);
    const keys = pointKeys(j.licence);
    for (const s of stored) {
      const real = new ResumableSha256().update(j.plain.subarray(0, s.n)).point()!;
      expect(text.includes(toHex(real.h))).toBe(false);
      expect(maskPoint(pointMaskKey(j.licence), { n: s.n, h: fromHex(s.h) })).toEqual(real);
      expect(openPoint(keys, { n: s.n, h: fromHex(s.h), t: fromHex(s.t!) })).toEqual(real);
    }
  });
});
