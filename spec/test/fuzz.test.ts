/**
 * Fuzz of the frame decoder ([LM-CBOR-6], [LM-FRAME-1]): 100,000 random and mutated inputs.
 * Every failure must be an LmError with a reason code of SPEC.md §7.6, and memory must stay
 * bounded. Deterministic (seeded) so a failure reproduces.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { LmError, decodeCbor, decodeFrame, encodeCbor, fromHex, isReasonCode } from '../src/index.js';

/** xorshift32: a small seeded generator, so every run fuzzes the same inputs. */
function rng(seed: number) {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x;
  };
}

const seeds: Uint8Array[] = (JSON.parse(readFileSync(join(import.meta.dirname, '..', 'vectors', 'v1', 'frames.json'), 'utf8')) as { testGroups: { tests: { hex: string }[] }[] })
  .testGroups.flatMap((g) => g.tests.map((t) => fromHex(t.hex)))
  .filter((b) => b.length <= 65536);

// Interesting CBOR heads: huge lengths, indefinite, tags, floats, deep nesting, breaks.
const HEADS = ['5bffffffffffffffff', '9bffffffffffffffff', 'bbffffffffffffffff', '7a7fffffff', '5f', '9f', 'bf', 'ff', 'c0', 'd818', 'f97e00', 'fb7ff8000000000000', '1bffffffffffffffff', '3bffffffffffffffff', '81'.repeat(20), 'a1'.repeat(20), 'f7', 'f818', '1c', '5c'].map(fromHex);

function mutate(next: () => number, src: Uint8Array): Uint8Array {
  const r = next() % 8;
  const b = src.slice();
  const at = b.length ? next() % b.length : 0;
  switch (r) {
    case 0: // bit flips
      for (let i = 0, n = 1 + (next() % 4); i < n && b.length; i++) b[next() % b.length]! ^= 1 << (next() % 8);
      return b;
    case 1: // truncate
      return b.subarray(0, next() % (b.length + 1));
    case 2: // insert random bytes
      return concat(b.subarray(0, at), randomBytes(next, 1 + (next() % 8)), b.subarray(at));
    case 3: // delete a span
      return concat(b.subarray(0, at), b.subarray(Math.min(b.length, at + 1 + (next() % 8))));
    case 4: // splice an interesting head
      return concat(b.subarray(0, at), HEADS[next() % HEADS.length]!, b.subarray(at));
    case 5: // overwrite a byte with a boundary value
      if (b.length) b[at] = [0x00, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1f, 0x7f, 0x80, 0xff][next() % 10]!;
      return b;
    case 6: // splice two seeds
      return concat(b.subarray(0, at), seeds[next() % seeds.length]!.subarray(next() % 40));
    default: // pure noise
      return randomBytes(next, next() % 200);
  }
}

function randomBytes(next: () => number, n: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = next() & 0xff;
  return b;
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

describe('frame decoder fuzz [LM-CBOR-6]', () => {
  it('100,000 random and mutated frames: only typed errors, bounded memory', () => {
    const next = rng(0x1e7a11);
    const counts = new Map<number, number>();
    let accepted = 0;
    globalThis.gc?.();
    const heap0 = process.memoryUsage().heapUsed;
    let heapMax = heap0;
    for (let i = 0; i < 100_000; i++) {
      let input = seeds[next() % seeds.length]!;
      for (let m = 0, n = 1 + (next() % 3); m < n; m++) input = mutate(next, input);
      try {
        decodeFrame(input);
        accepted++;
        // Whatever decodes is canonical: re-encoding its data item gives exactly the input.
        expect(Buffer.from(encodeCbor(decodeCbor(input))).equals(input)).toBe(true);
      } catch (e) {
        if (!(e instanceof LmError) || !isReasonCode(e.code)) throw new Error(`untyped exception for input ${Buffer.from(input).toString('hex').slice(0, 200)}: ${String(e)}`);
        counts.set(e.code, (counts.get(e.code) ?? 0) + 1);
      }
      if ((i & 4095) === 0) heapMax = Math.max(heapMax, process.memoryUsage().heapUsed);
    }
    const grown = (heapMax - heap0) / 2 ** 20;
    console.log(`fuzz: ${accepted} accepted, errors by code ${JSON.stringify(Object.fromEntries([...counts].sort((a, b) => a[0] - b[0])))}, heap grew ${grown.toFixed(1)} MiB at most`);
    expect(counts.size).toBeGreaterThan(6); // the mutations reach many different checks
    expect(grown).toBeLessThan(256);
  });

  it('a declared length of 2^64 - 1 in a 9-byte input allocates nothing [LM-CBOR-5]', () => {
    const before = process.memoryUsage().arrayBuffers;
    for (let i = 0; i < 1000; i++) {
      expect(() => decodeFrame(fromHex('5bffffffffffffffff'))).toThrow(LmError);
      expect(() => decodeFrame(fromHex('845a7fffffff'))).toThrow(LmError);
    }
    expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(16 * 2 ** 20);
  });
});
