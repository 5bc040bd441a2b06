/**
 * @module topics
 * The MQTT topic tree of SPEC.md §10 and the frame types allowed on each topic.
 */
import { LmError, Reason } from './errors.js';
import { ID_RE } from './frame-schemas.js';
import { FrameType, type FrameTypeId } from './frames.js';

export const TOPIC_ROOT = 'lm/1';

function checkId(kind: string, v: string): string {
  if (!ID_RE.test(v)) throw new LmError(Reason.schema, `${kind} id "${v}" must be 1-64 of [A-Za-z0-9._-] (SPEC.md §10)`);
  return v;
}

export const topics = {
  deviceState: (fleet: string, device: string) => `${TOPIC_ROOT}/${checkId('fleet', fleet)}/d/${checkId('device', device)}/state`,
  deviceIn: (fleet: string, device: string) => `${TOPIC_ROOT}/${checkId('fleet', fleet)}/d/${checkId('device', device)}/in`,
  deviceOut: (fleet: string, device: string) => `${TOPIC_ROOT}/${checkId('fleet', fleet)}/d/${checkId('device', device)}/out`,
  /** the device's signed status, retained ([LM-STATE-1]) */
  deviceStatus: (fleet: string, device: string) => `${TOPIC_ROOT}/${checkId('fleet', fleet)}/d/${checkId('device', device)}/status`,
  gatewayState: (fleet: string, gateway: string) => `${TOPIC_ROOT}/${checkId('fleet', fleet)}/g/${checkId('gateway', gateway)}/state`,
  alarm: (fleet: string) => `${TOPIC_ROOT}/${checkId('fleet', fleet)}/alarm`,
  /** the fleet's operator-signed revocation list, retained ([LM-REVOKE-2]) */
  revocation: (fleet: string) => `${TOPIC_ROOT}/${checkId('fleet', fleet)}/revocation`,
  /** a party's service inbox: requests to it and responses for it ([LM-SVC-7]) */
  serviceIn: (fleet: string, id: string) => `${TOPIC_ROOT}/${checkId('fleet', fleet)}/s/${checkId('service', id)}/in`,
};

export type TopicKind = 'deviceState' | 'deviceIn' | 'deviceOut' | 'deviceStatus' | 'gatewayState' | 'alarm' | 'revocation' | 'serviceIn';

export interface ParsedTopic {
  kind: TopicKind;
  fleet: string;
  device?: string;
  gateway?: string;
  /** the inbox owner of a `serviceIn` topic */
  service?: string;
}

/** Parses a protocol topic; returns null for a topic outside the tree. */
export function parseTopic(topic: string): ParsedTopic | null {
  const p = topic.split('/');
  if (p[0] !== 'lm' || p[1] !== '1' || p.length < 4) return null;
  const fleet = p[2] as string;
  if (!ID_RE.test(fleet)) return null;
  if (p.length === 4 && p[3] === 'alarm') return { kind: 'alarm', fleet };
  if (p.length === 4 && p[3] === 'revocation') return { kind: 'revocation', fleet };
  if (p.length !== 6) return null;
  const who = p[4] as string;
  if (!ID_RE.test(who)) return null;
  if (p[3] === 'd') {
    if (p[5] === 'state') return { kind: 'deviceState', fleet, device: who };
    if (p[5] === 'in') return { kind: 'deviceIn', fleet, device: who };
    if (p[5] === 'out') return { kind: 'deviceOut', fleet, device: who };
    if (p[5] === 'status') return { kind: 'deviceStatus', fleet, device: who };
  } else if (p[3] === 'g' && p[5] === 'state') return { kind: 'gatewayState', fleet, gateway: who };
  else if (p[3] === 's' && p[5] === 'in') return { kind: 'serviceIn', fleet, service: who };
  return null;
}

const F = FrameType;
/** Frame types allowed per topic ([LM-MQTT-1], [LM-MQTT-4]). */
export const TOPIC_FRAMES: Readonly<Record<TopicKind, ReadonlySet<FrameTypeId>>> = {
  deviceState: new Set([F.HELLO, F.BYE]),
  deviceIn: new Set([F.OFFER, F.TIME_RESP, F.HINTS, F.KEY, F.CONTROL, F.END, F.ALARM, F.ERROR, F.BYE]),
  deviceOut: new Set([F.ACCEPT, F.TIME_REQ, F.ACK, F.CONTROL, F.TELEMETRY, F.RECEIPT, F.ALARM, F.ERROR, F.BYE]),
  deviceStatus: new Set([F.STATUS]), // [LM-STATE-7]
  gatewayState: new Set([F.BYE]),
  alarm: new Set([F.ALARM]),
  revocation: new Set([F.REVOKE]),
  serviceIn: new Set([F.SVC_REQ, F.SVC_RESP]), // [LM-SVC-7]
};

/** MQTT QoS per frame type (SPEC.md §7.2). */
export const FRAME_QOS: Readonly<Record<FrameTypeId, 0 | 1>> = {
  1: 1, 2: 1, 3: 1, 4: 0, 5: 0, 6: 0, 7: 1, 8: 0, 9: 1, 10: 0, 11: 1, 12: 1, 13: 1, 14: 1, 15: 1, 16: 1, 17: 1, 18: 1, 19: 1,
};
