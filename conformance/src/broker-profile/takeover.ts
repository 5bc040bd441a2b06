/**
 * @module broker-profile/takeover
 * One connection per device identity: a device's newer connection, with another client id or
 * its own, closes the older one ([LM-BRK-14]); the older connection's Last Will is not published
 * ([LM-BRK-15]); and a device whose connections keep taking each other over (3 within 60 s, by
 * other client ids) raises ALARM `tamper` on the fleet's alarm topic ([LM-BRK-16]). Device 1
 * takes the first two checks, device 2 the alarm (so that device 1's reconnects in the other
 * tests do not count towards it).
 */
import { FrameType, Reason, decodeFrame, topics } from '@livematrix/spec';
import { R } from '../generated/requirements.js';
import { type BrokerTest, alive, frames, granted, must, verdict } from './common.js';
import { type Conn, type Received, carries, publishSettled, suback } from './net.js';

/** Resolves whether `c` was closed within `ms`. */
const closedWithin = (c: Conn, ms: number): Promise<boolean> => Promise.race([c.closed.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), ms).unref())]);

/** Whether `m` is an ALARM `tamper` about `device`. */
const tamperAbout = (device: string) => (m: Received): boolean => {
  try {
    const f = decodeFrame(m.payload);
    return f.type === FrameType.ALARM && f.body.code === Reason.tamper && f.body.device === device;
  } catch {
    return false;
  }
};

export const oneConnection: BrokerTest = {
  id: 'broker/one-connection',
  title: 'one connection per device: a second connection of device 1 (another client id, then its own) closes the first, whose Last Will is not published; device 2 taken over three times within 60 s raises ALARM tamper naming it, not before',
  covers: [R.LM_BRK_14, R.LM_BRK_15, R.LM_BRK_16],
  async run(ctx) {
    const { target: t, conns, checks } = ctx;
    const [d1, d2] = [t.device1, t.device2];
    const state = topics.deviceState(t.fleet, d1.id);
    const alarmTopic = topics.alarm(t.fleet);
    const gw = await conns.as(t.gateway);
    for (const filter of [state, alarmTopic]) {
      const code = await suback(gw, filter);
      if (!granted(code)) throw new Error(`gateway ${t.gateway.id} could not subscribe to ${filter}, which it may read`);
    }

    // [LM-BRK-14] [LM-BRK-15] another client id, then the same client id
    for (const same of [false, true]) {
      const how = same ? 'the same client id' : 'another client id';
      const will = frames.bye(d1.id);
      const firstId = conns.clientIdOf(d1, same ? 'again' : 'first');
      const first = await conns.as(d1, { clientId: firstId, will: { topic: state, payload: will.bytes, retain: false } });
      const second = await conns.as(d1, { clientId: same ? firstId : conns.clientIdOf(d1, 'second') });
      const closed = await closedWithin(first, t.waitMs);
      verdict(checks, R.LM_BRK_14, closed, `${d1.id} connected again with ${how} while its connection ${firstId} was up: that connection stayed open (${t.waitMs} ms), so the device had two`);
      verdict(checks, R.LM_BRK_14, await alive(ctx, second, d1), `${d1.id}'s newer connection (${how}) was closed: the broker must keep the newer and close the older`);
      if (!closed || second.isClosed()) continue;
      // the older connection is gone: a marker from the newer one on the state topic, and once it
      // is in, the older one's Will (published as it closed) would be too
      const marker = frames.bye(d1.id);
      if ((await publishSettled(second, state, marker.bytes)) !== 'acked') throw new Error(`the broker closed ${second.label} for a BYE on its own state topic`);
      await gw.waitFor((m) => carries(m.payload, marker.sid), `${d1.id}'s marker on ${state}`);
      verdict(checks, R.LM_BRK_15, !gw.received.some((m) => carries(m.payload, will.sid)), `the Last Will of ${firstId}, closed when ${d1.id} connected again with ${how}, was published on ${state}: the device is not offline, its newer connection is it`);
      await second.end();
    }
    // the accepted case: a connection that drops, with no newer one, has its Will published
    const will = frames.bye(d1.id);
    const last = await conns.as(d1, { will: { topic: state, payload: will.bytes, retain: false } });
    last.drop();
    const published = await gw.waitFor((m) => carries(m.payload, will.sid), `${d1.id}'s Last Will`).then(() => true, () => false);
    must(checks, R.LM_BRK_15, published, `${d1.id}'s Last Will was not published when its connection dropped with no newer one: the broker publishes no Wills ([LM-BRK-7]), so their absence above says nothing`);

    // [LM-BRK-16] device 2: two takeovers by other client ids raise nothing, the third an alarm
    let c = await conns.as(d2, { clientId: conns.clientIdOf(d2, 'flap0') });
    const takeOver = async (i: number) => {
      const next = await conns.as(d2, { clientId: conns.clientIdOf(d2, `flap${i}`) });
      if (!(await closedWithin(c, t.waitMs))) throw new Error(`${d2.id}'s connection ${c.clientId} stayed open when it connected again (${next.clientId}): no takeover to count`);
      c = next;
    };
    const quiet = async (): Promise<boolean> => {
      const m = frames.alarm(t.device1.id);
      if ((await publishSettled(gw, alarmTopic, m.bytes)) !== 'acked') throw new Error(`the broker closed gateway ${t.gateway.id} for an ALARM on ${alarmTopic}`);
      await gw.waitFor((x) => carries(x.payload, m.sid), `the gateway's marker ALARM on ${alarmTopic}`);
      return !gw.received.some(tamperAbout(d2.id));
    };
    try {
      await takeOver(1);
      await takeOver(2);
    } catch (e) {
      must(checks, R.LM_BRK_16, false, `${e instanceof Error ? e.message : String(e)} ([LM-BRK-14] first)`);
      return;
    }
    verdict(checks, R.LM_BRK_16, await quiet(), `an ALARM tamper about ${d2.id} came after only 2 takeovers of its connections`);
    await takeOver(3);
    const alarm = await gw.waitFor(tamperAbout(d2.id), `an ALARM tamper about ${d2.id}`).then((m) => m, () => undefined);
    must(checks, R.LM_BRK_16, alarm !== undefined, `${d2.id}'s connections took each other over 3 times with other client ids within a few seconds, and no ALARM tamper (65) naming it came on ${alarmTopic} within ${t.waitMs} ms`);
    if (!alarm) return;
    const f = decodeFrame(alarm.payload);
    verdict(checks, R.LM_BRK_16, f.authKind === 'none', `the broker's ALARM tamper is authenticated with ${f.authKind}, expected NONE`);
  },
};
