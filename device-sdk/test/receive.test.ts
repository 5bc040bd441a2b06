/**
 * The receive phase without a broker or an engine: a fake revision table resolves hints, and
 * the tests check resolution ([LM-DLV-1]), NACKs of ambiguous and unknown hints ([LM-HINT-3],
 * [LM-HINT-4]), shifted re-sends ([LM-DLV-11]) and revision checks ([LM-REV-2], [LM-REV-4]).
 */
import { describe, expect, it } from 'vitest';
import { FrameType, type HintsBody, Reason, type SessionParams, shiftedSymbol } from '@livematrix/spec';
import type { HintsFrame } from '../src/frames.js';
import { HintReceiver, type HintTable, type ReceiptLedger, type TableSource } from '../src/receive.js';
import { revisionPolicy } from '../src/revisions.js';

const W = 16;
const L = 3;
const PERIOD = 1000;
const EPOCH = 1_800_000_000_000;
const NOW = EPOCH + 10 * PERIOD + 500; // revision 10
const params: SessionParams = { suite: 3, w: W, L, period: PERIOD, epoch: EPOCH, grace: 250, r0: 5, chunk: 1024, symbolsPerFrame: 4096, wt: 16 };
const sid = new Uint8Array(16);
const CTLEN = 40; // 20 symbols of 16 bits
const SYMBOLS = Uint32Array.from({ length: 20 }, (_, i) => (i * 40503 + 12345) & 0xffff);

/** Fake hints: 0x00 then the symbol; 0xaa ambiguous; anything else absent. */
const AMB = 0xaa;
const ABS = 0xbb;
function hintsOf(values: readonly number[], mark: Record<number, number> = {}): Uint8Array {
  const out = new Uint8Array(values.length * L);
  values.forEach((g, i) => out.set([mark[i] ?? 0, g >> 8, g & 0xff], i * L));
  return out;
}
const fakeTable: HintTable = {
  lookupMany(hints, out) {
    for (let i = 0; i < out.length; i++) {
      const tag = hints[i * L] as number;
      out[i] = tag === 0 ? ((hints[i * L + 1] as number) << 8) | (hints[i * L + 2] as number) : tag === AMB ? -2 : -1;
    }
    return out;
  },
};

function frame(body: Partial<HintsBody> & { hints: Uint8Array }): HintsFrame {
  return { v: 1, type: FrameType.HINTS, body: { sid, seq: 0, rev: 10, chunk: 0, off: 0, ctlen: CTLEN, ...body }, auth: new Uint8Array(16), authKind: 'mac', tba: new Uint8Array(0) };
}

function setup(o: { tables?: TableSource; nextChunk?: number } = {}) {
  const received: number[] = [];
  const nacks: [number, number, number[]][] = [];
  const rejects: [number, string][] = [];
  const acks: ReceiptLedger = {
    received: (s) => void received.push(s),
    isReceived: (s) => received.includes(s),
    nack: (s, r, idx) => void nacks.push([s, r, [...idx]]),
    soon: () => undefined,
  };
  const rx = new HintReceiver({
    params, clock: () => NOW, revisions: revisionPolicy(), tables: o.tables ?? { table: () => fakeTable, ready: async () => fakeTable },
    acks, nextChunk: () => o.nextChunk ?? 0, reject: (_f, code, detail) => void rejects.push([code, detail]),
  });
  return { rx, received, nacks, rejects };
}

describe('HINTS to symbols [LM-DLV-1]', () => {
  it('resolves a frame and reports it received once every symbol is known', async () => {
    const { rx, received, nacks } = setup();
    expect(await rx.onHints(frame({ hints: hintsOf([...SYMBOLS.subarray(0, 12)]) }))).toBe(true);
    expect(received).toEqual([0]);
    expect(rx.complete(0)).toBeUndefined(); // 8 symbols of the chunk still missing
    await rx.onHints(frame({ seq: 1, off: 12, hints: hintsOf([...SYMBOLS.subarray(12)]) }));
    expect(received).toEqual([0, 1]);
    expect(nacks).toEqual([]);
    expect([...rx.complete(0)!.symbols]).toEqual([...SYMBOLS]);
    rx.release(0);
    expect(rx.has(0)).toBe(false);
  });

  it('NACKs ambiguous and unknown hints and keeps the resolved symbols across the re-send [LM-HINT-3] [LM-HINT-4]', async () => {
    const { rx, received, nacks } = setup();
    await rx.onHints(frame({ hints: hintsOf([...SYMBOLS], { 3: AMB, 7: ABS, 9: AMB }) }));
    expect(nacks).toEqual([[0, Reason.ambiguous, [3, 9]], [0, Reason.unknown, [7]]]);
    expect(received).toEqual([]);
    await rx.onHints(frame({ idx: [3, 7, 9], hints: hintsOf([SYMBOLS[3]!, SYMBOLS[7]!, SYMBOLS[9]!]) }));
    expect(received).toEqual([0]);
    expect([...rx.complete(0)!.symbols]).toEqual([...SYMBOLS]);
  });

  it('asks for the whole frame when a partial re-send comes for a frame it never saw', async () => {
    const { rx, nacks } = setup();
    await rx.onHints(frame({ seq: 4, idx: [2], hints: hintsOf([SYMBOLS[2]!]) }));
    expect(nacks).toEqual([[4, Reason.unknown, []]]);
  });

  it('acknowledges frames of chunks already delivered without looking them up', async () => {
    const { rx, received } = setup({ nextChunk: 1 });
    expect(await rx.onHints(frame({ seq: 2, hints: hintsOf([1, 2]) }))).toBe(false);
    expect(received).toEqual([2]);
    expect(rx.has(0)).toBe(false);
  });

  it('refuses hints that are not a multiple of L', async () => {
    const { rx, rejects } = setup();
    await rx.onHints(frame({ hints: new Uint8Array(5) }));
    expect(rejects.map(([c]) => c)).toEqual([Reason.schema]);
  });
});

describe('shifted re-sends [LM-DLV-11]', () => {
  it('completes an ambiguous symbol from the shifted hints at its position and the next', async () => {
    const { rx, received, nacks } = setup();
    const own = [...SYMBOLS];
    await rx.onHints(frame({ hints: hintsOf(own, { 4: AMB }) }));
    expect(nacks).toEqual([[0, Reason.ambiguous, [4]]]);
    expect(rx.complete(0)).toBeUndefined();
    const sh = 5;
    const shifted = [4, 5].map((j) => shiftedSymbol(own, W, sh, j));
    await rx.onHints(frame({ idx: [4, 5], sh, hints: hintsOf(shifted) }));
    expect(received).toEqual([0]);
    expect(nacks).toHaveLength(1);
    expect([...rx.complete(0)!.symbols]).toEqual(own);
  });

  it('NACKs the symbol a failed shifted hint would have completed, as ambiguous', async () => {
    const { rx, received, nacks } = setup();
    const own = [...SYMBOLS.subarray(0, 10)];
    await rx.onHints(frame({ hints: hintsOf(own, { 4: AMB }) }));
    const sh = 3;
    // the hint at 4 gives the high bits of symbol 4; the one at 5 (its low bits) is ambiguous
    await rx.onHints(frame({ idx: [4, 5], sh, hints: hintsOf([4, 5].map((j) => shiftedSymbol(own, W, sh, j)), { 1: AMB }) }));
    expect(nacks).toEqual([[0, Reason.ambiguous, [4]], [0, Reason.ambiguous, [4]]]);
    expect(received).toEqual([]);
    // another shift completes it, with the high bits already known
    await rx.onHints(frame({ idx: [5], sh: 7, hints: hintsOf([shiftedSymbol(own, W, 7, 5)]) }));
    expect(received).toEqual([0]);
  });

  it('refuses a shift that is not below w', async () => {
    const { rx, rejects } = setup();
    await rx.onHints(frame({ hints: hintsOf([1, 2]) }));
    await rx.onHints(frame({ idx: [1], sh: W, hints: hintsOf([1]) }));
    expect(rejects.map(([c]) => c)).toEqual([Reason.schema]);
  });
});

describe('revisions [LM-REV-2] [LM-REV-4]', () => {
  it('refuses and NACKs expired and future revisions, and accepts c - 1 and c', async () => {
    const { rx, rejects, nacks, received } = setup();
    await rx.onHints(frame({ seq: 0, rev: 8, hints: hintsOf([1]) }));
    await rx.onHints(frame({ seq: 1, rev: 11, hints: hintsOf([1]) }));
    expect(rejects.map(([c]) => c)).toEqual([Reason.revExpired, Reason.revFuture]);
    expect(nacks).toEqual([[0, Reason.revExpired, []], [1, Reason.revFuture, []]]);
    await rx.onHints(frame({ seq: 2, rev: 9, hints: hintsOf([1]) }));
    await rx.onHints(frame({ seq: 3, rev: 10, off: 1, hints: hintsOf([2]) }));
    expect(received).toEqual([2, 3]);
  });

  it('NACKs busy, never unknown, when the revision has no table', async () => {
    const { rx, nacks } = setup({ tables: { table: () => undefined, ready: async () => undefined } });
    expect(await rx.onHints(frame({ hints: hintsOf([1, 2]) }))).toBe(false);
    expect(nacks).toEqual([[0, Reason.busy, []]]);
  });
});
