/**
 * The device's status sub-machine ([LM-STATE-1], [LM-STATE-2], [LM-STATE-4]) and its boot
 * sequence ([LM-STATE-3]) on a manual clock, without a broker: what is published when, in which
 * order, under which connection, and what survives a restart through the licence store.
 */
import { describe, expect, it } from 'vitest';
import { DeviceState, FrameType, type StatusBody, decodeFrame, encodeFrame, identityKeyPair, verifyFrame } from '@livematrix/spec';
import { ManualClock } from '@livematrix/testkit';
import { BOOT_BLOCK, BootSequence } from '../src/boot-sequence.js';
import { StatusReportError } from '../src/errors.js';
import { Licences, memoryLicenceStore, type LicenceStore } from '../src/licences.js';
import { DeviceStatus } from '../src/status.js';

const keys = identityKeyPair();

/** A status on a manual clock; `out` records what it published, HELLO as 'hello'. */
function rig(o: { interval?: number; streaming?: () => boolean } = {}) {
  const clock = new ManualClock();
  const out: (StatusBody | 'hello')[] = [];
  const frames: Uint8Array[] = [];
  let streaming = false;
  const st = new DeviceStatus({
    clock: clock.clock, timers: clock, interval: o.interval ?? 30_000, device: 'p1', streaming: o.streaming ?? (() => streaming),
    sign: (body) => encodeFrame(FrameType.STATUS, body, { kind: 'sig', secretKey: keys.secretKey }),
    publish: async (frame) => {
      frames.push(frame);
      const f = decodeFrame(frame);
      if (f.type === FrameType.STATUS) out.push(f.body);
    },
    announce: async () => void out.push('hello'),
    failed: (e) => {
      throw e;
    },
  });
  return { clock, out, frames, st, stream: (v: boolean) => (streaming = v) };
}

const states = (out: (StatusBody | 'hello')[]) => out.map((x) => (x === 'hello' ? 'hello' : `${x.state}/${x.seq}`));
/** lets the microtasks the timer callbacks started finish */
const settle = () => new Promise((r) => setImmediate(r));

describe('device status [LM-STATE-1] [LM-STATE-2]', () => {
  it('[LM-STATE-1] a signed STATUS numbered 0 after the HELLO of a connection, one per interval after the HELLO again [LM-STATE-4], seq from 0 on the next connection', async () => {
    const { clock, out, frames, st } = rig({ interval: 1000 });
    await st.connected(7);
    expect(states(out)).toEqual(['1/0']);
    const f = decodeFrame(frames[0]!);
    expect(verifyFrame(f, { signer: keys.publicKey })).toBe(true);
    expect(f.body).toMatchObject({ device: 'p1', state: DeviceState.idle, seq: 0, bd: 7, time: clock.t });
    for (let i = 0; i < 2; i++) {
      clock.advance(1000);
      await settle();
    }
    clock.advance(999);
    expect(states(out)).toEqual(['1/0', 'hello', '1/1', 'hello', '1/2']);
    // a new connection: numbering starts over under its boot sequence
    st.disconnected();
    clock.advance(5000);
    await settle();
    expect(out).toHaveLength(5); // nothing while disconnected
    await st.connected(8);
    expect(out.at(-1)).toMatchObject({ seq: 0, bd: 8 });
    st.stop();
    clock.advance(5000);
    expect(out).toHaveLength(6);
  });

  it('[LM-STATE-2] idle -> streaming -> idle as a session starts and ends, published at once; nothing when the state stays', async () => {
    const { out, st, stream } = rig();
    await st.connected(1);
    await st.changed();
    expect(states(out)).toEqual(['1/0']); // no change, no STATUS
    stream(true);
    await st.changed();
    stream(false);
    await st.changed();
    expect(states(out)).toEqual(['1/0', '2/1', '1/2']);
    expect(st.state).toBe('idle');
  });

  it('[LM-STATE-2] the host\'s error and pause win over the session, error first; ok clears them and their detail; offline when leaving', async () => {
    const { out, st, stream } = rig();
    stream(true);
    await st.connected(1);
    await st.report({ machine: 'paused', detail: 'filament runout' });
    await st.report({ machine: 'error', detail: 'thermal runaway' });
    expect(out.at(-1)).toMatchObject({ state: DeviceState.error, detail: 'thermal runaway' });
    await st.report({ machine: 'ok' });
    expect(out.at(-1)).toMatchObject({ state: DeviceState.streaming });
    expect((out.at(-1) as StatusBody).detail).toBeUndefined();
    await st.leaving();
    expect(states(out)).toEqual(['2/0', '3/1', '4/2', '2/3', '5/4']);
    await st.changed();
    expect(out).toHaveLength(5); // nothing after offline
  });

  it('[LM-STATE-1] readings ride the next STATUS, merge, and are removed by undefined; floats and oversize readings are refused whole', async () => {
    const { clock, out, st } = rig({ interval: 1000 });
    await st.connected(1);
    await st.report({ readings: { nozzle_mC: 214_870, bed_mC: 60_125 } });
    expect(out).toHaveLength(1); // the state did not change: nothing at once
    clock.advance(1000);
    await settle();
    expect([...((out.at(-1) as StatusBody).tel ?? new Map())]).toEqual([['bed_mC', 60_125], ['nozzle_mC', 214_870]]);
    await expect(st.report({ readings: { nozzle_mC: 214.87 } })).rejects.toThrow(StatusReportError);
    await expect(st.report({ readings: { log: 'x'.repeat(5000) } })).rejects.toThrow(/at most 4096/);
    await expect(st.report({ machine: 'error', detail: 'é'.repeat(129) })).rejects.toThrow(/at most 256/);
    expect(st.state).toBe('idle'); // the refused reports changed nothing
    await st.report({ readings: { bed_mC: undefined, door: 'open' } });
    clock.advance(1000);
    await settle();
    expect([...((out.at(-1) as StatusBody).tel ?? new Map())]).toEqual([['door', 'open'], ['nozzle_mC', 214_870]]); // canonical order: shorter keys first
  });

  it('refuses an interval that is not a positive number', () => {
    expect(() => rig({ interval: 0 })).toThrow(StatusReportError);
    expect(() => rig({ interval: Number.NaN })).toThrow(StatusReportError);
    expect(() => rig({ interval: 1 })).not.toThrow();
  });
});

describe('boot sequence [LM-STATE-3]', () => {
  const licences = (store: LicenceStore, clock: () => number) => new Licences(store, keys, 'p1', clock);

  it('[LM-STATE-3] grows by one per CONNECT, reserved in blocks before use, and a restart on the same store starts above every number reserved', () => {
    const clock = new ManualClock();
    const store = memoryLicenceStore();
    const l1 = licences(store, clock.clock);
    const s1 = new BootSequence(l1, clock.clock);
    const first = s1.next();
    expect(first).toBe(clock.t); // a fresh store starts at the clock
    expect(l1.bootCeiling).toBe(first + BOOT_BLOCK - 1); // reserved before the number was handed out
    const used = Array.from({ length: BOOT_BLOCK + 2 }, () => s1.next());
    expect(used.every((x, i) => x === first + 1 + i)).toBe(true);
    expect(l1.bootCeiling).toBe(first + 2 * BOOT_BLOCK - 1); // a second block, one write
    // restart: the clock went back an hour, the store's reservation wins
    clock.t -= 3_600_000;
    const s2 = new BootSequence(licences(store, clock.clock), clock.clock);
    expect(s2.current).toBeUndefined();
    expect(s2.next()).toBe(first + 2 * BOOT_BLOCK);
  });

  it('[LM-STATE-3] a wiped store starts at the clock, above numbers of an earlier run on a sane clock; a store that cannot write is reported and numbers still grow', () => {
    const clock = new ManualClock();
    const before = new BootSequence(licences(memoryLicenceStore(), clock.clock), clock.clock).next();
    clock.advance(5000);
    const wiped = new BootSequence(licences(memoryLicenceStore(), clock.clock), clock.clock);
    expect(wiped.next()).toBeGreaterThan(before);
    const failures: unknown[] = [];
    const broken: LicenceStore = {
      load: () => undefined,
      save: () => {
        throw new Error('disk full');
      },
    };
    const s = new BootSequence({ bootCeiling: undefined, reserveBoot: (c) => licences(broken, clock.clock).reserveBoot(c) }, clock.clock, (e) => failures.push(e));
    const a = s.next();
    expect(s.next()).toBe(a + 1);
    expect(failures).toHaveLength(1);
    expect(String(failures[0])).toMatch(/disk full/);
  });
});
