/**
 * @module broker-profile/common
 * What the broker profile's tests share: their shape, verdicts that gather findings without
 * stopping a test, and the one pattern most of them use to show that the broker did NOT forward
 * something: the forbidden publish settles first (acknowledged, or the connection closed for it),
 * then an allowed marker goes to the same observer, and once the marker is in, whatever the
 * forbidden publish would have delivered would be in too.
 */
import { FrameType, Reason, encodeFrame, randomBytes, signRevocation, toHex, type IdentityKeyPair } from '@livematrix/spec';
import type { Checks } from '../checks.js';
import type { RequirementId } from '../generated/requirements.js';
import { type Conn, type Connections, carries, publishSettled } from './net.js';
import type { BrokerIdentity, BrokerTarget } from './target.js';

export interface BrokerCtx {
  target: BrokerTarget;
  conns: Connections;
  checks: Checks;
  log: (line: string) => void;
  /** a throw-away operator key for the suite's REVOKE frames: the broker does not judge lists ([LM-REVOKE-4]) */
  operator: IdentityKeyPair;
}

export interface BrokerTest {
  id: string;
  title: string;
  covers: readonly RequirementId[];
  /** false when the target lacks an input the test needs (it is then NOT EXECUTED) */
  runs?: (t: BrokerTarget) => boolean;
  run(ctx: BrokerCtx): Promise<void>;
}

/** Records a check of `id` that stops the test when it fails (Checks.check, callable through a destructured binding). */
export function must(checks: Checks, id: RequirementId, ok: boolean, msg: string): void {
  checks.check(id, ok, msg);
}

/** Records a finding of `id` without stopping the test: PASS when `ok`, otherwise FAIL with `msg`. */
export function verdict(checks: Checks, id: RequirementId, ok: boolean, msg: string): void {
  if (ok) checks.check(id, true, msg);
  else checks.fail(id, msg);
}

/** The frames the suite publishes as a marker or an attack, each named by a random sid (or seq). */
export const frames = {
  bye(who: string): { sid: string; bytes: Uint8Array } {
    const sid = randomBytes(16);
    return { sid: toHex(sid), bytes: encodeFrame(FrameType.BYE, { sid, who, reason: Reason.offline }, { kind: 'none' }) };
  },
  alarm(device: string): { sid: string; bytes: Uint8Array } {
    const sid = randomBytes(16);
    return { sid: toHex(sid), bytes: encodeFrame(FrameType.ALARM, { sid, code: Reason.tamper, detail: 'livematrix-conformance broker profile', time: Date.now(), device }, { kind: 'none' }) };
  },
  /** a REVOKE signed by the suite's throw-away operator; the last 16 bytes of its signature name it */
  revoke(operator: IdentityKeyPair, seq: number): { sid: string; bytes: Uint8Array } {
    const bytes = signRevocation({ seq, time: Date.now(), next: Date.now() + 3_600_000, devices: [], operatorSecret: operator.secretKey, operatorPublic: operator.publicKey });
    return { sid: toHex(bytes.subarray(bytes.length - 16)), bytes };
  },
};

/**
 * Shows that a forbidden publish was not forwarded: `attacker` publishes `attack` on `topic`
 * (QoS 1) and it settles; then `markerFrom` publishes `marker` on `markerTopic`; once `observer`
 * has the marker, it must not have the attack. Returns whether the attack was kept out, and
 * whether the broker closed the attacker's connection for it. With `allowed`, the marker's
 * delivery is itself a check of the rule that lets `markerFrom` publish there.
 */
export async function notForwarded(o: {
  attacker: Conn; topic: string; attack: { sid: string; bytes: Uint8Array }; retain?: boolean;
  observer: Conn; markerFrom: Conn; markerTopic: string; marker: { sid: string; bytes: Uint8Array };
  allowed?: { checks: Checks; id: RequirementId };
}): Promise<{ kept: boolean; closed: boolean }> {
  const settled = await publishSettled(o.attacker, o.topic, o.attack.bytes, o.retain ?? false);
  const deliver = async () => {
    const m = await publishSettled(o.markerFrom, o.markerTopic, o.marker.bytes);
    if (m !== 'acked') throw new Error(`the broker closed ${o.markerFrom.label} for a publish it may make on ${o.markerTopic}`);
    await o.observer.waitFor((r) => carries(r.payload, o.marker.sid), `${o.markerFrom.label}'s frame on ${o.markerTopic}`);
  };
  if (o.allowed) await o.allowed.checks.expect(o.allowed.id, deliver, `${o.markerFrom.label} publishing on ${o.markerTopic}, which it may`);
  else await deliver();
  return { kept: !o.observer.received.some((r) => carries(r.payload, o.attack.sid)), closed: settled === 'closed' };
}

/** True when `c` is still connected: a QoS 1 publish on its own `out` topic is acknowledged. */
export async function alive(ctx: BrokerCtx, c: Conn, who: BrokerIdentity): Promise<boolean> {
  return (await publishSettled(c, `lm/1/${ctx.target.fleet}/d/${who.id}/out`, frames.bye(who.id).bytes)) === 'acked';
}

/** A connection of `who` that is open: `c` itself, or a new one when the broker closed it. */
export async function reopen(ctx: BrokerCtx, c: Conn, who: BrokerIdentity): Promise<Conn> {
  return c.isClosed() ? ctx.conns.as(who) : c;
}

/** True for a SUBACK code that grants the subscription (QoS 0, 1 or 2). */
export const granted = (code: number | undefined): boolean => code === 0 || code === 1 || code === 2;
