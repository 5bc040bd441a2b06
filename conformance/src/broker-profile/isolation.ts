/**
 * @module broker-profile/isolation
 * Topic isolation: a device reaches only its own topics and the fleet's revocation topic, a
 * gateway the `state`, `out` and `in` topics and the fleet's alarm and revocation topics
 * ([LM-BRK-2]: what each may publish and subscribe to, other subscriptions refused with SUBACK
 * 128); a publish outside those is not forwarded ([LM-BRK-10]); a gateway that lists its devices
 * reaches those devices only ([LM-BRK-9]); the revocation topic takes gateways' REVOKE frames,
 * retained, and nothing from devices ([LM-REVOKE-4]). A device holds one connection at a time
 * ([LM-BRK-14]: a second would close the first), so the connection that observes a device's `in`
 * topic is the one that publishes its markers.
 */
import { decodeFrame, topics } from '@livematrix/spec';
import { R } from '../generated/requirements.js';
import { type BrokerTest, frames, granted, must, notForwarded, reopen, verdict } from './common.js';
import { type Conn, carries, publishSettled, suback } from './net.js';

const sub = (code: number | undefined) => (code === undefined ? 'the connection was closed' : code === 128 ? 'SUBACK 128' : `granted QoS ${code}`);

export const deviceIsolation: BrokerTest = {
  id: 'broker/device-isolation',
  title: 'a device subscribes only to its own in topic and the revocation topic (others SUBACK 128) and publishes to its own state and out topics, and a publish elsewhere is not forwarded',
  covers: [R.LM_BRK_2, R.LM_BRK_10, R.LM_REVOKE_4],
  async run(ctx) {
    const { target: t, conns, checks } = ctx;
    const f = t.fleet;
    const [d1id, d2id] = [t.device1.id, t.device2.id];
    let d1 = await conns.as(t.device1);
    for (const [filter, id] of [[topics.deviceIn(f, d1id), R.LM_BRK_2], [topics.revocation(f), R.LM_REVOKE_4]] as const) {
      const c = await suback(d1, filter);
      verdict(checks, id, granted(c), `${d1id} subscribing to ${filter}, which it may read: ${sub(c)}`);
    }
    for (const filter of [topics.deviceIn(f, d2id), topics.deviceOut(f, d2id), topics.deviceState(f, d2id), topics.deviceOut(f, d1id), topics.deviceState(f, d1id), topics.alarm(f), `lm/1/${f}/d/+/in`, `lm/1/${f}/#`, '#']) {
      d1 = await reopen(ctx, d1, t.device1);
      const c = await suback(d1, filter);
      verdict(checks, R.LM_BRK_2, c === 128, `${d1id} subscribing to ${filter}: ${sub(c)}, expected SUBACK 128`);
    }
    // observers: device 1 reads its in topic, the gateway the state, out and alarm topics of device 1
    const in1 = topics.deviceIn(f, d1id);
    const gw = await conns.as(t.gateway);
    for (const filter of [topics.deviceOut(f, d1id), topics.deviceState(f, d1id), topics.alarm(f)]) {
      const code = await suback(gw, filter);
      if (!granted(code)) throw new Error(`${gw.label} could not subscribe to ${filter} (${sub(code)}), which it may read: the isolation checks need it`);
    }
    /** device 1's connection, open and subscribed to its in topic */
    const d1s: Conn[] = [];
    const watching1 = async () => {
      if (d1s.includes(d1) && !d1.isClosed()) return d1;
      d1 = await reopen(ctx, d1, t.device1);
      const code = await suback(d1, in1);
      if (!granted(code)) throw new Error(`${d1.label} could not subscribe to ${in1} (${sub(code)}), which it may read: the isolation checks need it`);
      d1s.push(d1);
      return d1;
    };
    let d2 = await conns.as(t.device2);
    const attacks = [
      { topic: in1, attack: frames.bye(d2id), observer: 'd1', from: gw, what: `${d2id} publishing on ${d1id}'s in topic` },
      { topic: topics.deviceOut(f, d1id), attack: frames.bye(d1id), observer: gw, from: 'd1', what: `${d2id} publishing on ${d1id}'s out topic` },
      { topic: topics.deviceState(f, d1id), attack: frames.bye(d1id), observer: gw, from: 'd1', what: `${d2id} publishing on ${d1id}'s state topic` },
      { topic: topics.alarm(f), attack: frames.alarm(d2id), observer: gw, from: gw, what: `${d2id} publishing on the fleet's alarm topic` },
    ] as const;
    for (const a of attacks) {
      const d1now = await watching1();
      d2 = await reopen(ctx, d2, t.device2);
      const markerFrom = a.from === 'd1' ? d1now : a.from;
      const observer = a.observer === 'd1' ? d1now : a.observer;
      const marker = a.topic === topics.alarm(f) ? frames.alarm(d1id) : frames.bye(d1id);
      // [LM-BRK-2] the marker is a publish its sender may make: device 1 on its own state and
      // out topics, the gateway on the alarm topic (the gateway on device 1's in: [LM-BRK-9])
      const allowed = a.topic === in1 ? undefined : { checks, id: R.LM_BRK_2 };
      const r = await notForwarded({ attacker: d2, topic: a.topic, attack: a.attack, observer, markerFrom, markerTopic: a.topic, marker, ...(allowed ? { allowed } : {}) });
      verdict(checks, R.LM_BRK_10, r.kept, `${a.what}: the broker forwarded it to ${observer.label}`);
    }
    // device 1 publishing on its own in topic: it is its own observer. A broker may close it for
    // the publish; then a new connection of it subscribes, and once the gateway's marker is in,
    // neither connection may have received the publish
    const attacker = await watching1();
    const own = frames.bye(d1id);
    await publishSettled(attacker, in1, own.bytes);
    const observer = await watching1();
    const marker = frames.bye(t.gateway.id);
    if ((await publishSettled(gw, in1, marker.bytes)) !== 'acked') throw new Error(`the broker closed ${gw.label} for a publish on ${in1}, a topic of a device it serves`);
    await observer.waitFor((m) => carries(m.payload, marker.sid), `the gateway's frame on ${in1}`);
    verdict(checks, R.LM_BRK_10, !d1s.some((c) => c.received.some((m) => carries(m.payload, own.sid))), `${d1id} publishing on its own in topic: the broker forwarded it to ${d1id}`);
  },
};

export const gatewayIsolation: BrokerTest = {
  id: 'broker/gateway-isolation',
  title: 'a gateway reads only its devices\' state and out topics and the alarm and revocation topics, and publishes only to its devices\' in topics (device 2, not its own, stays out of reach; a publish on a device\'s state or out is not forwarded)',
  covers: [R.LM_BRK_2, R.LM_BRK_9, R.LM_BRK_10, R.LM_REVOKE_4],
  async run(ctx) {
    const { target: t, conns, checks, operator } = ctx;
    const f = t.fleet;
    const [d1id, d2id, gwid] = [t.device1.id, t.device2.id, t.gateway.id];
    let gw = await conns.as(t.gateway);
    for (const [filter, id] of [[topics.deviceState(f, d1id), R.LM_BRK_2], [topics.deviceOut(f, d1id), R.LM_BRK_2], [topics.alarm(f), R.LM_BRK_2], [topics.revocation(f), R.LM_REVOKE_4]] as const) {
      const c = await suback(gw, filter);
      verdict(checks, id, granted(c), `gateway ${gwid} subscribing to ${filter}, which it may read: ${sub(c)}`);
    }
    for (const filter of [topics.deviceIn(f, d1id), `lm/1/${f}/d/+/in`, `lm/1/${f}/#`, '#', 'lm/1/lm-suite-other-fleet/d/+/out']) {
      gw = await reopen(ctx, gw, t.gateway);
      const c = await suback(gw, filter);
      verdict(checks, R.LM_BRK_2, c === 128, `gateway ${gwid} subscribing to ${filter}: ${sub(c)}, expected SUBACK 128`);
    }
    // [LM-BRK-9] device 2's state and out never reach the gateway, by a fleet-wide filter (which
    // a broker may grant and then filter) or by device 2's own topics (which it may refuse)
    const reader = await conns.as(t.gateway);
    for (const filter of [topics.deviceState(f, d1id), topics.deviceOut(f, d1id), `lm/1/${f}/d/+/state`, `lm/1/${f}/d/+/out`, topics.deviceState(f, d2id), topics.deviceOut(f, d2id)]) await suback(reader, filter);
    const d1 = await conns.as(t.device1);
    const d2 = await conns.as(t.device2);
    for (const kind of ['state', 'out'] as const) {
      const topic = (d: string) => (kind === 'state' ? topics.deviceState(f, d) : topics.deviceOut(f, d));
      const r = await notForwarded({ attacker: d2, topic: topic(d2id), attack: frames.bye(d2id), observer: reader, markerFrom: d1, markerTopic: topic(d1id), marker: frames.bye(d1id), allowed: { checks, id: R.LM_BRK_2 } });
      verdict(checks, R.LM_BRK_9, r.kept, `${d2id}'s ${kind} message reached gateway ${gwid}, which does not serve ${d2id}`);
      if (r.closed) throw new Error(`the broker closed ${d2id} for publishing on its own ${kind} topic`);
    }
    // [LM-BRK-9] the gateway reaches device 1's in topic, not device 2's; device 2 watches its in
    // topic and the revocation topic, where the marker comes (each device on the connection it
    // has: a second one would close the first, [LM-BRK-14])
    const watch2 = d2;
    const watch1 = d1;
    for (const [c, filter] of [[watch2, topics.deviceIn(f, d2id)], [watch2, topics.revocation(f)], [watch1, topics.deviceIn(f, d1id)]] as const) {
      const code = await suback(c, filter);
      if (!granted(code)) throw new Error(`${c.label} could not subscribe to ${filter} (${sub(code)}), which it may read`);
    }
    gw = await reopen(ctx, gw, t.gateway);
    const toD1 = frames.bye(gwid);
    const sent = await publishSettled(gw, topics.deviceIn(f, d1id), toD1.bytes);
    const got = sent === 'acked' ? await watch1.waitFor((m) => carries(m.payload, toD1.sid), `gateway ${gwid}'s frame on ${d1id}'s in topic`).then(() => true, () => false) : false;
    verdict(checks, R.LM_BRK_9, got, `gateway ${gwid} publishing on the in topic of ${d1id}, a device it serves: ${sent === 'closed' ? 'the broker closed the connection' : 'not delivered'}`);
    gw = await reopen(ctx, gw, t.gateway);
    const marker = await conns.as(t.gateway);
    const r = await notForwarded({ attacker: gw, topic: topics.deviceIn(f, d2id), attack: frames.bye(gwid), observer: watch2, markerFrom: marker, markerTopic: topics.revocation(f), marker: frames.revoke(operator, Date.now()) });
    verdict(checks, R.LM_BRK_9, r.kept, `gateway ${gwid} publishing on the in topic of ${d2id}, a device it does not serve: forwarded to ${d2id}`);
    // [LM-BRK-10] a gateway's publish on a device's state or out topic, which [LM-BRK-2] does not
    // let it make, is not forwarded
    for (const kind of ['state', 'out'] as const) {
      gw = await reopen(ctx, gw, t.gateway);
      const topic = kind === 'state' ? topics.deviceState(f, d1id) : topics.deviceOut(f, d1id);
      const r2 = await notForwarded({ attacker: gw, topic, attack: frames.bye(d1id), observer: reader, markerFrom: d1, markerTopic: topic, marker: frames.bye(d1id), allowed: { checks, id: R.LM_BRK_2 } });
      verdict(checks, R.LM_BRK_10, r2.kept, `gateway ${gwid} publishing on ${d1id}'s ${kind} topic: forwarded`);
    }
  },
};

export const revocationTopic: BrokerTest = {
  id: 'broker/revocation-topic',
  title: 'the revocation topic: any gateway\'s REVOKE is forwarded to every device and retained; a device\'s REVOKE and a gateway\'s non-REVOKE are neither; REVOKE on no other topic',
  covers: [R.LM_REVOKE_4],
  async run(ctx) {
    const { target: t, conns, checks, operator } = ctx;
    const f = t.fleet;
    const rt = topics.revocation(f);
    const [d1, d2, gw] = [await conns.as(t.device1), await conns.as(t.device2), await conns.as(t.gateway)];
    for (const c of [d1, d2]) {
      const code = await suback(c, rt);
      must(checks, R.LM_REVOKE_4, granted(code), `${c.label} subscribing to the revocation topic ${rt}: ${sub(code)}`);
    }
    const base = Date.now();
    const list = frames.revoke(operator, base);
    const seqOf = (p: Uint8Array) => {
      try {
        const fr = decodeFrame(p);
        return 'seq' in fr.body ? fr.body.seq : undefined;
      } catch {
        return undefined;
      }
    };
    const put = await publishSettled(gw, rt, list.bytes, true);
    must(checks, R.LM_REVOKE_4, put === 'acked', `gateway ${t.gateway.id} publishing a REVOKE retained on ${rt}: the broker closed the connection`);
    for (const c of [d1, d2]) {
      const ok = await c.waitFor((m) => carries(m.payload, list.sid), 'the gateway\'s REVOKE').then(() => true, () => false);
      verdict(checks, R.LM_REVOKE_4, ok, `the gateway's REVOKE on ${rt} did not reach ${c.label}${c === d2 ? ', a device the gateway does not serve' : ''}`);
    }
    // a device's REVOKE, retained; a gateway's ALARM there, retained: neither forwarded nor retained
    const forged = frames.revoke(operator, base + 1);
    await publishSettled(d1, rt, forged.bytes, true);
    const gw2 = await reopen(ctx, gw, t.gateway);
    const alarm = frames.alarm(t.device1.id);
    await publishSettled(gw2, rt, alarm.bytes, true);
    const gw3 = await reopen(ctx, gw2, t.gateway);
    const marker = frames.revoke(operator, base + 2);
    await publishSettled(gw3, rt, marker.bytes, false);
    await d2.waitFor((m) => carries(m.payload, marker.sid), 'the marker REVOKE');
    verdict(checks, R.LM_REVOKE_4, !d2.received.some((m) => carries(m.payload, forged.sid)), `${t.device1.id}'s REVOKE on ${rt} was forwarded to ${t.device2.id} (a device may not publish there)`);
    verdict(checks, R.LM_REVOKE_4, !d2.received.some((m) => carries(m.payload, alarm.sid)), `a gateway's ALARM on ${rt} was forwarded (only REVOKE frames pass there)`);
    const late = await conns.as(t.device2);
    await suback(late, rt);
    const kept = await late.waitFor((m) => m.topic === rt, 'the retained revocation list').then((m) => m, () => undefined);
    verdict(checks, R.LM_REVOKE_4, kept !== undefined && kept.retain && carries(kept.payload, list.sid),
      kept === undefined ? `no list was retained on ${rt} after the gateway published one retained` : `the list retained on ${rt} is ${carries(kept.payload, forged.sid) ? `${t.device1.id}'s (a device's publish was retained)` : carries(kept.payload, alarm.sid) ? 'the gateway\'s ALARM (a non-REVOKE was retained)' : `seq ${String(seqOf(kept.payload))}, not the gateway's list`}${kept.retain ? '' : ' (not flagged retained)'}`);
    // REVOKE frames on no other topic: the alarm topic and a device's in topic
    const watchAlarm = await conns.as(t.gateway);
    await suback(watchAlarm, topics.alarm(f));
    const watchIn = await conns.as(t.device1);
    await suback(watchIn, topics.deviceIn(f, t.device1.id));
    for (const [topic, observer] of [[topics.alarm(f), watchAlarm], [topics.deviceIn(f, t.device1.id), watchIn]] as const) {
      const attacker = await reopen(ctx, gw3, t.gateway);
      const markerFrom = await conns.as(t.gateway);
      const r = await notForwarded({ attacker, topic, attack: frames.revoke(operator, base + 3), observer, markerFrom, markerTopic: topic, marker: topic === topics.alarm(f) ? frames.alarm(t.device1.id) : frames.bye(t.gateway.id) });
      verdict(checks, R.LM_REVOKE_4, r.kept, `a gateway's REVOKE on ${topic} was forwarded (REVOKE frames pass on the revocation topic only)`);
    }
  },
};
