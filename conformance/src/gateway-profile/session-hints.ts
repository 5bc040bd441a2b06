/**
 * @module gateway-profile/session-hints
 * HINTS reception on a suite device's session: each frame checked as it arrives (its revision
 * stamp [LM-REV-1], credit [LM-DLV-16], a re-send's frame state [LM-DLV-3], when a NACKed symbol
 * may go again [LM-DLV-15], [LM-DLV-18], shifts [LM-DLV-11]), refused as a device would on a
 * revision out of range ([LM-REV-2]), then resolved in its revision's table (shifted ones too) into
 * the chunk's symbols, with the NACKs it leaves for the next ACK. Behaviour hooks drop or lie.
 */
import { type HintsBody, Reason, splitShifted, symbolCount } from '@livematrix/spec';
import { ABSENT, AMBIGUOUS } from '@livematrix/spec/engine';
import type { HintsIn } from './session.js';
import { scheduleAck } from './session-ack.js';
import { openChunk } from './session-chunks.js';
import type { FrameState, SessionState } from './session-state.js';
import { checkStamp, rev } from './session-time.js';

/** The state of a HINTS frame's seq, made on its first sending (and its chunk's on the chunk's first frame). */
function frameState(st: SessionState, b: HintsBody): FrameState {
  const p = st.session.params;
  const known = st.frames.get(b.seq);
  if (known) {
    // [LM-DLV-3]: a re-send keeps the frame's seq, chunk, off and ctlen
    st.dev.findings.ok('LM-DLV-3', known.chunk === b.chunk && known.off === b.off && known.ctlen === b.ctlen, `HINTS seq ${b.seq} re-sent with chunk/off/ctlen ${b.chunk}/${b.off}/${b.ctlen}, first sent as ${known.chunk}/${known.off}/${known.ctlen}`);
    return known;
  }
  const m = symbolCount(b.ctlen, p.w);
  const n = b.idx ? Math.min(p.symbolsPerFrame, m - b.off) : b.hints.length / p.L;
  const fs: FrameState = { seq: b.seq, chunk: b.chunk, off: b.off, n, ctlen: b.ctlen, known: new Uint32Array(n), vals: new Uint32Array(n), left: n, failedIn: new Map(), shiftFailed: new Map(), shiftsUsed: new Map() };
  st.frames.set(b.seq, fs);
  let ch = st.chunks.get(b.chunk);
  if (!ch) {
    ch = { j: b.chunk, ctlen: b.ctlen, m, symbols: new Uint32Array(m), have: new Uint8Array(m), missing: m, frames: new Set(), opened: false, log: [] };
    st.chunks.set(b.chunk, ch);
  }
  ch.frames.add(b.seq);
  return fs;
}

/** A HINTS frame from the gateway: checked, recorded, then resolved (unless dropped, refused or already received). */
export async function onHints(st: SessionState, b: HintsBody, at: number): Promise<void> {
  const s = st.session;
  const F = st.dev.findings;
  const p = s.params;
  s.firstHintsAt ??= at;
  checkStamp(st, `HINTS seq ${b.seq}`, b.rev, at);
  const start = b.chunk * p.chunk;
  // [LM-DLV-16]: no HINTS for a chunk at or beyond consumed + credit of the latest ACK
  F.ok('LM-DLV-16', start < st.creditEdge, `HINTS of chunk ${b.chunk} (first byte ${start}) sent while the device's consumed + credit was ${st.creditEdge}`);
  const sending = st.sendings.get(b.seq) ?? 0;
  st.sendings.set(b.seq, sending + 1);
  const entry: HintsIn = { at, body: b, sending, deviceRev: rev(p, s.gatewayTime(at)) };
  s.hintsIn.push(entry);
  if (s.behaviour.drop?.(b.seq, sending)) return;
  const fs = frameState(st, b);
  const ch = st.chunks.get(b.chunk);
  if (!ch) return;
  ch.log.push(entry);
  if (s.ended || s.received.has(b.seq)) return;
  checkResend(st, fs, b);
  // [LM-REV-2] as a device applies it, on the gateway's clock (the suite adopts the offset); none before r0 ([LM-KEY-3])
  const c = entry.deviceRev;
  const refusal = b.rev < c - 1 || b.rev < p.r0 ? Reason.revExpired : b.rev > c ? Reason.revFuture : null;
  if (refusal !== null) {
    st.pendingNacks.push([b.seq, refusal, b.idx ?? []]);
    return scheduleAck(st, true);
  }
  const res = await st.dev.engine.scan(p.suite, p.w, p.L, s.keysG2d(b.rev).hk, b.hints);
  const positions = b.idx ?? Array.from({ length: fs.n }, (_, i) => i);
  const lie = (sending === 0 && !b.idx) || b.sh !== undefined ? s.behaviour.lie?.(b.seq, sending, fs.n, b.sh) : undefined;
  if (lie) {
    const lied = new Set(lie.idx);
    positions.forEach((i, x) => {
      if (lied.has(i)) res[x] = lie.reason === Reason.ambiguous ? AMBIGUOUS : ABSENT;
    });
  }
  const amb: number[] = [];
  const unk: number[] = [];
  const full = 2 ** p.w - 1;
  const learn = (i: number, v: number, mask: number) => {
    if (i < 0 || i >= fs.n || fs.known[i] === full) return;
    fs.known[i] = (fs.known[i] as number) | mask;
    fs.vals[i] = (fs.vals[i] as number) | (v & mask);
    if (fs.known[i] !== full) return;
    fs.left--;
    fs.failedIn.delete(i);
    fs.shiftFailed.delete(i);
    const k = fs.off + i;
    if (!ch.have[k]) {
      ch.have[k] = 1;
      ch.symbols[k] = fs.vals[i] as number;
      ch.missing--;
    }
  };
  const sh = b.sh;
  for (let x = 0; x < positions.length; x++) {
    const i = positions[x] as number;
    const r = res[x] as number;
    if (sh !== undefined) {
      if (r >= 0) {
        const { prevLow, curHigh } = splitShifted(r, p.w, sh);
        learn(i - 1, prevLow, 2 ** sh - 1);
        learn(i, curHigh, full - (2 ** sh - 1));
      } else {
        for (const t of [i - 1, i]) if (t >= 0 && t < fs.n && fs.known[t] !== full) (r === AMBIGUOUS ? amb : unk).push(t);
      }
    } else if (r >= 0) {
      learn(i, r, full);
    } else if (i < fs.n) {
      (r === AMBIGUOUS ? amb : unk).push(i);
    }
  }
  for (const i of [...amb, ...unk]) {
    fs.failedIn.set(i, b.rev);
    if (sh !== undefined) fs.shiftFailed.set(i, b.rev);
    else fs.shiftFailed.delete(i);
  }
  if (sh !== undefined) {
    for (const i of positions) {
      for (const t of [i - 1, i]) {
        const k = `${b.rev}:${t}`;
        fs.shiftsUsed.set(k, (fs.shiftsUsed.get(k) ?? new Set()).add(sh));
      }
    }
  }
  if (amb.length) st.pendingNacks.push([b.seq, Reason.ambiguous, [...new Set(amb)].sort((x, y) => x - y)]);
  if (unk.length) st.pendingNacks.push([b.seq, Reason.unknown, [...new Set(unk)].sort((x, y) => x - y)]);
  if (fs.left === 0) s.received.add(b.seq);
  openChunk(st, ch);
  scheduleAck(st, amb.length + unk.length > 0);
}

/**
 * [LM-DLV-15]: a symbol NACKed as ambiguous or unknown goes again only in a later revision,
 * except as shifted symbols ([LM-DLV-11]), which need 1 ≤ sh < w.
 */
function checkResend(st: SessionState, fs: FrameState, b: HintsBody): void {
  const F = st.dev.findings;
  const sh = b.sh;
  const positions = b.idx ?? Array.from({ length: fs.n }, (_, i) => i);
  // [LM-DLV-18]: a symbol NACKed again after a shifted re-send goes shifted again in that revision with a shift not yet used for it there, or in a later revision
  const after = new Set((sh !== undefined ? positions.flatMap((i) => [i - 1, i]) : positions).filter((t) => fs.shiftFailed.has(t)));
  for (const t of after) {
    const r = fs.shiftFailed.get(t) as number;
    const used = fs.shiftsUsed.get(`${r}:${t}`) ?? new Set<number>();
    const ok = b.rev > r || (b.rev === r && sh !== undefined && !used.has(sh));
    F.ok('LM-DLV-18', ok, `symbol ${t} of HINTS seq ${b.seq}, NACKed again after a shifted re-send (shift ${[...used].join(', ')}) in revision ${r}, went again ${sh !== undefined ? `shifted by ${sh}` : 'unshifted'} in revision ${b.rev}: ${b.rev < r ? 'in an earlier revision' : sh === undefined ? 'unshifted, it must wait for a later revision' : 'with a shift it already had in that revision, which fails again'}`);
  }
  if (sh !== undefined) {
    F.ok('LM-DLV-11', sh >= 1 && sh < st.session.params.w && b.idx !== undefined, `HINTS seq ${b.seq} with shift ${sh} outside 1..${st.session.params.w - 1}`);
    return;
  }
  const again = positions.filter((i) => fs.failedIn.has(i));
  if (!again.length) return;
  const early = again.filter((i) => (fs.failedIn.get(i) as number) >= b.rev);
  F.ok('LM-DLV-15', early.length === 0, `HINTS seq ${b.seq} re-sent symbols ${early.slice(0, 4).join(', ')} NACKed as ambiguous or unknown in revision ${fs.failedIn.get(early[0] as number)} again in revision ${b.rev} (under the same key they fail again)`);
}
