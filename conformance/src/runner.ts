/**
 * @module runner
 * Runs device scenarios against a device under test through a broker.
 */
import type { BrokerAuth } from '@livematrix/spec/transport';
import { type IdentityKeyPair, errorMessage } from '@livematrix/spec';
import type { TestResult } from './report.js';
import { type Scenario, DEVICE_SCENARIOS } from './scenarios/index.js';
import { Tester } from './tester.js';

export interface DeviceTarget {
  url: string;
  fleet: string;
  deviceId: string;
  devicePublic: Uint8Array;
  operator: IdentityKeyPair;
  /** most bytes per second the device's consumer takes */
  consumeRate: number;
  protocolVersion?: 4 | 5;
  brokerAuth?: BrokerAuth;
  gateway?: { id: string; identity: IdentityKeyPair };
}

/** A sample of machine code: deterministic G-code, about 40 KB (ten chunks). */
export function sampleGcode(bytes = 40_000): Uint8Array {
  const lines = ['; livematrix conformance sample', 'G28', 'M104 S215', 'M140 S60', 'G90', 'G1 Z0.3 F3000'];
  let i = 0;
  let size = lines.join('\n').length;
  while (size < bytes) {
    const a = i * 0.05;
    const l = `G1 X${(100 + 30 * Math.cos(a)).toFixed(3)} Y${(100 + 30 * Math.sin(a)).toFixed(3)} E${(i * 0.0123).toFixed(5)} F1800`;
    lines.push(l);
    size += l.length + 1;
    i++;
  }
  return new TextEncoder().encode(lines.join('\n') + '\n');
}

export async function runDeviceProfile(target: DeviceTarget, o: { only?: (s: Scenario) => boolean; log?: (l: string) => void; scenarios?: readonly Scenario[] } = {}): Promise<TestResult[]> {
  const log = o.log ?? (() => undefined);
  const data = sampleGcode();
  const results: TestResult[] = [];
  for (const s of (o.scenarios ?? DEVICE_SCENARIOS).filter(o.only ?? (() => true))) {
    const tester = await Tester.connect({
      url: target.url, fleet: target.fleet, deviceId: target.deviceId, devicePublic: target.devicePublic, operator: target.operator,
      ...(target.protocolVersion ? { protocolVersion: target.protocolVersion } : {}), ...(target.brokerAuth ? { brokerAuth: target.brokerAuth } : {}),
      ...(target.gateway ? { gateway: target.gateway } : {}),
    });
    const t0 = Date.now();
    let message: string | undefined;
    try {
      await tester.waitHello();
      await s.run({ tester, data, consumeRate: target.consumeRate, log });
    } catch (e) {
      message = errorMessage(e);
    } finally {
      await tester.close();
    }
    const r: TestResult = { id: s.id, title: s.title, covers: s.covers, status: message ? 'fail' : 'pass', ...(message ? { message } : {}), ms: Date.now() - t0 };
    log(`${r.status === 'pass' ? 'PASS' : 'FAIL'} ${s.id}${message ? `: ${message}` : ''}`);
    results.push(r);
  }
  return results;
}
