/**
 * @module gateway-profile/audit
 * Checks every frame the gateway under test sends to one of the suite's devices, whatever the
 * test: it arrives on the device's inbound topic at its type's QoS ([LM-MQTT-1]), decodes under
 * the frame rules, version 1 included ([LM-FRAME-1]), is deterministic CBOR ([LM-CBOR-1]), carries the
 * authentication kind of its type ([LM-FRAME-21]) and that authentication verifies ([LM-FRAME-2]).
 */
import { type AnyFrame, FRAME_QOS, FRAME_TYPE_NAMES, type FrameTypeId, TOPIC_FRAMES, decodeCbor, decodeFrame, encodeCbor, equalBytes, toHex, toLmError, verifyFrame } from '@livematrix/spec';
import type { Findings } from './findings.js';

/** A payload as it arrived at a suite device. */
export interface Inbound {
  /** arrival time on the suite's clock (ms) */
  at: number;
  topic: string;
  qos: number;
  raw: Uint8Array;
  /** the decoded frame, unless it did not decode */
  frame?: AnyFrame;
}

/** What the audit needs to know of the device's sessions. */
export interface AuditKeys {
  /** FK_g2d of the session with this sid (hex), once the device accepted it */
  frameKey(sidHex: string): Uint8Array | undefined;
  /** the sids (hex) of OFFERs the gateway sent this device */
  offered(sidHex: string): boolean;
  /** the gateway key the transactions name, when the suite was told it */
  gatewayKey?: Uint8Array | undefined;
}

/**
 * Audits one payload from the device's inbound topic and returns its frame, or undefined when
 * it is no valid frame (a finding of [LM-FRAME-1]).
 */
export function auditInbound(inb: Omit<Inbound, 'frame'>, k: AuditKeys, f: Findings): AnyFrame | undefined {
  let frame: AnyFrame;
  try {
    // [LM-FRAME-1], [LM-FRAME-3]: a frame of another version is no frame of v1 either; what the
    // gateway does with such frames it receives ([LM-ROLE-2]) is checked in gateway/advisory
    frame = decodeFrame(inb.raw);
  } catch (e) {
    f.fail('LM-FRAME-1', `the gateway sent ${inb.raw.length} bytes on ${inb.topic} that are no valid frame: ${toLmError(e).message}`);
    return undefined;
  }
  f.pass('LM-FRAME-1');
  const name = FRAME_TYPE_NAMES[frame.type];
  // [LM-CBOR-1]: decoding and encoding again gives the same bytes only for the deterministic encoding
  let canonical = false;
  try {
    canonical = equalBytes(encodeCbor(decodeCbor(inb.raw)), inb.raw);
  } catch {
    canonical = false;
  }
  f.ok('LM-CBOR-1', canonical, `${name} is not deterministically encoded: ${toHex(inb.raw.subarray(0, 48))}...`);
  // [LM-MQTT-1]: the inbound topic carries these types, each at the QoS of SPEC.md §7.2
  f.ok('LM-MQTT-1', TOPIC_FRAMES.deviceIn.has(frame.type), `${name} sent on the device's inbound topic, which does not carry it`);
  f.ok('LM-MQTT-1', inb.qos === FRAME_QOS[frame.type as FrameTypeId], `${name} published at QoS ${inb.qos}; SPEC.md §7.2 says QoS ${FRAME_QOS[frame.type as FrameTypeId]}`);
  // [LM-FRAME-21]: a gateway sends OFFER signed, session frames with the MAC; NONE only for ALARM, ERROR and BYE
  const kindOk = frame.type === 2 ? frame.authKind === 'sig' : frame.authKind === 'mac' || (frame.authKind === 'none' && (frame.type === 13 || frame.type === 14 || frame.type === 15));
  f.ok('LM-FRAME-21', kindOk, `${name} sent with authentication ${frame.authKind}`);
  // [LM-FRAME-2]: the authentication verifies
  if (frame.type === 2) {
    try {
      verifyFrame(frame, { signer: frame.body.gwpk });
      f.pass('LM-FRAME-2');
    } catch (e) {
      f.fail('LM-FRAME-2', `OFFER signature does not verify under its gwpk: ${toLmError(e).message}`);
    }
    if (k.gatewayKey) f.ok('LM-FRAME-2', equalBytes(frame.body.gwpk, k.gatewayKey), 'OFFER names a gateway key (gwpk) other than the gateway under test\'s (--gateway-key)');
    return frame;
  }
  if (frame.authKind === 'mac') {
    const sid = (frame.body as { sid?: Uint8Array }).sid;
    const hex = sid ? toHex(sid) : '';
    const key = k.frameKey(hex);
    if (key) {
      try {
        verifyFrame(frame, { mac: key });
        f.pass('LM-FRAME-2');
      } catch {
        f.fail('LM-FRAME-2', `${name} of session ${hex.slice(0, 8)} does not verify under FK_g2d`);
      }
    } else if (!k.offered(hex)) {
      f.fail('LM-FRAME-2', `${name} with the MAC of a session id ${hex.slice(0, 8) || '(none)'} the gateway never offered`);
    }
  }
  return frame;
}
