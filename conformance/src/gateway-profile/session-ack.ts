/**
 * @module gateway-profile/session-ack
 * The device's ACKs: cum, SACK ranges and queued NACKs from what it received, with consumed and
 * credit. Sending one records what it reported: the credit edge HINTS must stay below
 * ([LM-DLV-16]), when every HINTS frame of a chunk was first reported received (what a KEY waits
 * for, [LM-AEAD-3]), and each NACK with the revision its symbols failed in.
 */
import { type AckBody, FrameType } from '@livematrix/spec';
import type { SessionState } from './session-state.js';

/** The ACK the device would send now; `over` changes fields (a device that lies). */
export function ackBody(st: SessionState, over: Partial<AckBody>): AckBody {
  const s = st.session;
  let cum = 0;
  while (s.received.has(cum)) cum++;
  const above = [...s.received].filter((x) => x > cum).sort((a, b) => a - b);
  const sack: [number, number][] = [];
  for (const x of above) {
    const last = sack[sack.length - 1];
    if (last && last[1] === x - 1) last[1] = x;
    else if (sack.length < 64) sack.push([x, x]);
  }
  const nack = st.pendingNacks.splice(0, 64);
  return { sid: s.sid, cum, sack, nack, consumed: s.consumed, credit: s.window, ...over };
}

/** Sends an ACK of the device's state now (`over` changes fields); records what it reported. */
export async function ack(st: SessionState, over: Partial<AckBody>, auth: 'mac' | 'bad-mac' | 'none'): Promise<AckBody> {
  const s = st.session;
  if (st.ackTimer) clearTimeout(st.ackTimer);
  st.ackTimer = undefined;
  const body = s.ackBody(over);
  const at = Date.now();
  if (auth === 'mac') {
    s.acksSent.push({ at, body });
    st.creditEdge = Math.max(st.creditEdge, body.consumed + body.credit);
    const reported = (x: number) => x < body.cum || body.sack.some(([lo, hi]) => x >= lo && x <= hi);
    for (const ch of st.chunks.values()) {
      if (ch.reportedAt === undefined && ch.missing === 0 && [...ch.frames].every(reported)) ch.reportedAt = at;
    }
    for (const [seq, reason, idx] of body.nack) {
      const fr = st.frames.get(seq);
      s.nacksSent.push({ at, seq, reason, idx, rev: fr ? Math.max(...[...fr.failedIn.values(), -1]) : -1 });
    }
  }
  await s.send(FrameType.ACK, body, auth);
  return body;
}

/** An ACK now (`now`, for NACKs) or within 5 ms, when the device ACKs by itself and is in sync. */
export function scheduleAck(st: SessionState, now: boolean): void {
  const s = st.session;
  if (!s.behaviour.ack || s.ended || !s.samples.length) return;
  if (now) return void s.ack().catch(() => undefined);
  st.ackTimer ??= setTimeout(() => {
    st.ackTimer = undefined;
    void s.ack().catch(() => undefined);
  }, 5);
}
