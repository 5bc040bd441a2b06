/**
 * @module gateway-profile/session-chunks
 * The end of a chunk's delivery on a suite device's session: its KEY checked as it arrives (its
 * stamp [LM-REV-1], no KEY after an alarm [LM-AEAD-6], released only once reported and allowed
 * [LM-AEAD-3], unwrapped [LM-AEAD-2], fresh [LM-AEAD-5]); the chunk opened once its symbols and key
 * are in ([LM-PACK-2], [LM-AEAD-1]) and every hint sent for it checked against its true symbols
 * ([LM-HINT-1], [LM-DLV-11]); the consumer; END ([LM-DLV-6]) and the RECEIPT ([LM-DLV-7]).
 */
import {
  type EndBody, FrameType, type KeyBody, digest, encodeFrame, equalBytes, hintSymbols, openChunk as openChunkAead, pack, shiftedSymbol, toHex, toLmError, unpack, unwrapChunkKey,
} from '@livematrix/spec';
import { scheduleAck } from './session-ack.js';
import { type ChunkState, SLACK_MS, type SessionState } from './session-state.js';
import { checkStamp } from './session-time.js';

/** A KEY frame from the gateway: checked, unwrapped, and the chunk opened if its symbols are in. */
export async function onKey(st: SessionState, b: KeyBody, at: number): Promise<void> {
  const s = st.session;
  const F = st.dev.findings;
  const p = s.params;
  s.keysIn.push({ at, body: b });
  checkStamp(st, `KEY of chunk ${b.chunk}`, b.rev, at);
  // [LM-AEAD-6]: no KEY after an alarm of the session. Only a failure is recorded here: a KEY
  // with no alarm before it says nothing of the rule (gateway/rate-alarm and gateway/tamper raise one)
  const alarmed = s.alarms.find((a) => a.auth === 'mac' && a.at <= at);
  if (alarmed) F.fail('LM-AEAD-6', `KEY of chunk ${b.chunk} sent after the gateway's ALARM ${alarmed.body.code}`);
  const ch = st.chunks.get(b.chunk);
  const first = !ch || ch.keyAt === undefined;
  if (first) {
    // [LM-AEAD-3]: only after every HINTS frame of the chunk was reported received ...
    F.ok('LM-AEAD-3', ch?.reportedAt !== undefined && ch.reportedAt <= at, `KEY of chunk ${b.chunk} arrived before the device had reported every HINTS frame of it received`);
    // ... and once the transaction's allowance covers the chunk's last byte
    const end = Math.min(s.tx.body.size, (b.chunk + 1) * p.chunk);
    const since = at - (s.firstHintsAt ?? at) + SLACK_MS + s.delta;
    const allowed = s.from + (s.tx.body.rate * since) / 1000 + s.tx.body.burst;
    F.ok('LM-AEAD-3', end <= allowed, `KEY of chunk ${b.chunk} (last byte ${end}) arrived ${((at - (s.firstHintsAt ?? at)) / 1000).toFixed(2)} s after the first HINTS; the transaction allows ${Math.floor(allowed)} bytes by then (rate ${s.tx.body.rate}, burst ${s.tx.body.burst})`);
  }
  let key: Uint8Array;
  try {
    key = unwrapChunkKey(s.keysG2d(b.rev).wk, s.sid, b.chunk, b.wrapped); // [LM-AEAD-2]
    F.pass('LM-AEAD-2');
  } catch (e) {
    F.fail('LM-AEAD-2', `KEY of chunk ${b.chunk} does not unwrap under WK_g2d of revision ${b.rev}: ${toLmError(e).message}`);
    return;
  }
  if (!ch) {
    F.fail('LM-AEAD-3', `KEY of chunk ${b.chunk}, of which no HINTS came`);
    return;
  }
  if (ch.key && !equalBytes(ch.key, key)) F.fail('LM-AEAD-2', `KEY of chunk ${b.chunk} sent again with another chunk key`);
  if (first) {
    // [LM-AEAD-5]: a fresh key for every chunk of every session
    const hex = toHex(key);
    const where = `session ${s.sidHex.slice(0, 8)} chunk ${b.chunk}`;
    const before = st.dev.keySeen.get(hex);
    F.ok('LM-AEAD-5', before === undefined, `chunk key of ${where} was already used for ${before}`);
    st.dev.keySeen.set(hex, where);
    ch.keyAt = at;
  }
  ch.key = key;
  openChunk(st, ch);
}

/** Opens a chunk once all its symbols and its key are in; hands chunks to the consumer in order. */
export function openChunk(st: SessionState, ch: ChunkState): void {
  if (ch.opened || ch.missing > 0 || !ch.key) return;
  const s = st.session;
  const F = st.dev.findings;
  const p = s.params;
  const start = ch.j * p.chunk;
  const expected = st.init.data.subarray(start, Math.min(st.init.data.length, start + p.chunk));
  let ct: Uint8Array;
  try {
    ct = unpack(ch.symbols, p.w, ch.ctlen); // [LM-PACK-2]: zero padding bits
    F.pass('LM-PACK-2');
  } catch (e) {
    F.fail('LM-PACK-2', `chunk ${ch.j}: the hinted symbols do not unpack to ${ch.ctlen} bytes: ${toLmError(e).message}`);
    return;
  }
  try {
    const pt = openChunkAead(ch.key, s.sid, ch.j, ct); // [LM-AEAD-1]
    F.ok('LM-AEAD-1', equalBytes(pt, expected) && ch.ctlen === expected.length + 16, `chunk ${ch.j} decrypts to ${pt.length} bytes that are not the job's bytes ${start}..${start + expected.length}`);
  } catch (e) {
    F.fail('LM-AEAD-1', `chunk ${ch.j} does not open under its key with aad "lm1 chunk" ‖ sid ‖ u64be(${ch.j}): ${toLmError(e).message}`);
    return;
  }
  ch.opened = true;
  F.pass('LM-PACK-1');
  F.pass('LM-KEY-2');
  F.pass('LM-KEY-3');
  verifyHints(st, ch, ct);
  consume(st);
}

/** [LM-HINT-1], [LM-DLV-11]: every hint sent for a chunk is the hint of its true (or shifted) symbol under the stamped revision's key. */
function verifyHints(st: SessionState, ch: ChunkState, ct: Uint8Array): void {
  const s = st.session;
  const p = s.params;
  const all = pack(ct, p.w); // [LM-PACK-1]
  for (const e of ch.log) {
    const b = e.body;
    const fs = st.frames.get(b.seq);
    if (!fs) continue;
    const own = all.subarray(fs.off, fs.off + fs.n);
    const sh = b.sh;
    const syms = b.idx ? b.idx.map((i) => (sh !== undefined ? shiftedSymbol(own, p.w, sh, i) : (own[i] ?? 0))) : Array.from(own);
    const want = hintSymbols(p.suite, s.keysG2d(b.rev).hk, p.w, p.L, syms);
    const id = sh !== undefined ? 'LM-DLV-11' : 'LM-HINT-1';
    st.dev.findings.ok(id, equalBytes(want, b.hints), `HINTS seq ${b.seq} (revision ${b.rev}${b.idx ? `, ${b.idx.length} listed symbols` : ''}${sh !== undefined ? `, shift ${sh}` : ''}) carries hints that are not those of its ${sh !== undefined ? 'shifted ' : ''}symbols under HK_g2d of revision ${b.rev}`);
  }
}

/** The consumer: takes the opened chunks in order (when the behaviour says so), then ACKs and maybe sends the RECEIPT. */
function consume(st: SessionState): void {
  const s = st.session;
  if (!s.behaviour.consume) return;
  const p = s.params;
  let moved = false;
  for (;;) {
    const ch = st.chunks.get(st.nextChunk);
    if (!ch?.opened) break;
    s.consumed = Math.min(s.tx.body.size, (st.nextChunk + 1) * p.chunk);
    st.nextChunk++;
    moved = true;
  }
  if (moved) {
    scheduleAck(st, false);
    maybeReceipt(st);
  }
}

/** Whether every chunk of the job from the resume point on was opened. */
export function complete(st: SessionState): boolean {
  const s = st.session;
  const p = s.params;
  const last = Math.ceil(s.tx.body.size / p.chunk);
  for (let j = Math.floor(s.from / p.chunk); j < last; j++) if (!st.chunks.get(j)?.opened) return false;
  return true;
}

/** An END frame from the gateway: the first is checked against the keys sent and the job. */
export function onEnd(st: SessionState, b: EndBody, at: number): void {
  const s = st.session;
  const F = st.dev.findings;
  const p = s.params;
  s.ends.push({ at, body: b });
  if (s.ends.length > 1) return maybeReceipt(st);
  const total = Math.ceil(s.tx.body.size / p.chunk);
  const missing: number[] = [];
  for (let j = Math.floor(s.from / p.chunk); j < total; j++) {
    const k = st.chunks.get(j)?.keyAt;
    if (k === undefined || k > at) missing.push(j);
  }
  // [LM-DLV-6]: END once every chunk's KEY was sent, with the job's totals and digest
  F.ok('LM-DLV-6', missing.length === 0, `END arrived before the KEY of chunk(s) ${missing.slice(0, 5).join(', ')}`);
  const frames = st.sendings.size;
  F.ok('LM-DLV-6', b.bytes === s.tx.body.size && b.chunks === total && b.frames === frames && equalBytes(b.digest, s.tx.body.jd),
    `END says ${b.bytes} bytes, ${b.chunks} chunks, ${b.frames} frames, digest ${toHex(b.digest).slice(0, 16)}; the job has ${s.tx.body.size} bytes, ${total} chunks, the session ${frames} frames, jd ${toHex(s.tx.body.jd).slice(0, 16)}`);
  maybeReceipt(st);
}

function maybeReceipt(st: SessionState): void {
  const s = st.session;
  if (!s.behaviour.receipt || s.ended || !s.ends.length || s.receiptAt !== undefined) return;
  if (s.consumed < s.tx.body.size || !s.complete()) return;
  void s.sendReceipt().catch(() => undefined);
}

/** Sends the RECEIPT ([LM-DLV-7]), signed by the device's key or, to forge one, by `signer`. */
export async function sendReceipt(st: SessionState, o: { signer?: Uint8Array; digest?: Uint8Array }): Promise<void> {
  const s = st.session;
  const body = { sid: s.sid, jd: s.tx.body.jd, bytes: s.tx.body.size, digest: o.digest ?? digest(st.init.data), time: Date.now(), device: st.dev.id, txh: s.tx.hash };
  const frame = encodeFrame(FrameType.RECEIPT, body, { kind: 'sig', secretKey: o.signer ?? st.dev.identity.secretKey });
  if (!o.signer && !o.digest) {
    s.receiptAt = Date.now();
    s.receiptsSent.push(frame);
  }
  await st.dev.publish(frame, FrameType.RECEIPT);
}

/** Publishes the latest genuine RECEIPT again, byte for byte (a device that did not hear the gateway's answer). */
export async function repeatReceipt(st: SessionState): Promise<void> {
  const s = st.session;
  const last = s.receiptsSent[s.receiptsSent.length - 1];
  if (!last) throw new Error('no RECEIPT was sent yet to repeat');
  await st.dev.publish(last, FrameType.RECEIPT);
}
