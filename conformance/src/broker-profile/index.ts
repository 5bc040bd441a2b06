/**
 * @module broker-profile
 * `livematrix-conformance broker`: the suite plays two devices and a gateway against a broker
 * under test and checks the broker profile (SPEC.md §10.1, profile B): connect tokens, client ids
 * bound to identities, one connection per device, topic isolation and gateway assignment, the
 * frame check and its drop counts, Last Wills, the maximum packet size, rate alarms and the
 * fleet's revocation topic.
 */
import { identityKeyPair } from '@livematrix/spec';
import { type TestResult, runTest } from '../checks.js';
import { type ProfileCommand, UsageError, type Values, need } from '../command-kit.js';
import { buildReport } from '../report.js';
import { clientIds, connectToken } from './auth.js';
import type { BrokerTest } from './common.js';
import { frameCheck, wills } from './frame-check.js';
import { deviceIsolation, gatewayIsolation, revocationTopic } from './isolation.js';
import { packetSize, rateAlarm } from './limits.js';
import { dropCounts, metrics } from './metrics.js';
import { Connections } from './net.js';
import { oneConnection } from './takeover.js';
import { lateWill, statusTopic } from './status.js';
import { type BrokerTarget, readBrokerIdentity } from './target.js';

export type { BrokerTarget, BrokerIdentity, Credentials } from './target.js';
export type { BrokerTest } from './common.js';

/**
 * The tests, in the order they run (one connection per device early, before the other tests'
 * reconnects; the drop counts right after the frame check; the rate alarm near the end, as it
 * floods; the metrics after it, to see its alarm counted).
 */
export const BROKER_TESTS: readonly BrokerTest[] = [connectToken, clientIds, oneConnection, deviceIsolation, gatewayIsolation, revocationTopic, statusTopic, frameCheck, dropCounts, wills, lateWill, packetSize, rateAlarm, metrics];

/** Runs the broker profile against `target`; `only` picks tests by id. */
export async function runBrokerProfile(target: BrokerTarget, o: { log?: (line: string) => void; only?: (t: BrokerTest) => boolean } = {}): Promise<TestResult[]> {
  const log = o.log ?? (() => undefined);
  const operator = identityKeyPair();
  const results: TestResult[] = [];
  for (const t of BROKER_TESTS) {
    if (o.only && !o.only(t)) continue;
    if (t.runs && !t.runs(target)) {
      log(`skip  ${t.id}: an input it needs is not given`);
      continue;
    }
    const conns = new Connections(target);
    const r = await runTest(t, async (checks) => {
      try {
        await t.run({ target, conns, checks, log, operator });
      } finally {
        await conns.closeAll();
      }
    });
    log(`${r.status === 'pass' ? 'PASS' : 'FAIL'}  ${t.id} (${r.ms} ms)${r.message ? `: ${r.message}` : ''}`);
    results.push(r);
  }
  return results;
}

function positive(values: Values, k: string, d: number): number {
  const v = values[k];
  if (v === undefined) return d;
  const n = Number(v);
  if (typeof v !== 'string' || !Number.isInteger(n) || n <= 0) throw new UsageError(`--${k} must be a positive integer, got ${String(v)}`);
  return n;
}

const str = (values: Values, k: string): string | undefined => (typeof values[k] === 'string' ? values[k] : undefined);

/** The target from the command line. */
export function brokerTarget(values: Values): BrokerTarget {
  const url = need(values, 'url');
  if (!/^(mqtt|tcp):\/\//.test(url)) throw new UsageError(`--url must be mqtt://HOST:PORT (plain MQTT over TCP), got ${url}`);
  const metricsUrl = str(values, 'metrics-url');
  return {
    url, fleet: str(values, 'fleet') ?? 'default',
    device1: readBrokerIdentity(need(values, 'device1'), 'device', str(values, 'device1-credentials')),
    device2: readBrokerIdentity(need(values, 'device2'), 'device', str(values, 'device2-credentials')),
    gateway: readBrokerIdentity(need(values, 'gateway'), 'gateway', str(values, 'gateway-credentials')),
    rateLimit: positive(values, 'rate-limit', 5000),
    maxPacketSize: positive(values, 'max-packet-size', 262_144),
    waitMs: positive(values, 'wait-ms', 5000),
    ...(metricsUrl ? { metricsUrl } : {}),
  };
}

export const brokerCommand: ProfileCommand = {
  name: 'broker',
  usage: `  livematrix-conformance broker --url mqtt://HOST:PORT --fleet FLEET
                                --device1 FILE --device2 FILE --gateway FILE
                                [--device1-credentials FILE] [--device2-credentials FILE]
                                [--gateway-credentials FILE] [--rate-limit FRAMES_PER_S]
                                [--max-packet-size BYTES] [--metrics-url URL] [--wait-ms MS]
                                [--only REGEX] [--report DIR]
      Plays two devices and a gateway against the broker under test (MQTT 3.1.1) and checks the
      broker profile (SPEC.md §10.1): connect tokens, client ids, one connection per device (the
      older closed, its Will dropped, ALARM tamper on repeated takeovers), topic isolation
      (publishes outside a client's topics not forwarded), gateway assignment, frame checks and
      their drop counts, Last Wills, packet size, rate alarms, the revocation topic.
      FILEs are identity files ("livematrix keygen"); the broker's registry must list, in fleet
      FLEET, --device1 and --device2 as devices and --gateway as a gateway serving device 1 and
      not device 2 (registry "devices": [device1's id]). The suite signs connect tokens with the
      identity keys; for a broker with passwords (Mosquitto) --*-credentials give JSON
      { "username": "...", "password": "..." } that the suite connects with instead (the token
      tests still send tokens). --rate-limit is device 1's frames/s limit in the registry
      (default 5000): the suite floods over it, last. --max-packet-size is the broker's maximum
      (default 262144). --metrics-url (Prometheus text) adds the tests of metrics and of
      drops counted by reason (a metric named *drop* with a label per reason). --wait-ms (default
      5000) is how long something that must happen (a frame, a close, a Will) is waited for.
      Use a test fleet: the suite leaves a REVOKE of a throw-away operator retained on its
      revocation topic and a BYE retained on device 1's state topic, and raises an ALARM tamper
      about device 2 (which quarantines it in a fleet service); a broker raises that alarm at most
      once a minute per device, so run the suite again against one broker a minute later. This
      host's clock must be within a few seconds of the broker's.`,
  options: {
    url: { type: 'string' }, fleet: { type: 'string' }, device1: { type: 'string' }, device2: { type: 'string' }, gateway: { type: 'string' },
    'device1-credentials': { type: 'string' }, 'device2-credentials': { type: 'string' }, 'gateway-credentials': { type: 'string' },
    'rate-limit': { type: 'string' }, 'max-packet-size': { type: 'string' }, 'metrics-url': { type: 'string' }, 'wait-ms': { type: 'string' },
  },
  tests: () => BROKER_TESTS.map((t) => ({ id: t.id, title: t.title, covers: t.covers })),
  async run(values, log) {
    const target = brokerTarget(values);
    const only = typeof values['only'] === 'string' ? new RegExp(values['only']) : undefined;
    const tests = await runBrokerProfile(target, { log, ...(only ? { only: (t) => only.test(t.id) } : {}) });
    const auth = [target.device1, target.device2, target.gateway].some((i) => i.credentials) ? 'passwords' : 'connect tokens';
    return buildReport('broker', `${target.url} fleet ${target.fleet} (${auth})`, tests);
  },
};
