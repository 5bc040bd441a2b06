/**
 * @module broker-profile/limits
 * Limits: the maximum MQTT packet size, enforced on the fixed header before authentication
 * ([LM-BRK-6]); the rate limit of a client's registry entry, whose breach disconnects the client
 * and raises an ALARM `rate` on the fleet's alarm topic ([LM-BRK-4]).
 */
import { Socket } from 'node:net';
import { FRAME_QOS, FrameType, Reason, decodeFrame, errorMessage, topics } from '@livematrix/spec';
import { R } from '../generated/requirements.js';
import { type BrokerTest, frames, granted, must, verdict } from './common.js';
import { publishSettled, suback } from './net.js';
import type { BrokerTarget } from './target.js';

/** The MQTT variable-length encoding of a remaining length. */
function varint(n: number): number[] {
  const out: number[] = [];
  do {
    let b = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) b |= 0x80;
    out.push(b);
  } while (n > 0);
  return out;
}

/** The remaining length that makes a packet (type byte, length bytes, body) exactly `size` bytes. */
function remainingFor(size: number): number {
  for (let k = 1; k <= 4; k++) if (varint(size - 1 - k).length === k) return size - 1 - k;
  throw new RangeError(`no MQTT packet is exactly ${size} bytes`);
}

/** Opens a TCP connection to the broker, writes `bytes`, and resolves whether the broker closed it within `ms`. */
function closedAfter(t: BrokerTarget, bytes: Uint8Array, ms: number): Promise<boolean> {
  const u = new URL(t.url);
  if (u.protocol !== 'mqtt:' && u.protocol !== 'tcp:') return Promise.reject(new Error(`the packet size test speaks plain TCP; the URL ${u.protocol}// is not supported`));
  return new Promise((res, rej) => {
    const s = new Socket();
    const timer = setTimeout(() => {
      s.destroy();
      res(false);
    }, ms);
    s.once('error', (e) => {
      if (!s.connecting) return; // a reset after connecting is a close
      clearTimeout(timer);
      rej(e);
    });
    s.once('close', () => {
      clearTimeout(timer);
      res(true);
    });
    s.on('data', () => undefined);
    s.connect(Number(u.port || 1883), u.hostname, () => s.write(bytes));
  });
}

export const packetSize: BrokerTest = {
  id: 'broker/packet-size',
  title: 'the maximum packet size: a fixed header declaring one byte more, or a remaining length of five bytes, closes the connection before its body and before authentication; a packet of exactly the maximum passes',
  covers: [R.LM_BRK_6],
  async run(ctx) {
    const { target: t, conns, checks } = ctx;
    const L = t.maxPacketSize;
    // a CONNECT's fixed header that declares L + 1 bytes, and a few bytes of its body
    const over = Uint8Array.from([0x10, ...varint(remainingFor(L + 1)), ...new Array<number>(32).fill(0)]);
    verdict(checks, R.LM_BRK_6, await closedAfter(t, over, t.waitMs), `a CONNECT whose fixed header declares ${L + 1} bytes (one over the maximum of ${L}) was not closed within ${t.waitMs} ms of its header: the broker waits for (and buffers) its body`);
    const malformed = Uint8Array.from([0x10, 0xff, 0xff, 0xff, 0xff, 0x01, 0, 0, 0, 0]);
    verdict(checks, R.LM_BRK_6, await closedAfter(t, malformed, t.waitMs), `a fixed header with a remaining length of five bytes was not closed within ${t.waitMs} ms`);
    // after authentication too: a PUBLISH header one byte over
    const d1 = await conns.as(t.device1);
    (d1.client.stream as unknown as { write(b: Uint8Array): boolean }).write(Uint8Array.from([0x32, ...varint(remainingFor(L + 1))]));
    const closed = await Promise.race([d1.closed.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), t.waitMs))]);
    verdict(checks, R.LM_BRK_6, closed, `an authenticated client's PUBLISH header declaring ${L + 1} bytes was not closed within ${t.waitMs} ms`);
    // a PUBLISH of exactly the maximum is taken (its payload, no frame, is dropped by the frame
    // check; the client stays)
    const d = await conns.as(t.device1);
    const topic = topics.deviceOut(t.fleet, t.device1.id);
    const rest = remainingFor(L);
    const payload = new Uint8Array(rest - 2 - Buffer.byteLength(topic) - 2);
    const r = await publishSettled(d, topic, payload);
    verdict(checks, R.LM_BRK_6, r === 'acked', `a PUBLISH of exactly ${L} bytes (the maximum) closed the connection`);
  },
};

export const rateAlarm: BrokerTest = {
  id: 'broker/rate-alarm',
  title: 'a flood over the frame rate of device 1\'s registry entry disconnects it and raises ALARM rate (NONE, naming the device) on the fleet\'s alarm topic',
  covers: [R.LM_BRK_4, R.LM_MQTT_1, R.LM_FRAME_21, R.LM_CBOR_1, R.LM_ALARM_6],
  async run(ctx) {
    const { target: t, conns, checks, log } = ctx;
    const alarmTopic = topics.alarm(t.fleet);
    const gw = await conns.as(t.gateway);
    const code = await suback(gw, alarmTopic);
    if (!granted(code)) throw new Error(`gateway ${t.gateway.id} could not subscribe to ${alarmTopic}`);
    const d1 = await conns.as(t.device1);
    const out = topics.deviceOut(t.fleet, t.device1.id);
    const frame = Buffer.from(frames.bye(t.device1.id).bytes);
    // QoS 0 publishes as fast as the connection takes them, for at most 10 s or 20 times the
    // limit, until the broker closes the connection
    const t0 = Date.now();
    let sent = 0;
    const batch = Math.max(100, Math.ceil(t.rateLimit / 10));
    while (!d1.isClosed() && Date.now() - t0 < 10_000 && sent < 20 * t.rateLimit) {
      await Promise.race([Promise.all(Array.from({ length: batch }, () => d1.client.publishAsync(out, frame, { qos: 0 }).catch(() => undefined))), d1.closed]);
      sent += batch;
    }
    const secs = (Date.now() - t0) / 1000;
    log(`broker/rate-alarm: ${sent} frames in ${secs.toFixed(1)} s (${Math.round(sent / secs)}/s) against a limit of ${t.rateLimit}/s; ${d1.isClosed() ? 'disconnected' : 'still connected'}`);
    must(checks, R.LM_BRK_4, d1.isClosed(), `${t.device1.id} sent ${sent} frames in ${secs.toFixed(1)} s (${Math.round(sent / secs)} per second, over its limit of ${t.rateLimit}) and was not disconnected`);
    const m = await gw.waitFor((x) => {
      try {
        const fr = decodeFrame(x.payload);
        return fr.type === FrameType.ALARM && fr.body.code === Reason.rate;
      } catch {
        return false;
      }
    }, 'an ALARM rate').catch((e: unknown) => {
      must(checks, R.LM_BRK_4, false, `no ALARM rate (64) on ${alarmTopic} after ${t.device1.id} was disconnected for its rate: ${errorMessage(e)}`);
    });
    if (!m) return;
    const fr = decodeFrame(m.payload); // decodes: the deterministic encoding is checked by the decoder
    must(checks, R.LM_CBOR_1, true, 'the broker\'s ALARM is deterministic CBOR (the suite\'s decoder refuses anything else)');
    verdict(checks, R.LM_FRAME_21, fr.authKind === 'none', `the broker's ALARM is authenticated with ${fr.authKind}, expected NONE (the kind of the table for a sender's ALARM)`);
    verdict(checks, R.LM_BRK_4, fr.authKind === 'none', `the broker's ALARM is authenticated with ${fr.authKind}, expected NONE`);
    verdict(checks, R.LM_MQTT_1, m.topic === alarmTopic && m.qos === FRAME_QOS[FrameType.ALARM], `the broker's ALARM came on ${m.topic} at QoS ${m.qos}, expected ${alarmTopic} at QoS ${FRAME_QOS[FrameType.ALARM]}`);
    const about = fr.type === FrameType.ALARM ? fr.body.device : undefined;
    verdict(checks, R.LM_ALARM_6, about === t.device1.id, `the broker's ALARM names device ${String(about)} in key 6, expected ${t.device1.id}`);
  },
};
