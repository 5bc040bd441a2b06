/**
 * @module scenarios/state
 * The device's state outside sessions (SPEC.md §10.2): its signed, retained STATUS on its status
 * topic, after its HELLO, at the interval and on every change of state through a session
 * ([LM-STATE-1], [LM-STATE-2]), its HELLO again every interval ([LM-STATE-4]); and its boot
 * sequence across a restart: the Will of the connection the restart cut carries that connection's
 * `bd`, the restarted device's HELLO and STATUS a greater one ([LM-STATE-3]). The suite watches the
 * status topic on a connection of its own, as the gateway it plays.
 */
import { type AnyFrame, DEVICE_STATE_NAMES, DeviceState, type DeviceStateId, FrameType, type StatusBody, decodeFrame, equalBytes, topics, verifyFrame } from '@livematrix/spec';
import type { FrameLink } from '@livematrix/spec/transport';
import { R } from '../generated/requirements.js';
import type { Tester } from '../tester.js';
import { until } from '../wait.js';
import { type Scenario, check, deliverExact, failUnless, open } from './common.js';

/** A STATUS as the suite received it. */
interface Seen {
  at: number;
  body: StatusBody;
  /** signed by the device under test's key */
  signed: boolean;
  retain: boolean;
  qos: number;
}

/** The suite's watch on the device's status topic. */
class StatusWatch {
  readonly seen: Seen[] = [];
  private constructor(private readonly link: FrameLink) {}

  static async open(t: Tester): Promise<StatusWatch> {
    const w = new StatusWatch(await t.connectLink());
    const topic = topics.deviceStatus(t.o.fleet, t.o.deviceId);
    w.link.onPayload((tp, raw, meta) => {
      if (tp !== topic) return;
      let f: AnyFrame;
      try {
        f = decodeFrame(raw);
      } catch {
        return; // not a frame: not a STATUS, and the device's business only if it sent it (no one else may publish there)
      }
      if (f.type !== FrameType.STATUS) return;
      let signed = true;
      try {
        verifyFrame(f, { signer: t.o.devicePublic });
      } catch {
        signed = false;
      }
      w.seen.push({ at: Date.now(), body: f.body, signed, retain: meta.retain, qos: meta.qos });
    });
    await w.link.subscribe(topic);
    return w;
  }

  /** The first STATUS after the `from`-th one that satisfies `pred`, waited for up to `ms`. */
  next(from: number, pred: (s: Seen) => boolean, ms: number, what: string): Promise<Seen> {
    return until(() => this.seen.slice(from).find(pred), ms, what);
  }

  async close(): Promise<void> {
    await this.link.close(true).catch(() => undefined);
  }
}

const name = (state: number) => DEVICE_STATE_NAMES[state as DeviceStateId] ?? `state ${state}`;

/** The slack the suite allows over a period the device promises (broker and scheduling delays). */
const SLACK_MS = 1500;

export const deviceStatus: Scenario = {
  id: 'device/status',
  title: 'publishes a signed, retained STATUS on its status topic at QoS 1: idle, then streaming as a session runs and idle again, each change at once, and one every status interval, numbered in order; its HELLO again every interval',
  covers: ['LM-STATE-1', 'LM-STATE-2', 'LM-STATE-4'],
  async run(ctx) {
    const t = ctx.tester;
    const interval = ctx.statusInterval;
    const hello = await t.waitHello();
    const watch = await StatusWatch.open(t);
    try {
      // the retained one, at once: the device's, signed, of its current connection
      const first = await ctx.checks.expect(R.LM_STATE_1, () => watch.next(0, () => true, 5000, 'a STATUS retained on the status topic'), `a subscriber to ${topics.deviceStatus(t.o.fleet, t.o.deviceId)}`);
      check(ctx, R.LM_STATE_1, first.retain, 'the first STATUS after subscribing was not flagged retained: the device publishes it without the retain flag');
      check(ctx, R.LM_STATE_1, first.signed, 'the STATUS is not signed by the device\'s identity key');
      check(ctx, R.LM_STATE_1, first.body.device === t.o.deviceId, `the STATUS names "${first.body.device}"`);
      check(ctx, R.LM_STATE_1, hello.bd === undefined || first.body.bd === hello.bd, `the retained STATUS carries bd ${first.body.bd}, the device's HELLO bd ${String(hello.bd)}`);
      // idle between sessions (a session the last scenario left may still be ending)
      const idle = await watch.next(0, (s) => s.body.state === DeviceState.idle, interval + SLACK_MS + 5000, 'an idle STATUS between sessions').catch(() => undefined);
      check(ctx, R.LM_STATE_2, idle, `no STATUS idle while no session ran within ${interval + SLACK_MS + 5000} ms (last: ${name(watch.seen.at(-1)?.body.state ?? 0)})`);
      // one STATUS per interval at least, and the HELLO again as often ([LM-STATE-4])
      const n = watch.seen.length;
      const hellos = t.hellos;
      const since = Date.now();
      const beat = await watch.next(n, () => true, interval + SLACK_MS, `a STATUS within the status interval of ${interval} ms`).catch(() => undefined);
      check(ctx, R.LM_STATE_1, beat, `no STATUS within ${interval + SLACK_MS} ms of the last while nothing changed: the device's status interval is ${interval} ms (--status-interval)`);
      const again = await until(() => t.hellos > hellos || undefined, Math.max(0, interval + SLACK_MS - (Date.now() - since)), 'a HELLO again').catch(() => undefined);
      check(ctx, R.LM_STATE_4, again, `no HELLO within ${interval + SLACK_MS} ms: the device must publish its HELLO again at least every status interval`);
      const now = t.hello;
      check(ctx, R.LM_STATE_4, now?.online === true && equalBytes(now.boot ?? new Uint8Array(0), hello.boot ?? new Uint8Array(0)) && now.bd === hello.bd, 'the HELLO published again is not of the same boot and boot sequence');
      check(ctx, R.LM_STATE_4, t.helloRetained || (await t.helloIsRetained()), 'the HELLO is not retained');
      // through a session: streaming at once, idle again once it ended ([LM-STATE-2])
      const before = watch.seen.length;
      const s = await open(ctx, 16);
      const streaming = await watch.next(before, (x) => x.body.state === DeviceState.streaming, SLACK_MS + 1000, 'a STATUS streaming').catch(() => undefined);
      check(ctx, R.LM_STATE_2, streaming, `no STATUS streaming within ${SLACK_MS + 1000} ms of the device's ACCEPT: a change of state is published at once (last: ${name(watch.seen.at(-1)?.body.state ?? 0)})`);
      await deliverExact(ctx, s);
      const after = watch.seen.length;
      const back = await watch.next(after - 1, (x) => x.body.state === DeviceState.idle && x.body.seq > streaming.body.seq, SLACK_MS + 3000, 'a STATUS idle after the session').catch(() => undefined);
      check(ctx, R.LM_STATE_2, back, `no STATUS idle within ${SLACK_MS + 3000} ms of the session's end (last: ${name(watch.seen.at(-1)?.body.state ?? 0)})`);
      // all of one connection: signed, QoS 1, numbered one after another
      const run = watch.seen;
      const bd = run[0]?.body.bd;
      failUnless(ctx, R.LM_STATE_1, run.every((x) => x.body.bd === bd), `the STATUS frames carry different bd (${[...new Set(run.map((x) => x.body.bd))].join(', ')}) though the device did not reconnect`);
      check(ctx, R.LM_STATE_1, run.every((x) => x.signed && x.qos === 1), 'a STATUS was not signed by the device, or not published at QoS 1');
      const gaps = run.slice(1).filter((x, i) => x.body.seq !== (run[i] as Seen).body.seq + 1);
      check(ctx, R.LM_STATE_1, gaps.length === 0, `the STATUS frames are not numbered one after another: seq ${run.map((x) => x.body.seq).join(', ')}`);
      ctx.log(`device/status: ${run.length} STATUS frames, states ${run.map((x) => name(x.body.state)).join(' ')}`);
    } finally {
      await watch.close();
    }
  },
};

export const bootSequence: Scenario = {
  id: 'device/boot-sequence',
  title: 'the boot sequence: the Last Will of the connection a restart cut carries its bd, as did its HELLO and STATUS; the restarted device announces a greater bd in its HELLO and STATUS',
  covers: ['LM-STATE-3'],
  needs: 'restart',
  async run(ctx) {
    const t = ctx.tester;
    const restart = ctx.restart;
    if (!restart) throw new Error('no --restart-cmd');
    const hello = await t.waitHello();
    check(ctx, R.LM_STATE_3, hello.bd !== undefined, 'the device\'s HELLO carries no bd (boot sequence)');
    const bd = hello.bd;
    const watch = await StatusWatch.open(t);
    try {
      const status = await ctx.checks.expect(R.LM_STATE_3, () => watch.next(0, (x) => x.body.bd === bd, 5000, `a STATUS of bd ${bd}`), 'the STATUS of the device\'s current connection');
      check(ctx, R.LM_STATE_3, status.signed, 'the STATUS is not signed by the device');
      const seen = t.hellos;
      const restartedAt = Date.now();
      await restart();
      const next = await t.waitNextHello(seen, hello.boot);
      const will = t.inbound.find((x) => x.at >= restartedAt && x.f.type === FrameType.BYE && x.topic === topics.deviceState(t.o.fleet, t.o.deviceId));
      check(ctx, R.LM_STATE_3, will, 'no BYE (the Last Will) on the state topic after the device was restarted');
      const wbd = will.f.type === FrameType.BYE ? will.f.body.bd : undefined;
      check(ctx, R.LM_STATE_3, wbd === bd, `the Last Will of the connection the restart cut carries bd ${String(wbd)}; its HELLO carried ${bd}`);
      check(ctx, R.LM_STATE_3, next.bd !== undefined && next.bd > bd, `the restarted device announces bd ${String(next.bd)}, not greater than the ${bd} of the connection before`);
      const fresh = await watch.next(0, (x) => x.body.bd === next.bd, 5000, `a STATUS of bd ${String(next.bd)}`).catch(() => undefined);
      check(ctx, R.LM_STATE_3, fresh?.signed && fresh.body.seq === 0, fresh ? `the restarted device's first STATUS is seq ${fresh.body.seq}${fresh.signed ? '' : ', not signed'}; a connection's first is 0` : `no STATUS of the restarted device's bd ${String(next.bd)}`);
      ctx.log(`device/boot-sequence: bd ${bd} before the restart, ${String(next.bd)} after`);
    } finally {
      await watch.close();
    }
  },
};
