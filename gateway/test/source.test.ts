/**
 * Job sources ([LM-TX-6]): a stream source hands out chunks across piece boundaries, reads no
 * further than asked plus its read-ahead, keeps what a resume may need, and turns every way a
 * stream can go wrong into a typed error.
 */
import { createReadStream } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { describe, expect, it } from 'vitest';
import { randomBytes as nodeRandom } from 'node:crypto';
import { LmError, Reason, digest } from '@livematrix/spec';
import { StreamSource } from '../src/index.js';

/** Yields `data` in pieces of the given sizes (cycled), counting what was pulled. */
function pieces(data: Uint8Array, sizes: number[], pulled: { n: number } = { n: 0 }): AsyncIterable<Uint8Array> {
  return (async function* () {
    let i = 0;
    for (let at = 0; at < data.length; i++) {
      const n = sizes[i % sizes.length] as number;
      pulled.n = Math.min(data.length, at + n);
      yield data.slice(at, at + n);
      at += n;
    }
  })();
}

/** Waits until the source has [start, end) or fails. */
function takeWhenReady(src: StreamSource, start: number, end: number): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    const tryTake = () => {
      if (src.failure) return reject(src.failure);
      const b = src.take(start, end);
      if (b) resolve(b);
    };
    src.onReadable(tryTake);
    tryTake();
  });
}

const randomBytes = (n: number) => new Uint8Array(nodeRandom(n));
const settle = () => new Promise((r) => setTimeout(r, 20));

describe('StreamSource [LM-TX-6]', () => {
  it('hands out exact ranges across piece boundaries and verifies size and digest at the end', async () => {
    const data = randomBytes(100_000);
    const src = new StreamSource(pieces(data, [1, 7, 4096, 333, 65536]), data.length, digest(data), { readAhead: 10_000 });
    for (let at = 0; at < data.length; at += 4096) {
      const b = await takeWhenReady(src, at, at + 4096);
      expect(Buffer.from(b).equals(Buffer.from(data.subarray(at, at + 4096)))).toBe(true);
      src.release(at);
    }
    await settle();
    expect(src.verified).toBe(true);
    expect(src.failure).toBeUndefined();
  });

  it('reads no further than asked plus its read-ahead', async () => {
    const data = randomBytes(1_000_000);
    const pulled = { n: 0 };
    const src = new StreamSource(pieces(data, [1000], pulled), data.length, digest(data), { readAhead: 50_000 });
    await settle();
    expect(pulled.n).toBeLessThanOrEqual(50_000 + 1000);
    await takeWhenReady(src, 0, 200_000);
    await settle();
    expect(pulled.n).toBeGreaterThanOrEqual(200_000);
    expect(pulled.n).toBeLessThanOrEqual(250_000 + 1000);
    src.close();
  });

  it('keeps bytes from the last released offset on, so a resumed session can ask again [LM-DLV-10]', async () => {
    const data = randomBytes(50_000);
    const src = new StreamSource(pieces(data, [3000]), data.length, digest(data));
    await takeWhenReady(src, 0, 40_000);
    src.release(20_480);
    expect(Buffer.from((await takeWhenReady(src, 20_480, 30_000))).equals(Buffer.from(data.subarray(20_480, 30_000)))).toBe(true);
    expect(() => src.take(0, 100)).toThrow(LmError);
    src.close();
  });

  it.each([
    ['a byte differs', (d: Uint8Array) => Uint8Array.from(d, (x, i) => (i === 5 ? x ^ 1 : x)), /digest/],
    ['it ends short', (d: Uint8Array) => d.subarray(0, d.length - 1), /ended after/],
    ['it is longer', (d: Uint8Array) => Buffer.concat([d, Buffer.of(1)]), /longer/],
  ])('fails with reason digest when %s', async (_what, mangle, msg) => {
    const data = randomBytes(30_000);
    const src = new StreamSource(pieces(mangle(data), [4096]), data.length, digest(data));
    const err = await takeWhenReady(src, 0, data.length).then(async () => {
      await settle();
      return src.failure;
    }, (e: unknown) => e);
    expect(err).toBeInstanceOf(LmError);
    expect((err as LmError).code).toBe(Reason.digest);
    expect((err as LmError).message).toMatch(msg);
    expect(src.verified).toBe(false);
  });

  it('a stream of text instead of bytes is refused with a clear error', async () => {
    const src = new StreamSource(createReadStream(join(import.meta.dirname, 'source.test.ts'), { encoding: 'utf8' }) as AsyncIterable<never>, 10, new Uint8Array(32));
    const err = await takeWhenReady(src, 0, 10).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LmError);
    expect((err as LmError).message).toMatch(/yielded text, not bytes/);
  });

  it('a stream that errors (a missing file) becomes a typed error, not a crash', async () => {
    const src = new StreamSource(createReadStream(join(tmpdir(), `no-such-job-${Date.now()}.gcode`)), 10, new Uint8Array(32));
    const err = await takeWhenReady(src, 0, 10).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LmError);
    expect((err as LmError).message).toMatch(/reading the job failed: .*ENOENT/);
  });
});
