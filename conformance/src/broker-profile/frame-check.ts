/**
 * @module broker-profile/frame-check
 * The broker's frame check ([LM-BRK-3], [LM-MQTT-4]): payloads that break one rule each of the
 * CBOR profile, the envelope or the topic's frame types are neither forwarded nor retained, and
 * the client that sent them stays connected; a frame with an extension key passes. Last Wills
 * get the checks of a publish at CONNECT ([LM-BRK-7]).
 */
import { topics } from '@livematrix/spec';
import { R } from '../generated/requirements.js';
import { badPayloads, extensionFrame } from './bad-frames.js';
import { type BrokerTest, frames, granted, must, verdict } from './common.js';
import { ConnectRefused, carries, publishSettled, suback } from './net.js';

export const frameCheck: BrokerTest = {
  id: 'broker/frame-check',
  title: 'malformed payloads on a device\'s out and state topics (bad CBOR, noncanonical, trailing, too large, too deep, wrong version, type, schema, auth length, key) dropped, not retained, the client kept',
  covers: [R.LM_BRK_3, R.LM_MQTT_4, R.LM_CBOR_2, R.LM_CBOR_3, R.LM_CBOR_4, R.LM_CBOR_5, R.LM_ROLE_2, R.LM_FRAME_1, R.LM_FRAME_3, R.LM_FRAME_4, R.LM_REVOKE_4],
  async run(ctx) {
    const { target: t, conns, checks, operator } = ctx;
    const f = t.fleet;
    const d1id = t.device1.id;
    const out = topics.deviceOut(f, d1id);
    const gw = await conns.as(t.gateway);
    const code = await suback(gw, out);
    if (!granted(code)) throw new Error(`gateway ${t.gateway.id} could not subscribe to ${out}, which it may read`);
    let d1 = await conns.as(t.device1);
    const bad = badPayloads(d1id, operator);
    const disconnected: string[] = [];
    for (const b of bad) {
      if ((await publishSettled(d1, out, b.bytes)) === 'closed') {
        disconnected.push(b.what);
        d1 = await conns.as(t.device1);
      }
    }
    const ext = extensionFrame(d1id);
    const extSent = await publishSettled(d1, out, ext.bytes);
    const last = frames.bye(d1id);
    if ((await publishSettled(d1, out, last.bytes)) !== 'acked') throw new Error(`the broker closed ${d1.label} for a valid BYE on its out topic`);
    await gw.waitFor((m) => carries(m.payload, last.sid), 'the last valid frame');
    const leaked = bad.filter((b) => gw.received.some((m) => carries(m.payload, b.sid)));
    for (const b of bad) verdict(checks, b.id, !leaked.includes(b), `${b.what} on ${out} was forwarded`);
    verdict(checks, R.LM_FRAME_4, extSent === 'acked' && gw.received.some((m) => carries(m.payload, ext.sid)), `a valid BYE with the extension key 16 on ${out} was ${extSent === 'closed' ? 'answered by closing the connection' : 'dropped'}: keys of 16 or more must be ignored`);
    verdict(checks, R.LM_BRK_3, leaked.length === 0, `forwarded on ${out}: ${leaked.map((b) => b.what).join('; ')}`);
    verdict(checks, R.LM_BRK_3, disconnected.length === 0, `the broker disconnected the client for: ${disconnected.join('; ')}`);
    verdict(checks, R.LM_MQTT_4, leaked.length === 0 && disconnected.length === 0, `of ${bad.length} payloads that are no valid frame for ${out}, ${leaked.length} forwarded, ${disconnected.length} answered by a disconnect`);
    // nothing malformed is retained: a valid BYE retained on device 1's state topic, then
    // payloads that fail the check retained there; a new subscriber gets the BYE
    const state = topics.deviceState(f, d1id);
    d1 = d1.isClosed() ? await conns.as(t.device1) : d1;
    const good = frames.bye(d1id);
    if ((await publishSettled(d1, state, good.bytes, true)) !== 'acked') throw new Error(`the broker closed ${d1.label} for a valid BYE retained on its state topic`);
    const badState = [bad[0]!, bad.find((b) => b.id === R.LM_CBOR_3)!, bad.find((b) => b.id === R.LM_MQTT_4)!, { what: 'an ALARM (not allowed on state)', ...frames.alarm(d1id) }];
    for (const b of badState) if ((await publishSettled(d1, state, b.bytes, true)) === 'closed') d1 = await conns.as(t.device1);
    const late = await conns.as(t.gateway);
    await suback(late, state);
    const kept = await late.waitFor((m) => m.topic === state, `the message retained on ${state}`).then((m) => m, () => undefined);
    const which = kept ? badState.find((b) => carries(kept.payload, b.sid)) : undefined;
    verdict(checks, R.LM_BRK_3, kept !== undefined && carries(kept.payload, good.sid), kept === undefined ? `nothing retained on ${state} after a valid BYE was published retained` : `retained on ${state}: ${which ? which.what : 'not the last valid frame'}`);
  },
};

export const wills: BrokerTest = {
  id: 'broker/will',
  title: 'Last Wills: a CONNECT whose Will is on a topic the client may not publish to, or is no valid frame for its topic, refused with return code 5; a valid Will accepted and published',
  covers: [R.LM_BRK_7],
  async run(ctx) {
    const { target: t, conns, checks } = ctx;
    const f = t.fleet;
    const [d1id, d2id] = [t.device1.id, t.device2.id];
    const state = topics.deviceState(f, d1id);
    const garbage = new Uint8Array([0xff, 0x00, 0x01]);
    const cases = [
      { what: `on ${d2id}'s state topic`, will: { topic: topics.deviceState(f, d2id), payload: frames.bye(d2id).bytes, retain: true } },
      { what: `on ${d1id}'s own in topic`, will: { topic: topics.deviceIn(f, d1id), payload: frames.bye(d1id).bytes, retain: false } },
      { what: 'on the fleet\'s alarm topic (a device may not publish there)', will: { topic: topics.alarm(f), payload: frames.alarm(d1id).bytes, retain: false } },
      { what: `on ${d1id}'s state topic, a payload that is no CBOR`, will: { topic: state, payload: garbage, retain: true } },
      { what: `on ${d1id}'s state topic, an ALARM (not allowed on state)`, will: { topic: state, payload: frames.alarm(d1id).bytes, retain: true } },
      { what: `on ${d1id}'s state topic, a BYE with a byte after it`, will: { topic: state, payload: Uint8Array.from([...frames.bye(d1id).bytes, 0]), retain: true } },
    ];
    for (const c of cases) {
      const code = await conns.refusal(t.device1, { will: c.will });
      verdict(checks, R.LM_BRK_7, code === 5, `a CONNECT of ${d1id} with a Last Will ${c.what}: ${code === 0 ? 'accepted' : code === undefined ? 'closed without a CONNACK' : `return code ${code}`}, expected return code 5`);
    }
    // a valid Will: accepted, and published when the connection drops
    const gw = await conns.as(t.gateway);
    await suback(gw, state);
    const bye = frames.bye(d1id);
    let d1;
    try {
      d1 = await conns.as(t.device1, { will: { topic: state, payload: bye.bytes, retain: false } });
    } catch (e) {
      if (!(e instanceof ConnectRefused)) throw e;
      must(checks, R.LM_BRK_7, false, `a CONNECT of ${d1id} with a valid Last Will (BYE, NONE, on its state topic) was refused: return code ${String(e.returnCode)}`);
      return;
    }
    d1.drop();
    const published = await gw.waitFor((m) => carries(m.payload, bye.sid), `${d1id}'s Last Will`).then(() => true, () => false);
    verdict(checks, R.LM_BRK_7, published, `${d1id}'s valid Last Will was not published when its connection dropped`);
  },
};
