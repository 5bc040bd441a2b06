/**
 * @module scenarios
 * Device profile scenarios. Each declares the requirement IDs it covers (constants generated
 * from spec/requirements.json) and throws an Error saying what the device did wrong.
 */
import { type CborValue, ControlOp, FrameType, Reason, decodeCbor, errorMessage, minHintLength, digest, encodeCbor, equalBytes, fromHex as fromHexBytes, identityKeyPair, randomBytes, shiftedSymbol, toHex, verifyFrame } from '@livematrix/spec';
import type { RequirementId } from './generated/requirements.js';
import { type Chunk, type Session, type Tester, until } from './tester.js';

export interface Ctx {
  tester: Tester;
  /** sample G-code the scenarios stream */
  data: Uint8Array;
  /** most bytes per second the device under test's consumer takes (its declared machine rate) */
  consumeRate: number;
  log: (line: string) => void;
}

export interface Scenario {
  id: string;
  title: string;
  covers: readonly RequirementId[];
  run(ctx: Ctx): Promise<void>;
}

function check(cond: unknown, msg: string): asserts cond {
  if (!cond) throw new Error(msg);
}

/**
 * Opens a session. Hints are two bytes longer than the minimum unless a scenario asks for the
 * minimum: natural ambiguities then practically never occur (2^-24 per symbol), so a scenario
 * fails only for what it aims at.
 */
async function open(ctx: Ctx, w: number, o: { suite?: 1 | 2 | 3; period?: number; r0Back?: number; timeShift?: number; L?: number; data?: Uint8Array; tx?: { rate: number; burst: number } } = {}): Promise<Session> {
  const t = ctx.tester;
  const params = t.params({ w, L: o.L ?? minHintLength(w) + 2, ...(o.suite ? { suite: o.suite } : {}), ...(o.period ? { period: o.period } : {}) });
  if (o.r0Back) params.r0 -= o.r0Back;
  const { tx, licence } = t.tx(o.data ?? ctx.data, o.tx ?? {});
  const s = await t.offer(params, tx, licence, o.timeShift !== undefined ? { timeShift: o.timeShift } : {});
  if ('refused' in s) throw new Error(`device refused a valid offer: ${s.refused.code} ${s.refused.detail}`);
  return s;
}

async function refusedWith(ctx: Ctx, code: number, make: (t: Tester) => { tx: Parameters<Tester['offer']>[1]; licence: Uint8Array; params?: Parameters<Tester['offer']>[0] }): Promise<void> {
  const t = ctx.tester;
  const m = make(t);
  const r = await t.offer(m.params ?? t.params({ w: 16 }), m.tx, m.licence, { waitReady: false });
  if (!('refused' in r)) throw new Error(`device accepted the offer; expected ERROR ${code}`);
  check(r.refused.code === code, `device refused with ${r.refused.code} (${r.refused.detail}); expected ${code}`);
}

async function deliverExact(ctx: Ctx, s: Session, data = ctx.data, o: Parameters<Session['deliver']>[1] = {}): Promise<void> {
  const { receipt } = await s.deliver(data, o);
  check(receipt.bytes === data.length, `receipt says ${receipt.bytes} bytes; sent ${data.length}`);
  check(equalBytes(receipt.digest, digest(data)), 'receipt digest differs from SHA-256 of the job');
  check(equalBytes(receipt.sid, s.sid), 'receipt names another session');
  check(s.receiptRaw !== undefined, 'no receipt frame');
  try {
    verifyFrame(s.receiptRaw, { signer: ctx.tester.o.devicePublic });
  } catch {
    throw new Error('receipt is not signed by the device key');
  }
}

/** The first NACK of seq (with that reason, when given). */
function nackOf(s: Session, seq: number, reason?: number): [number, number, number[]] | undefined {
  for (const a of s.acks) for (const n of a.nack) if (n[0] === seq && (reason === undefined || n[1] === reason)) return n;
  return undefined;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A delivery running beside the scenario's checks: awaited later, never left unhandled if a check fails first. */
function background<T>(p: Promise<T>): Promise<T> {
  p.catch(() => undefined);
  return p;
}

/** Waits until the session is `n` revisions past its start, so older revisions exist. */
async function age(s: Session, n: number): Promise<number> {
  const start = s.rev();
  await until(() => s.rev() >= start + n, (n + 2) * s.params.period + 1000, `${n} revisions`);
  return s.rev();
}

export const DEVICE_SCENARIOS: readonly Scenario[] = [
  {
    id: 'device/hello', title: 'announces itself: signed HELLO with capabilities, retained', covers: ['LM-MQTT-2', 'LM-CAP-1'],
    async run(ctx) {
      const h = await ctx.tester.waitHello();
      check(h.online, 'HELLO says offline');
      check(h.caps.suites.length > 0 && h.caps.suites.every(([, r]) => r > 0), 'capabilities report no measured hash rate');
      check(h.caps.wmax >= 8 && h.caps.mem > 0, 'capabilities report no usable w or memory');
    },
  },
  {
    id: 'device/deliver-w16-blake3', title: 'exact delivery, w=16, keyed blake3, signed receipt',
    covers: ['LM-HINT-1', 'LM-HINT-2', 'LM-PACK-1', 'LM-PACK-2', 'LM-AEAD-1', 'LM-AEAD-2', 'LM-KEY-1', 'LM-KEY-2', 'LM-KEY-3', 'LM-FRAME-2', 'LM-DLV-1', 'LM-DLV-2', 'LM-DLV-6', 'LM-DLV-7', 'LM-TIME-1', 'LM-MQTT-1', 'LM-CBOR-1'],
    async run(ctx) {
      const s = await open(ctx, 16);
      check(s.timeRequests > 0, 'no TIME_REQ before the first ACK');
      await deliverExact(ctx, s);
    },
  },
  {
    id: 'device/deliver-w12-keccak', title: 'exact delivery, w=12, keccak-256', covers: ['LM-HINT-1', 'LM-PARAM-2', 'LM-PARAM-3'],
    async run(ctx) {
      await deliverExact(ctx, await open(ctx, 12, { suite: 1 }));
    },
  },
  {
    id: 'device/deliver-w20-sha3', title: 'exact delivery, w=20, sha3-256', covers: ['LM-HINT-1', 'LM-PARAM-2'],
    async run(ctx) {
      await deliverExact(ctx, await open(ctx, 20, { suite: 2 }));
    },
  },
  {
    id: 'device/tx-unsigned', title: 'refuses an offer whose transaction carries no valid signature', covers: ['LM-TX-2'],
    run: (ctx) => refusedWith(ctx, Reason.txSignature, (t) => {
      const m = t.tx(ctx.data);
      const [body] = decodeCbor(m.tx.bytes) as CborValue[];
      return { tx: { ...m.tx, bytes: encodeCbor([body as CborValue, new Uint8Array(0)]) }, licence: m.licence }; // no signature
    }),
  },
  {
    id: 'device/tx-bad-signature', title: 'refuses a transaction whose signature does not verify', covers: ['LM-TX-2'],
    run: (ctx) => refusedWith(ctx, Reason.txSignature, (t) => t.tx(ctx.data, { badSignature: true })),
  },
  {
    id: 'device/tx-expired', title: 'refuses an expired transaction', covers: ['LM-TX-4'],
    run: (ctx) => refusedWith(ctx, Reason.txExpired, (t) => t.tx(ctx.data, { notBefore: Date.now() - 7200_000, notAfter: Date.now() - 3600_000 })),
  },
  {
    id: 'device/tx-other-device', title: 'refuses a transaction for another device', covers: ['LM-TX-5'],
    run: (ctx) => refusedWith(ctx, Reason.txDevice, (t) => t.tx(ctx.data, { device: 'someone-else' })),
  },
  {
    id: 'device/tx-untrusted-operator', title: 'refuses a transaction signed by an operator it does not trust', covers: ['LM-TX-3'],
    run: (ctx) => refusedWith(ctx, Reason.txOperator, (t) => {
      const other = identityKeyPair();
      return t.tx(ctx.data, { operatorSecret: other.secretKey, operatorPublic: other.publicKey });
    }),
  },
  {
    id: 'device/refusal-signed', title: 'answers refused OFFERs with ERROR signed by its identity key and keeps serving through forged ones', covers: ['LM-FRAME-9'],
    async run(ctx) {
      const t = ctx.tester;
      const m = t.tx(ctx.data, { notBefore: Date.now() - 7200_000, notAfter: Date.now() - 3600_000 });
      const r = await t.offer(t.params({ w: 16 }), m.tx, m.licence, { waitReady: false }).catch((e: unknown) => {
        throw new Error(`no answer to an OFFER of an expired transaction: ${errorMessage(e)}`);
      });
      if (!('refused' in r)) throw new Error('device accepted an expired transaction');
      check(r.refused.code === Reason.txExpired, `refused with ${r.refused.code}; expected ${Reason.txExpired}`);
      const session = [...t.sessionsRefused()].pop();
      check(session?.refusalSigned, 'the refusal is not an ERROR signed with the device\'s identity key ([LM-FRAME-9])');
      // forged OFFERs: a genuine one with bytes flipped, truncated or extended
      const genuine = t.rawOffer(t.params({ w: 16 }), t.tx(ctx.data));
      let seed = 0x9e3779b9;
      const rnd = (n: number) => ((seed = (Math.imul(seed ^ (seed >>> 15), 0x2c1b3c6d) + 0x6d2b79f5) >>> 0) % n);
      for (let i = 0; i < 200; i++) {
        const b = genuine.slice(0, i % 7 === 0 ? rnd(genuine.length) : genuine.length);
        // every mutation changes its byte: an unchanged copy of the genuine OFFER would start a session
        for (let k = 0; k < 1 + rnd(3) && b.length; k++) {
          const at = rnd(b.length);
          b[at] = (b[at] as number) ^ (1 + rnd(255));
        }
        await t.sendRaw(i % 11 === 0 ? new Uint8Array([...b, ...randomBytes(1 + rnd(8))]) : b);
      }
      const s = await open(ctx, 16).catch((e: unknown) => {
        throw new Error(`after 200 forged OFFERs the device does not take a valid one: ${errorMessage(e)}`);
      });
      await deliverExact(ctx, s);
    },
  },
  {
    id: 'device/liveness', title: 'sends TIME_REQ at least once a second; ends a session whose gateway fell silent when a new OFFER comes', covers: ['LM-DLV-13'],
    async run(ctx) {
      const s = await open(ctx, 16);
      const from = Date.now();
      await sleep(2600);
      const beats = s.timeRequestTimes.filter((x) => x >= from).length;
      check(beats >= 2, `${beats} TIME_REQ in 2.6 s of a session; expected at least one per second ([LM-DLV-13])`);
      s.mute = true; // the gateway is gone
      await sleep(3500);
      const next = await open(ctx, 16);
      await deliverExact(ctx, next);
    },
  },
  {
    id: 'device/tx-print-count', title: 'refuses a transaction whose print count is used up', covers: ['LM-TX-7'],
    async run(ctx) {
      const t = ctx.tester;
      const m = t.tx(ctx.data, { prints: 1 });
      const first = await t.offer(t.params({ w: 16, L: minHintLength(16) + 2 }), m.tx, m.licence);
      if ('refused' in first) throw new Error(`first use refused: ${first.refused.detail}`);
      await deliverExact(ctx, first);
      const second = await t.offer(t.params({ w: 16 }), m.tx, m.licence, { waitReady: false });
      if (!('refused' in second)) throw new Error('device accepted a transaction beyond its print count');
      check(second.refused.code === Reason.txCount, `refused with ${second.refused.code}; expected ${Reason.txCount}`);
    },
  },
  {
    id: 'device/tx-other-gateway', title: 'refuses an offer from a gateway the transaction does not name', covers: ['LM-FRAME-6'],
    run: (ctx) => refusedWith(ctx, Reason.txGateway, (t) => t.tx(ctx.data, { gatewayPublic: identityKeyPair().publicKey })),
  },
  {
    id: 'device/licence-sealed-elsewhere', title: 'refuses a licence sealed to another key', covers: ['LM-TX-1'],
    run: (ctx) => refusedWith(ctx, Reason.txSchema, (t) => {
      const other = t.tx(ctx.data, { devicePublic: identityKeyPair().publicKey });
      return t.tx(ctx.data, { bodyPatch: (b) => void (b.lic = other.tx.body.lic) });
    }),
  },
  {
    id: 'device/params-out-of-range', title: 'refuses parameters outside the spec\'s ranges', covers: ['LM-PARAM-1'],
    run: (ctx) => refusedWith(ctx, Reason.params, (t) => ({ ...t.tx(ctx.data), params: { ...t.params({ w: 16 }), w: 25, L: 5 } })),
  },
  {
    id: 'device/ambiguity-nack', title: 'NACKs a hint that is ambiguous in its revision table', covers: ['LM-HINT-3'],
    async run(ctx) {
      const s = await open(ctx, 16, { L: minHintLength(16) });
      const rev = s.rev();
      // find a hint value two candidates share in this revision
      const all = s.hints(Uint32Array.from({ length: 65536 }, (_, g) => g), rev);
      const L = s.params.L;
      const seen = new Map<string, number>();
      let amb: Uint8Array | undefined;
      for (let g = 0; g < 65536 && !amb; g++) {
        const k = toHex(all.subarray(g * L, g * L + L));
        if (seen.has(k)) amb = all.slice(g * L, g * L + L);
        else seen.set(k, g);
      }
      check(amb, 'no ambiguous hint in this revision (retry)');
      const [c] = s.plan(ctx.data) as [Chunk];
      const fr = c.frames[0]!;
      const hints = s.hints(c.symbols.subarray(fr.off, fr.off + fr.n), rev);
      hints.set(amb, 0); // symbol 0 now carries an ambiguous hint
      await s.sendFrame(c, 0, { rev, hints });
      const n = await s.wait(() => nackOf(s, fr.seq, Reason.ambiguous), 3000, `a NACK of frame ${fr.seq}`).catch(() => undefined);
      check(n && n[1] === Reason.ambiguous && (n[2].length === 0 || n[2].includes(0)), `no ambiguous NACK for symbol 0 of frame ${fr.seq} (got ${JSON.stringify(n)})`);
      check(!s.received.has(fr.seq), 'frame with an ambiguous hint was reported received');
    },
  },
  {
    id: 'device/shifted-resend', title: 'completes an ambiguous symbol from shifted hints within the same revision', covers: ['LM-DLV-11', 'LM-DLV-1'],
    async run(ctx) {
      const data = ctx.data.subarray(0, 600); // one chunk, one frame
      const s = await open(ctx, 16, { L: minHintLength(16), period: 5000, data });
      const p = s.params;
      // start early in a revision, so that the whole exchange fits in it
      const into = () => (Date.now() - p.grace - p.epoch) % p.period;
      if (into() > p.period / 2) await sleep(p.period - into() + 50);
      const rev = s.rev();
      const all = s.hints(Uint32Array.from({ length: 65536 }, (_, g) => g), rev);
      const L = p.L;
      const count = new Map<string, number>();
      for (let g = 0; g < 65536; g++) {
        const k = toHex(all.subarray(g * L, g * L + L));
        count.set(k, (count.get(k) ?? 0) + 1);
      }
      const unique = (g: number) => count.get(toHex(all.subarray(g * L, g * L + L))) === 1;
      const amb = [...count].find(([, n]) => n > 1)?.[0];
      check(amb, 'no ambiguous hint in this revision (retry)');
      const chunks = s.plan(data);
      check(chunks.length === 1 && chunks[0]!.frames.length === 1, 'test data is not one frame');
      const c = chunks[0]!;
      const fr = c.frames[0]!;
      const syms = c.symbols.subarray(fr.off, fr.off + fr.n);
      const hints = s.hints(syms, rev);
      hints.set(fromHexBytes(amb), 0); // symbol 0 carries an ambiguous hint; others may be ambiguous by nature
      await s.sendFrame(c, 0, { rev, hints });
      await s.wait(() => nackOf(s, fr.seq, Reason.ambiguous), 3000, `an ambiguous NACK of frame ${fr.seq}`);
      // every symbol of the frame that is ambiguous goes again as the two shifted symbols around it
      const failed = [0, ...[...syms].flatMap((g, j) => (j > 0 && !unique(g) ? [j] : []))];
      const pos = [...new Set(failed.flatMap((j) => [j, j + 1]))].sort((x, y) => x - y);
      let sh = 0;
      for (let t = 1; t < p.w && !sh; t++) if (pos.every((j) => unique(shiftedSymbol(syms, p.w, t, j)))) sh = t;
      check(sh, 'no shift gives unambiguous shifted hints (retry)');
      await s.sendFrame(c, 0, { rev, idx: pos, sh });
      await s.wait(() => s.received.has(fr.seq), 3000, `frame ${fr.seq} reported received after the shifted re-send of symbols ${failed.join(', ')} (shift ${sh})`);
      check(s.rev() === rev, 'the revision turned during the test (retry)');
      // the bits it took from the shifted hints must be the right ones: the chunk decrypts
      await deliverExact(ctx, s, data, { chunks, skipFirstSending: (seq) => seq === fr.seq });
    },
  },
  {
    id: 'device/rate-alarm', title: 'raises ALARM rate when its consumer runs faster than the transaction allows', covers: ['LM-ALARM-2'],
    async run(ctx) {
      // a transaction for an eighth of the consumer's pace, and a gateway that ignores it: every
      // KEY goes as soon as its chunk is received
      const s = await open(ctx, 16, { tx: { rate: Math.max(256, Math.floor(ctx.consumeRate / 8)), burst: 4096 } });
      const delivery = background(s.deliver(ctx.data, { timeout: 15_000 }));
      const alarm = await s.wait(() => s.alarms.find((a) => a.code === Reason.rate) ?? s.receipt, 12_000, 'an ALARM with reason rate from the device');
      check(!s.receipt, 'the device completed a stream its consumer took faster than the transaction allows');
      check(!('observed' in alarm) || alarm.observed === undefined || alarm.limit === undefined || alarm.observed > alarm.limit, `ALARM says ${'observed' in alarm ? alarm.observed : '?'} bytes observed, limit ${'limit' in alarm ? alarm.limit : '?'}`);
      // the device ended the session with its alarm: nothing more to deliver
      s.end();
      await delivery.catch(() => undefined);
      check(!s.receipt, 'the device completed a stream its consumer took faster than the transaction allows');
    },
  },
  {
    id: 'device/unknown-hint-nack', title: 'NACKs hints that are absent from the revision table', covers: ['LM-HINT-4'],
    async run(ctx) {
      const s = await open(ctx, 16);
      const [c] = s.plan(ctx.data) as [Chunk];
      const fr = c.frames[0]!;
      const rev = s.rev();
      const hints = s.hints(c.symbols.subarray(fr.off, fr.off + fr.n), rev);
      // an absent hint: a value no candidate of this revision has (search the whole table)
      const L = s.params.L;
      const all = s.hints(Uint32Array.from({ length: 65536 }, (_, g) => g), rev);
      const used = new Set<string>();
      for (let g = 0; g < 65536; g++) used.add(toHex(all.subarray(g * L, g * L + L)));
      let absent = randomBytes(L);
      while (used.has(toHex(absent))) absent = randomBytes(L);
      hints.set(absent, 0);
      await s.sendFrame(c, 0, { rev, hints });
      const n = await s.wait(() => nackOf(s, fr.seq, Reason.unknown), 3000, 'a NACK').catch(() => undefined);
      check(n && n[1] === Reason.unknown, `no unknown-hint NACK (got ${JSON.stringify(n)})`);
    },
  },
  {
    id: 'device/loss-resend', title: 'a lost frame re-sent later completes the stream', covers: ['LM-DLV-1', 'LM-DLV-2'],
    async run(ctx) {
      await deliverExact(ctx, await open(ctx, 16), ctx.data, { skipFirstSending: (seq) => seq === 1 || seq === 4 });
    },
  },
  {
    id: 'device/duplicate-reorder', title: 'duplicate and reordered frames give the exact stream', covers: ['LM-DLV-1', 'LM-DLV-6'],
    async run(ctx) {
      await deliverExact(ctx, await open(ctx, 16), ctx.data, {
        order: (frames) => {
          const head = frames.slice(0, 6).reverse();
          return [...head, ...frames.slice(0, 3), ...frames.slice(6)];
        },
      });
    },
  },
  {
    id: 'device/expired-revision', title: 'refuses HINTS of an expired revision', covers: ['LM-REV-2', 'LM-ALARM-4'],
    async run(ctx) {
      const s = await open(ctx, 16, { period: 400, r0Back: 6 });
      const c = await age(s, 3);
      const [ch] = s.plan(ctx.data) as [Chunk];
      await s.sendFrame(ch, 0, { rev: c - 2 });
      const n = await s.wait(() => nackOf(s, ch.frames[0]!.seq, Reason.revExpired), 2000, 'a NACK').catch(() => undefined);
      check(!s.received.has(ch.frames[0]!.seq), `a frame of revision ${c - 2} (current ${c}) was accepted`);
      check(n && n[1] === Reason.revExpired, `expected a rev-expired NACK, got ${JSON.stringify(n)}`);
    },
  },
  {
    id: 'device/future-revision', title: 'refuses HINTS of a future revision', covers: ['LM-REV-2'],
    async run(ctx) {
      const s = await open(ctx, 16);
      const [ch] = s.plan(ctx.data) as [Chunk];
      await s.sendFrame(ch, 0, { rev: s.rev() + 3 });
      const n = await s.wait(() => nackOf(s, ch.frames[0]!.seq, Reason.revFuture), 2000, 'a NACK').catch(() => undefined);
      check(!s.received.has(ch.frames[0]!.seq), 'a frame of a future revision was accepted');
      check(n && n[1] === Reason.revFuture, `expected a rev-future NACK, got ${JSON.stringify(n)}`);
    },
  },
  {
    id: 'device/expired-key', title: 'refuses a chunk key wrapped under an expired revision', covers: ['LM-REV-3'],
    async run(ctx) {
      const s = await open(ctx, 16, { period: 400, r0Back: 6 });
      const c0 = await age(s, 3);
      const chunks = s.plan(ctx.data);
      let stale = true;
      const run = background(s.deliver(ctx.data, { chunks, keyRev: () => (stale ? s.rev() - 2 : s.rev()), keyRetryMs: 3000 }));
      await sleep(1500);
      const consumed = s.acks.length ? s.acks[s.acks.length - 1]!.consumed : 0;
      stale = false;
      check(consumed === 0, `the device delivered ${consumed} bytes whose keys came under an expired revision (${c0 - 2})`);
      await run;
    },
  },
  {
    id: 'device/tampered-frame', title: 'drops frames whose MAC fails; three raise a tamper alarm', covers: ['LM-FRAME-2', 'LM-ALARM-3'],
    async run(ctx) {
      const s = await open(ctx, 16);
      const [ch] = s.plan(ctx.data) as [Chunk];
      await s.sendFrame(ch, 0, { tamper: true });
      await sleep(500);
      check(!s.received.has(ch.frames[0]!.seq), 'a frame with a bad MAC was accepted');
      await s.sendFrame(ch, 0, { tamper: true });
      await s.sendFrame(ch, 0, { tamper: true });
      await s.wait(() => s.alarms.find((a) => a.code === Reason.tamper) ?? s.errors.find((e) => e.code === Reason.tamper), 3000, 'ALARM tamper');
    },
  },
  {
    id: 'device/tampered-chunk', title: 'delivers nothing of a chunk whose AEAD fails', covers: ['LM-AEAD-4'],
    async run(ctx) {
      const s = await open(ctx, 16);
      const chunks = s.plan(ctx.data);
      chunks[0]!.key = randomBytes(32); // the KEY will not open chunk 0's ciphertext
      await s.deliver(ctx.data, { chunks, timeout: 8000 }).catch(() => undefined);
      const consumed = s.acks.length ? s.acks[s.acks.length - 1]!.consumed : 0;
      check(consumed === 0, `the device delivered ${consumed} bytes of a chunk that does not authenticate`);
      check(s.receipt === undefined, 'the device sent a receipt');
      check(s.errors.some((e) => e.code === Reason.auth), `no ERROR auth (errors: ${JSON.stringify(s.errors.map((e) => e.code))})`);
    },
  },
  {
    id: 'device/padding', title: 'refuses a chunk whose last symbol has non-zero padding', covers: ['LM-PACK-3'],
    async run(ctx) {
      const s = await open(ctx, 12);
      const chunks = s.plan(ctx.data);
      const c = chunks.find((x) => (x.symbols.length * 12) % 8 !== 0 || x.symbols.length * 12 > x.ct.length * 8)!;
      check(c, 'no chunk with padding bits at w=12');
      c.symbols[c.symbols.length - 1] = (c.symbols[c.symbols.length - 1] as number) | 1;
      await s.deliver(ctx.data, { chunks, timeout: 8000 }).catch(() => undefined);
      check(s.receipt === undefined, 'the device accepted a chunk with non-zero padding bits');
      check(s.errors.some((e) => e.code === Reason.padding), `no ERROR padding (errors: ${JSON.stringify(s.errors.map((e) => e.code))})`);
    },
  },
  {
    id: 'device/skew-in-grace', title: 'streams with a clock offset inside the grace window', covers: ['LM-TIME-2', 'LM-TIME-3'],
    async run(ctx) {
      // P = 2000 ms, G = 500 ms: an offset of 100 ms stays inside the grace window even when a
      // loaded host stretches the time-sync round trips
      const s = await open(ctx, 16, { timeShift: 100, period: 2000 });
      await deliverExact(ctx, s);
    },
  },
  {
    id: 'device/skew-beyond-grace', title: 'refuses to stream with a clock offset beyond the grace window', covers: ['LM-TIME-2'],
    async run(ctx) {
      const t = ctx.tester;
      const { tx, licence } = t.tx(ctx.data);
      const s = await t.offer(t.params({ w: 16 }), tx, licence, { timeShift: 2000, waitReady: false });
      if ('refused' in s) throw new Error(`offer refused before time sync: ${s.refused.detail}`);
      await s.wait(() => s.errors.find((e) => e.code === Reason.skew), 5000, 'ERROR skew');
      check(s.acks.length === 0, 'the device acknowledged (was ready to stream) despite the skew');
    },
  },
  {
    id: 'device/back-pressure', title: 'acknowledges as consumed only what its consumer took', covers: ['LM-DLV-4', 'LM-DLV-5'],
    async run(ctx) {
      // more than the consumer can take at once, so that decrypted data waits in the device
      const data = ctx.data.length >= 150_000 ? ctx.data : new Uint8Array(Array.from({ length: 4 }, () => [...ctx.data]).flat());
      const s = await open(ctx, 16, { data });
      const t0 = s.offeredAt; // the device's consumer may start with the stream
      const run = background(s.deliver(data));
      let worst = 0;
      while (!s.receipt && !s.errors.length && Date.now() - t0 < 60_000) {
        const a = s.acks[s.acks.length - 1];
        if (a) worst = Math.max(worst, a.consumed - (ctx.consumeRate * (Date.now() - t0)) / 1000);
        check(worst <= 8192, `the device reported ${a?.consumed} bytes consumed ${Date.now() - t0} ms after the offer; its consumer takes at most ${ctx.consumeRate} bytes/s`);
        await sleep(20);
      }
      await run;
    },
  },
  {
    id: 'device/abort', title: 'after an abort the session is gone: later frames are ignored', covers: ['LM-DLV-9', 'LM-FRAME-8'],
    async run(ctx) {
      const s = await open(ctx, 16);
      const chunks = s.plan(ctx.data);
      await s.sendFrame(chunks[0]!, 0);
      await sleep(300);
      await s.send(FrameType.CONTROL, { sid: s.sid, op: ControlOp.abort, reason: Reason.aborted });
      await sleep(300);
      const acks = s.acks.length;
      await s.sendFrame(chunks[0]!, 1);
      await sleep(600);
      check(s.acks.length === acks, 'the device acknowledged a frame of an aborted session');
    },
  },
  {
    id: 'device/pause-resume', title: 'a paused session keeps its state and completes after resume', covers: ['LM-DLV-9'],
    async run(ctx) {
      const s = await open(ctx, 16);
      await s.send(FrameType.CONTROL, { sid: s.sid, op: ControlOp.pause, reason: 0 });
      await sleep(300);
      await s.send(FrameType.CONTROL, { sid: s.sid, op: ControlOp.resume, reason: 0 });
      await deliverExact(ctx, s);
    },
  },
  {
    id: 'device/alarm', title: 'an authenticated ALARM ends the session: no receipt, no more acknowledgements', covers: ['LM-ALARM-5'],
    async run(ctx) {
      const data = new Uint8Array(Array.from({ length: 3 }, () => [...ctx.data]).flat());
      const s = await open(ctx, 16, { data });
      const chunks = s.plan(data);
      await s.sendFrame(chunks[0]!, 0);
      await sleep(300);
      await s.send(FrameType.ALARM, { sid: s.sid, code: Reason.rate, detail: 'conformance: consumption faster than allowed', time: Date.now() });
      await sleep(300);
      const acks = s.acks.length;
      await s.sendFrame(chunks[0]!, 1);
      await s.sendFrame(chunks[1]!, 0);
      await sleep(800);
      check(s.acks.length === acks, 'the device kept acknowledging after an ALARM');
      check(s.receipt === undefined, 'the device sent a receipt after an ALARM');
    },
  },
  {
    id: 'device/telemetry', title: 'telemetry sent as hints under the d2g chain decodes', covers: ['LM-TEL-1'],
    async run(ctx) {
      const data = new Uint8Array(Array.from({ length: 3 }, () => [...ctx.data]).flat()); // long enough for a few reports
      const s = await open(ctx, 16, { data });
      const run = background(s.deliver(data));
      await s.wait(() => s.telemetry.length > 0, 10_000, 'a decodable TELEMETRY frame');
      await run;
    },
  },
  {
    id: 'device/garbage-in', title: 'malformed payloads and unknown versions on its topic change nothing', covers: ['LM-MQTT-4', 'LM-CBOR-6', 'LM-ROLE-2'],
    async run(ctx) {
      const t = ctx.tester;
      const topic = `lm/1/${t.o.fleet}/d/${t.o.deviceId}/in`;
      const s = await open(ctx, 16);
      const junk = [Uint8Array.of(0xff), randomBytes(300), Uint8Array.of(0x5b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff), encodeCbor([2, 6, new Map(), new Uint8Array(16)]), new Uint8Array(0)];
      for (const j of junk) await t.link.send(topic, j, FrameType.HINTS);
      await deliverExact(ctx, s);
    },
  },
  {
    id: 'device/reconnect', title: 'a dropped broker connection mid-stream still ends exact', covers: ['LM-DLV-8'],
    async run(ctx) {
      const s = await open(ctx, 16);
      const run = background(deliverExact(ctx, s));
      await sleep(300);
      ctx.tester.link.client.stream.destroy();
      await run;
    },
  },
];

