/**
 * Proof that the gateway profile can fail: the gateway library, run in-process by the suite's
 * launcher, with one deliberate fault put in from here (never in product code), fails the IDs
 * aimed at that fault while the other checks of the same test pass.
 *  - negotiation narrowed by the operator's policy to w ≤ 12, for a device that takes w = 16:
 *    [LM-CAP-2] fails;
 *  - HINTS published at QoS 1 instead of 0 (the gateway's link wrapped): [LM-MQTT-1] fails;
 *  - a ledger (the gateways' shared SQLite database) read back without its last record:
 *    [LM-LEDGER-4] fails while the chain's checks pass; read back empty: [LM-LEDGER-4] fails and
 *    no other ledger ID passes;
 *  - telemetry the gateway decodes kept out of the stream's output: [LM-TEL-2] fails while the
 *    advisory frames' checks ([LM-ROLE-2], [LM-FRAME-5], ...) pass;
 *  - a gateway that waits 60 s after a Last Will while declaring 1 s: its session ends by the
 *    silence timeout instead, with reason timeout, and [LM-DLV-13] fails;
 *  - a gateway that takes every BYE for the current connection's Will (each BYE handed to it
 *    without its boot sequence): the late Will of an earlier connection ends the session within
 *    the grace, and [LM-STATE-5] fails.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { MqttClient } from 'mqtt';
import { describe, expect, it } from 'vitest';
import { type IdentityKeyPair, type NegotiationPolicy, FrameType, type FrameTypeId, decodeFrame, encodeFrame, errorMessage, identityKeyPair } from '@livematrix/spec';
import type { GatewayTarget, LedgerReader, StreamExit, StreamLauncher, TestResult } from '../src/index.js';

/** A fault put into the in-process gateway. */
interface Fault {
  policy?: NegotiationPolicy;
  /** publishes HINTS at QoS 1 */
  hintsQos1?: boolean;
  /** the ledger read back without its last record */
  ledgerLoses?: boolean;
  /** the ledger read back empty */
  ledgerEmpty?: boolean;
  /** the telemetry the gateway decodes is not printed */
  telemetryHidden?: boolean;
  /** the gateway's liveness bounds ([LM-DLV-13]) */
  liveness?: { deviceTimeout: number; offlineGrace: number };
  /** every BYE taken as the Will of the device's current connection: its `bd` removed ([LM-STATE-5]) */
  byeBdIgnored?: boolean;
}

/**
 * Hands the gateway every BYE on a device's state topic without its `bd`, as a BYE of the current
 * connection (SPEC.md §10.2): the gateway then cannot tell a late Will.
 */
function ignoreByeBd(client: MqttClient): void {
  const theirs = client.listeners('message') as ((topic: string, payload: Buffer, packet: unknown) => void)[];
  client.removeAllListeners('message');
  client.on('message', (topic, payload, packet) => {
    let p = payload;
    try {
      const f = decodeFrame(new Uint8Array(payload));
      if (topic.endsWith('/state') && f.type === FrameType.BYE && f.body.bd !== undefined) {
        const { bd: _, ...rest } = f.body;
        p = Buffer.from(encodeFrame(FrameType.BYE, rest, { kind: 'none' }));
      }
    } catch {
      // not a frame: handed on as it came
    }
    for (const l of theirs) l.call(client, topic, p, packet);
  });
}

/** Streams with the gateway library in-process, one Gateway per stream, as `livematrix stream` does. */
async function inProcess(url: string, operator: IdentityKeyPair, fault: Fault): Promise<StreamLauncher> {
  const { Gateway } = await import('@livematrix/gateway');
  const identity = identityKeyPair();
  return (job) => {
    let exited: StreamExit | undefined;
    let out = '';
    let stopped: Promise<void> | undefined;
    let gw: Awaited<ReturnType<typeof Gateway.start>> | undefined;
    const stop = () => (stopped ??= (gw?.stop() ?? Promise.resolve()).catch(() => undefined));
    const exit = (async (): Promise<StreamExit> => {
      try {
        gw = await Gateway.start({ url, fleet: job.fleet, id: `gw-broken-${job.n}`, identity, trustedOperators: [operator.publicKey], workers: 1, db: join(job.state, 'gw.db') });
        if (fault.byeBdIgnored) ignoreByeBd(gw.link.client);
        if (fault.hintsQos1) {
          const link = gw.link;
          const send = link.send.bind(link);
          link.send = async (topic: string, frame: Uint8Array, type: FrameTypeId, o?: { retain?: boolean; expirySeconds?: number }) => {
            if (type !== FrameType.HINTS) return send(topic, frame, type, o);
            await link.client.publishAsync(topic, Buffer.from(frame), { qos: 1 });
          };
        }
        const s = await gw.stream(job.device, new Uint8Array(readFileSync(job.file)), job.tx.bytes, job.licence, { policy: fault.policy ?? {}, ...fault.liveness });
        // as `livematrix stream` prints it
        if (!fault.telemetryHidden) s.on('telemetry', (t: unknown) => (out += `telemetry ${job.device}: ${JSON.stringify(t)}\n`));
        await s.done;
        return { code: 0, signal: null };
      } catch (e) {
        out += errorMessage(e);
        return { code: 1, signal: null };
      } finally {
        await stop();
      }
    })().then((e) => (exited = e));
    return { exit, get exited() { return exited; }, output: () => out, transcript: () => out, stop: async () => (await stop(), exit) };
  };
}

/** Reads the ledger of the in-process gateways' database, as `livematrix ledger verify --json` would print it. */
const readLedger = (fault: Fault): LedgerReader => async (where) => {
  const { openLicenceDb } = await import('@livematrix/gateway');
  const db = await openLicenceDb(join(where.state, 'gw.db'));
  const records: Uint8Array[] = [];
  try {
    for await (const r of db.ledger()) records.push(r);
  } finally {
    await db.close();
  }
  return fault.ledgerEmpty ? [] : fault.ledgerLoses ? records.slice(0, -1) : records;
};

async function runWith(fault: Fault, test = 'gateway/deliver', target: Partial<GatewayTarget> = {}): Promise<TestResult> {
  const { startBroker } = await import('@livematrix/broker');
  const { GATEWAY_TESTS, runGatewayProfile } = await import('../src/index.js');
  const broker = await startBroker();
  const operator = identityKeyPair();
  try {
    const launch = await inProcess(broker.url, operator, fault);
    const [r] = await runGatewayProfile({ url: broker.url, fleet: 'conf-gw', operator, launch, readLedger: readLedger(fault), ...target }, { tests: GATEWAY_TESTS.filter((t) => t.id === test) });
    if (!r) throw new Error(`${test} did not run`);
    return r;
  } finally {
    await broker.close();
  }
}

const verdicts = (r: TestResult) => ({
  failed: [...new Set(r.checks.filter((c) => c.status === 'fail').map((c) => c.id))].sort(),
  passed: new Set(r.checks.filter((c) => c.status === 'pass').map((c) => c.id)),
});

describe('a broken gateway fails the IDs aimed at its fault, and passes the other checks', () => {
  it('a negotiation narrowed to w ≤ 12 fails [LM-CAP-2]', async () => {
    const r = await runWith({ policy: { wmax: 12 } });
    const v = verdicts(r);
    expect(v.failed, r.message).toEqual(['LM-CAP-2']);
    for (const id of ['LM-PARAM-7', 'LM-PARAM-3', 'LM-PARAM-4', 'LM-PARAM-5', 'LM-PARAM-6', 'LM-CAP-3']) expect(v.passed.has(id as never), id).toBe(true);
  }, 20_000);

  it('HINTS published at QoS 1 fail [LM-MQTT-1]; the delivery\'s other checks pass', async () => {
    const r = await runWith({ hintsQos1: true });
    const v = verdicts(r);
    expect(v.failed, r.message).toEqual(['LM-MQTT-1']);
    for (const id of ['LM-CAP-2', 'LM-REV-1', 'LM-HINT-1', 'LM-AEAD-1', 'LM-AEAD-3', 'LM-TIME-4', 'LM-DLV-6', 'LM-DLV-7']) expect(v.passed.has(id as never), id).toBe(true);
  }, 20_000);

  it('a ledger that lost its last record fails [LM-LEDGER-4]; the chain\'s checks pass', async () => {
    const r = await runWith({ ledgerLoses: true }, 'gateway/ledger');
    const v = verdicts(r);
    expect(v.failed, r.message).toEqual(['LM-LEDGER-4']);
    for (const id of ['LM-LEDGER-1', 'LM-LEDGER-2', 'LM-LEDGER-5', 'LM-DLV-7']) expect(v.passed.has(id as never), id).toBe(true);
    // one of the three racing RECEIPTs is missing: the race is not judged
    expect(v.passed.has('LM-LEDGER-3')).toBe(false);
  }, 20_000);

  it('an empty ledger fails [LM-LEDGER-4] and passes no other ledger ID', async () => {
    const r = await runWith({ ledgerEmpty: true }, 'gateway/ledger');
    const v = verdicts(r);
    expect(v.failed, r.message).toEqual(['LM-LEDGER-4']);
    expect(r.message).toMatch(/ledger holds 0 record/);
    for (const id of ['LM-LEDGER-1', 'LM-LEDGER-2', 'LM-LEDGER-3', 'LM-LEDGER-5', 'LM-TX-7']) expect(v.passed.has(id as never), id).toBe(false);
    expect(v.passed.has('LM-DLV-7')).toBe(true);
  }, 20_000);

  it('telemetry decoded but not shown fails [LM-TEL-2]; frames of version 2 and the other advisory frames pass', async () => {
    const r = await runWith({ telemetryHidden: true }, 'gateway/advisory', { telemetryInOutput: true });
    const v = verdicts(r);
    expect(v.failed, r.message).toEqual(['LM-TEL-2']);
    expect(r.message).toMatch(/does not show 2 of the 2 well-formed/);
    for (const id of ['LM-ROLE-2', 'LM-FRAME-5', 'LM-FRAME-8', 'LM-DLV-13', 'LM-DLV-7']) expect(v.passed.has(id as never), id).toBe(true);
  }, 20_000);

  it('a gateway that waits 60 s after a Last Will while declaring 1 s fails [LM-DLV-13]', async () => {
    const r = await runWith({ liveness: { deviceTimeout: 2000, offlineGrace: 60_000 } }, 'gateway/liveness', { liveness: { silence: 2000, grace: 1000 } });
    const v = verdicts(r);
    expect(v.failed, r.message).toEqual(['LM-DLV-13']);
    expect(r.message).toMatch(/fell silent after its Last Will with ERROR 68 .*the reason is 81/);
  }, 20_000);

  it('a gateway that takes the late Will of an earlier connection for the device\'s fails [LM-STATE-5]; the Will of the current connection still passes [LM-DLV-13]', async () => {
    const bounds = { liveness: { deviceTimeout: 8000, offlineGrace: 1000 } };
    const r = await runWith({ ...bounds, byeBdIgnored: true }, 'gateway/late-will', { liveness: { silence: 8000, grace: 1000 } });
    const v = verdicts(r);
    expect(v.failed, r.message).toEqual(['LM-STATE-5']);
    expect(v.passed.has('LM-DLV-13')).toBe(true);
    expect(r.message).toMatch(/late Will \(bd 1; its HELLO bd 2\) came ended within .*took the late Will for the device's/);
    const good = await runWith(bounds, 'gateway/late-will', { liveness: { silence: 8000, grace: 1000 } });
    expect(verdicts(good).failed, good.message).toEqual([]);
    expect(verdicts(good).passed.has('LM-STATE-5')).toBe(true);
  }, 60_000);
});
