/**
 * @module gateway-profile/session-time
 * Time sync of a suite device's session ([LM-TIME-4]): TIME_REQs out (every second, and round
 * trips a test waits on), each TIME_RESP checked and turned into the offset θ and delay δ from the
 * best of the latest samples, and the revision clock built on them: rev(t) of SPEC.md §3 on the
 * gateway's clock and the check of the revision a frame is stamped with ([LM-REV-1]).
 */
import { type Bodies, FrameType, type SessionParams, type TimeSample, syncResult } from '@livematrix/spec';
import { SLACK_MS, type SessionState } from './session-state.js';

/** Sends a TIME_REQ now; a failure to publish is ignored (the next one goes a second later). */
export async function timeRequest(st: SessionState): Promise<void> {
  const t1 = Date.now();
  st.pendingTime.set(t1, t1);
  await st.session.send(FrameType.TIME_REQ, { sid: st.session.sid, t1 }).catch(() => undefined);
}

/** A time sync round trip: resolves once the gateway answered it (a barrier: it processed what came before). */
export async function roundTrip(st: SessionState, timeout: number): Promise<TimeSample> {
  const s = st.session;
  let t1 = Date.now();
  while (st.pendingTime.has(t1)) t1++;
  st.pendingTime.set(t1, Date.now());
  await s.send(FrameType.TIME_REQ, { sid: s.sid, t1 });
  const t0 = Date.now();
  for (;;) {
    const got = s.samples.find((x) => x.t1 === t1);
    if (got) return got;
    if (Date.now() - t0 > timeout) throw new Error(`the gateway did not answer a TIME_REQ within ${timeout} ms`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** [LM-TIME-4]: answered at once, t1 echoed, t2 ≤ t3 from one clock. */
export function onTimeResp(st: SessionState, b: Bodies[5], at: number): void {
  const s = st.session;
  const F = st.dev.findings;
  const sentAt = st.pendingTime.get(b.t1);
  if (!F.ok('LM-TIME-4', sentAt !== undefined, `TIME_RESP carries t1 ${b.t1}, which no TIME_REQ of the session sent`)) return;
  st.pendingTime.delete(b.t1);
  F.ok('LM-TIME-4', b.t2 <= b.t3 && b.t3 - b.t2 <= 100, `TIME_RESP t2 ${b.t2}, t3 ${b.t3}: t3 must follow t2 at once`);
  F.ok('LM-TIME-4', at - (sentAt ?? at) <= 1000, `TIME_REQ answered after ${at - (sentAt ?? at)} ms, not at once`);
  s.samples.push({ t1: b.t1, t2: b.t2, t3: b.t3, t4: at });
  const best = s.samples.slice(-4).map(syncResult).reduce((a, x) => (x.delay < a.delay ? x : a));
  s.theta = best.offset;
  s.delta = Math.max(0, best.delay);
  // the first ACK goes at once, as a fast device's does: the gateway must be able to stamp r0 from the OFFER on ([LM-REV-6])
  if (s.samples.length === 1 && s.behaviour.ack) void s.ack().catch(() => undefined);
}

/** TIME_REQs older than `ms` that the gateway never answered ([LM-TIME-4]). */
export function unansweredTime(st: SessionState, ms: number): number {
  const now = Date.now();
  return [...st.pendingTime.values()].filter((t) => now - t > ms).length;
}

/** rev(t) of SPEC.md §3 on the gateway's clock; below the epoch it goes negative instead of failing. */
export function rev(p: SessionParams, gatewayTime: number): number {
  return Math.floor((gatewayTime - p.epoch) / p.period);
}

/** [LM-REV-1]: the revision stamped on a frame is rev(g − G) of the gateway's time g when it went out. */
export function checkStamp(st: SessionState, what: string, rev: number, at: number): void {
  const s = st.session;
  const slack = s.delta / 2 + 5;
  const hi = s.revAt(at + slack);
  const lo = s.revAt(at - slack - SLACK_MS) - 1;
  st.dev.findings.ok('LM-REV-1', rev <= hi && rev >= lo, `${what} stamped revision ${rev}; at its arrival the gateway's clock (offset ${s.theta.toFixed(1)} ms) gives rev(g − G) = ${s.revAt(at)}`);
}
