/**
 * @module ceiling
 * The compute ceiling of bench:stream: the protocol's per-byte work on each side with no
 * network, one thread per side, through the code the roles run. Gateway: seal, pack, hints
 * (the key set per frame as its sender does), HINTS frames with their MAC, the shifted re-sends
 * the device's NACKs ask for ([LM-DLV-11]) and the KEY frames. Device: decode and verify every
 * frame, the receive phase (lookups, [LM-DLV-1], shifted hints), keys, unpack, open, the
 * consumer's bytes and the end digest ([LM-DLV-6]), with the device SDK's own phases. The table
 * is built before the clock starts (in a stream the workers build it beside the main thread).
 * Each side's time is the CPU time of this process (its one busy thread), so that other load on
 * a shared machine does not count.
 */
import {
  type AnyFrame, FrameType, type HintsBody, type ReasonCode, Reason, type RevisionKeys, type SessionParams, createTx, defaultChunk, decodeFrame, digest,
  encodeFrame, identityKeyPair, minHintLength, pack, randomBytes, sealChunk, shiftedSymbol, verifyFrame, wrapChunkKey,
} from '@livematrix/spec';
import { Kernel, MatrixEngine } from '@livematrix/spec/engine';
import { Delivery, HintReceiver, type ReceiptLedger, contentLayer, revisionPolicy } from '@livematrix/device-sdk/phases';

/** Bytes per second of each side, and the share of the device's time in table lookups. */
export interface Ceiling {
  gateway: number;
  device: number;
  /** seconds of the device side in `lookupMany` (wall time of those calls) */
  lookupSeconds: number;
  deviceSeconds: number;
  /** HINTS frames, shifted re-sends among them */
  frames: number;
  shifted: number;
  /** bytes of the frames: HINTS as first sent, shifted re-sends, KEY */
  wire: { hints: number; shifted: number; keys: number };
}

/** CPU ms of this process since `from` (user + system). */
function cpuMs(from: NodeJS.CpuUsage): number {
  const d = process.cpuUsage(from);
  return (d.user + d.system) / 1000;
}

/** The device's record of what it received and NACKed, as an ACK would carry it. */
class Ledger implements ReceiptLedger {
  readonly done = new Set<number>();
  nacks: [number, ReasonCode, number[]][] = [];
  received(seq: number): void {
    this.done.add(seq);
  }
  isReceived(seq: number): boolean {
    return this.done.has(seq);
  }
  nack(seq: number, reason: ReasonCode, idx: number[]): void {
    this.nacks.push([seq, reason, idx]);
  }
  soon(): void {}
}

interface SentFrame {
  seq: number;
  chunk: number;
  off: number;
  ctlen: number;
  symbols: Uint32Array;
  /** shifts used so far in this revision ([LM-DLV-18]) */
  shifts: number;
}

/** Shifts of successive shifted re-sends, as fractions of w (the gateway's first three, then more). */
const SHIFTS = [1 / 2, 1 / 4, 3 / 4, 1 / 8, 3 / 8, 5 / 8, 7 / 8];

export async function computeCeiling(data: Uint8Array, w: number): Promise<Ceiling> {
  const L = minHintLength(w);
  const C = defaultChunk(w);
  const now = Date.now();
  const params: SessionParams = { suite: 3, w, L, period: 60_000, epoch: now - 1000, grace: 0, r0: 0, chunk: C, symbolsPerFrame: 4096, wt: 16 };
  const keys: RevisionKeys = { revision: 0, hk: randomBytes(32), wk: randomBytes(32) };
  const fk = randomBytes(32);
  const sid = randomBytes(16);
  const mac = { kind: 'mac', key: fk } as const;
  const kernel = new Kernel();
  const hintsFrame = (b: HintsBody): Uint8Array => encodeFrame(FrameType.HINTS, b, mac);

  // ---- gateway, first sending: seal, pack, hints, frames; the chunk keys wrapped
  const sent: SentFrame[] = [];
  const wire: Uint8Array[] = [];
  const keyFrames: Uint8Array[] = [];
  let t = process.cpuUsage();
  for (let j = 0; j * C < data.length; j++) {
    const key = randomBytes(32);
    const ct = sealChunk(key, sid, j, data.subarray(j * C, (j + 1) * C));
    const syms = pack(ct, w);
    for (let off = 0; off < syms.length; off += params.symbolsPerFrame) {
      const symbols = syms.subarray(off, off + params.symbolsPerFrame);
      const fr: SentFrame = { seq: sent.length, chunk: j, off, ctlen: ct.length, symbols, shifts: 0 };
      sent.push(fr);
      kernel.setKey(keys.hk);
      const hints = kernel.hintList(3, w, L, symbols);
      wire.push(hintsFrame({ sid, seq: fr.seq, rev: 0, chunk: j, off, ctlen: ct.length, hints }));
    }
    keyFrames.push(encodeFrame(FrameType.KEY, { sid, chunk: j, rev: 0, wrapped: wrapChunkKey(keys.wk, sid, j, key) }, mac));
  }
  let gateway = cpuMs(t);
  kernel.wipe();

  // ---- device: the SDK's receive and delivery phases on a table built beforehand
  const engine = new MatrixEngine({ workers: 2 });
  await engine.start();
  const { table } = await engine.buildTable(3, w, L, keys.hk);
  let lookupMs = 0;
  const timed = {
    lookupMany(hints: Uint8Array, out: Int32Array): Int32Array {
      const a = performance.now(); // a syscall per frame (cpuUsage) would cost more than it measures
      const r = table.lookupMany(hints, out);
      lookupMs += performance.now() - a;
      return r;
    },
  };
  const ledger = new Ledger();
  const clock = (): number => Date.now();
  const revisions = revisionPolicy();
  let delivery: Delivery | undefined;
  const receiver = new HintReceiver({
    params, clock, revisions, acks: ledger, tables: { table: () => timed, ready: async () => timed }, nextChunk: () => delivery?.nextChunk ?? 0,
    reject: (_f, code, detail) => {
      throw new Error(`ceiling: frame refused (${code}): ${detail}`);
    },
  });
  const pieces: Uint8Array[] = [];
  const op = identityKeyPair();
  const dev = identityKeyPair();
  const jd = digest(data);
  const { tx } = createTx({ job: 'ceiling', plaintext: { digest: jd, size: data.length }, device: 'd', devicePublic: dev.publicKey, operatorSecret: op.secretKey, operatorPublic: op.publicKey, notBefore: now - 1000, notAfter: now + 3600_000, rate: 1e9, burst: 1e9 });
  delivery = new Delivery({ sid, params, tx, from: 0, clock, revisions, content: contentLayer(), chunks: receiver, keys: () => keys, push: (pt) => pieces.push(pt) });
  const frameOf = (bytes: Uint8Array): AnyFrame => {
    const f = decodeFrame(bytes);
    verifyFrame(f, { mac: fk }); // [LM-FRAME-2]
    return f;
  };
  const receive = async (frames: readonly Uint8Array[]): Promise<void> => {
    for (const bytes of frames) {
      const f = frameOf(bytes);
      if (f.type !== FrameType.HINTS) throw new Error('ceiling: not HINTS');
      await receiver.onHints(f);
    }
  };
  t = process.cpuUsage();
  await receive(wire);
  let device = cpuMs(t);

  // ---- NACKed symbols go again as shifted symbols ([LM-DLV-11]) until every frame is received
  const bytes = (xs: readonly Uint8Array[]): number => xs.reduce((a, x) => a + x.length, 0);
  let shifted = 0;
  let shiftedBytes = 0;
  while (ledger.nacks.length) {
    const nacks = ledger.nacks;
    ledger.nacks = [];
    t = process.cpuUsage();
    const again: Uint8Array[] = [];
    for (const [seq, reason, idx] of nacks) {
      const fr = sent[seq] as SentFrame;
      const part = SHIFTS[fr.shifts++];
      if (reason !== Reason.ambiguous || part === undefined || !idx.length) throw new Error(`ceiling: frame ${seq} NACKed with ${reason} after ${fr.shifts - 1} shifts`);
      const sh = Math.max(1, Math.min(w - 1, Math.floor(w * part)));
      const pos = [...new Set(idx.flatMap((j) => [j, j + 1]))].sort((x, y) => x - y);
      const syms = pos.map((p) => shiftedSymbol(fr.symbols, w, sh, p));
      kernel.setKey(keys.hk);
      const hints = kernel.hintList(3, w, L, syms);
      again.push(hintsFrame({ sid, seq, rev: 0, chunk: fr.chunk, off: fr.off, ctlen: fr.ctlen, hints, idx: pos, sh }));
      shifted++;
    }
    gateway += cpuMs(t);
    shiftedBytes += bytes(again);
    t = process.cpuUsage();
    await receive(again);
    device += cpuMs(t);
  }
  kernel.wipe();
  const wireBytes = { hints: bytes(wire), shifted: shiftedBytes, keys: bytes(keyFrames) };
  if (ledger.done.size !== sent.length) throw new Error(`ceiling: ${ledger.done.size} of ${sent.length} frames received`);

  // ---- keys, decryption, the consumer's bytes, the end digest ([LM-DLV-6])
  t = process.cpuUsage();
  let out = 0;
  for (const bytes of keyFrames) {
    const f = frameOf(bytes);
    if (f.type !== FrameType.KEY) throw new Error('ceiling: not KEY');
    const r = delivery.onKey(f.body);
    if (r.kind !== 'taken') throw new Error(`ceiling: KEY ${f.body.chunk} ${r.kind}`);
    delivery.deliver();
    for (const pt of pieces) {
      out += pt.length;
      delivery.consume(pt);
    }
    pieces.length = 0;
  }
  delivery.onEnd({ bytes: data.length, digest: jd });
  const d = delivery.finish();
  device += cpuMs(t);
  table.wipe();
  await engine.stop();
  if (out !== data.length || !d) throw new Error(`compute ceiling: ${out} bytes out of ${data.length}`);
  return { gateway: data.length / (gateway / 1000), device: data.length / (device / 1000), lookupSeconds: lookupMs / 1000, deviceSeconds: device / 1000, frames: sent.length + shifted, shifted, wire: wireBytes };
}
