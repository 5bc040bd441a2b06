/**
 * @module broker-profile/status
 * Device state outside sessions at the broker (SPEC.md §10.2): a device's status topic is its own
 * and the gateway that serves it reads it, and only STATUS frames pass there, and nowhere else
 * ([LM-STATE-7]); a Last Will whose boot sequence is below that of the HELLO retained on the
 * device's state topic (the late Will of an earlier connection) is neither forwarded nor retained,
 * while the Will of the current connection is ([LM-STATE-8]).
 */
import { type Caps, FrameType, Reason, encodeFrame, randomBytes, toHex, topics } from '@livematrix/spec';
import { R } from '../generated/requirements.js';
import { type BrokerTest, granted, notForwarded, reopen, verdict } from './common.js';
import { carries, publishSettled, suback } from './net.js';
import type { BrokerIdentity } from './target.js';

const CAPS: Caps = { suites: [[3, 1_000_000]], mem: 2 ** 24, wmax: 16, workers: 1 };

/** Frames of `who`, each named by 16 random bytes it carries (see `carries`). */
const frames = {
  status(who: BrokerIdentity): { sid: string; bytes: Uint8Array } {
    const mark = randomBytes(16);
    return { sid: toHex(mark), bytes: encodeFrame(FrameType.STATUS, { device: who.id, state: 1, seq: 0, time: Date.now(), bd: 1, tel: new Map([['suite-mark', mark]]) }, { kind: 'sig', secretKey: who.secretKey }) };
  },
  hello(who: BrokerIdentity, bd: number): { sid: string; bytes: Uint8Array } {
    const boot = randomBytes(8);
    // a HELLO has no field for 16 random bytes: its 8-byte boot twice would not be in it; its signature's last 16 bytes name it
    const bytes = encodeFrame(FrameType.HELLO, { device: who.id, idpk: who.publicKey, caps: CAPS, time: Date.now(), software: 'livematrix-conformance', online: true, boot, bd }, { kind: 'sig', secretKey: who.secretKey });
    return { sid: toHex(bytes.subarray(bytes.length - 16)), bytes };
  },
  bye(who: BrokerIdentity, bd: number): { sid: string; bytes: Uint8Array } {
    const sid = randomBytes(16);
    return { sid: toHex(sid), bytes: encodeFrame(FrameType.BYE, { sid, who: who.id, reason: Reason.offline, bd }, { kind: 'none' }) };
  },
};

const sub = (code: number | undefined) => (code === undefined ? 'the connection was closed' : code === 128 ? 'SUBACK 128' : `granted QoS ${code}`);

export const statusTopic: BrokerTest = {
  id: 'broker/status-topic',
  title: 'a device publishes STATUS on its own status topic, retained, and the gateway serving it reads it (another device\'s status does not reach it); another device\'s publish there, a HELLO there and a STATUS on a state topic are not forwarded',
  covers: [R.LM_STATE_7],
  async run(ctx) {
    const { target: t, conns, checks } = ctx;
    const f = t.fleet;
    const [d1id, d2id] = [t.device1.id, t.device2.id];
    const own = topics.deviceStatus(f, d1id);
    const gw = await conns.as(t.gateway);
    const code = await suback(gw, own);
    verdict(checks, R.LM_STATE_7, granted(code), `gateway ${t.gateway.id} subscribing to ${own}, the status topic of a device it serves: ${sub(code)}`);
    if (!granted(code)) return;
    const state = topics.deviceState(f, d1id);
    if (!granted(await suback(gw, state))) throw new Error(`gateway ${t.gateway.id} could not subscribe to ${state}, which it may read`);
    let d1 = await conns.as(t.device1);
    let d2 = await conns.as(t.device2);
    // device 2's status reaches no gateway that does not serve it: refused (SUBACK 128), or not
    // delivered ([LM-BRK-9] lets a broker take a fleet-wide subscription and filter what it delivers)
    const theirs = topics.deviceStatus(f, d2id);
    const other = await conns.as(t.gateway);
    const refused = await suback(other, theirs);
    if (granted(refused)) {
      if (!granted(await suback(other, own))) throw new Error(`gateway ${t.gateway.id} could not subscribe to ${own}, which it may read`);
      const r = await notForwarded({ attacker: d2, topic: theirs, attack: frames.status(t.device2), observer: other, markerFrom: d1, markerTopic: own, marker: frames.status(t.device1) });
      verdict(checks, R.LM_STATE_7, r.kept, `${d2id}'s STATUS on its own status topic reached gateway ${t.gateway.id}, which does not serve it`);
    } else verdict(checks, R.LM_STATE_7, refused === 128, `gateway ${t.gateway.id} subscribing to ${theirs}, the status topic of a device it does not serve: ${sub(refused)}`);
    const cases = [
      { attacker: 'd2', topic: own, attack: frames.status(t.device2), what: `${d2id} publishing a STATUS on ${d1id}'s status topic` },
      { attacker: 'd1', topic: own, attack: frames.hello(t.device1, 1), what: `${d1id} publishing a HELLO on its own status topic` },
      { attacker: 'd1', topic: state, attack: frames.status(t.device1), what: `${d1id} publishing a STATUS on its own state topic` },
    ] as const;
    for (const c of cases) {
      d1 = await reopen(ctx, d1, t.device1);
      d2 = await reopen(ctx, d2, t.device2);
      // the marker: a STATUS of device 1 on its own status topic, which it may publish
      const r = await notForwarded({ attacker: c.attacker === 'd1' ? d1 : d2, topic: c.topic, attack: c.attack, observer: gw, markerFrom: d1, markerTopic: own, marker: frames.status(t.device1), allowed: { checks, id: R.LM_STATE_7 } });
      verdict(checks, R.LM_STATE_7, r.kept, `${c.what}: the broker forwarded it to the gateway`);
    }
    // retained: a subscriber that comes later gets device 1's latest STATUS
    d1 = await reopen(ctx, d1, t.device1);
    const kept = frames.status(t.device1);
    if ((await publishSettled(d1, own, kept.bytes, true)) !== 'acked') throw new Error(`the broker closed ${d1.label} for a STATUS retained on its own status topic`);
    const late = await conns.as(t.gateway);
    await suback(late, own);
    const got = await late.waitFor((m) => m.topic === own, `the STATUS retained on ${own}`).then((m) => m, () => undefined);
    verdict(checks, R.LM_STATE_7, got !== undefined && got.retain && carries(got.payload, kept.sid), got === undefined ? `nothing retained on ${own} after a STATUS was published retained there` : `a new subscriber to ${own} got ${got.retain ? '' : 'a message not flagged retained, '}${carries(got.payload, kept.sid) ? 'the STATUS' : 'another message'}`);
  },
};

export const lateWill: BrokerTest = {
  id: 'broker/late-will',
  title: 'a Last Will whose boot sequence is below that of the HELLO retained on the device\'s state topic is neither forwarded nor retained; the Will of the current connection is',
  covers: [R.LM_STATE_8],
  async run(ctx) {
    const { target: t, conns, checks } = ctx;
    const state = topics.deviceState(t.fleet, t.device1.id);
    const gw = await conns.as(t.gateway);
    if (!granted(await suback(gw, state))) throw new Error(`gateway ${t.gateway.id} could not subscribe to ${state}, which it may read`);
    // the old connection (bd 1) is still open when the HELLO of a newer one (bd 2) is retained
    const oldWill = frames.bye(t.device1, 1);
    const old = await conns.as(t.device1, { will: { topic: state, payload: oldWill.bytes, retain: true } });
    const hello = frames.hello(t.device1, 2);
    if ((await publishSettled(old, state, hello.bytes, true)) !== 'acked') throw new Error(`the broker closed ${old.label} for a HELLO retained on its state topic`);
    await gw.waitFor((m) => carries(m.payload, hello.sid), 'the HELLO of bd 2');
    old.drop(); // the old connection dies: its Will is late
    // the current connection's Will, after it: published, so the late one, had it gone out, would be in first
    const currentWill = frames.bye(t.device1, 2);
    const current = await conns.as(t.device1, { will: { topic: state, payload: currentWill.bytes, retain: true } });
    current.drop();
    const came = await gw.waitFor((m) => carries(m.payload, currentWill.sid), `${t.device1.id}'s Last Will of bd 2`).then(() => true, () => false);
    verdict(checks, R.LM_STATE_8, came, `the Last Will of the current connection (bd 2, the retained HELLO's) was not published when its connection dropped`);
    verdict(checks, R.LM_STATE_8, !gw.received.some((m) => carries(m.payload, oldWill.sid)), `the Last Will of bd 1 was forwarded, though the HELLO retained on ${state} was of bd 2: a late Will`);
  },
};
