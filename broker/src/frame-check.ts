/**
 * @module frame-check
 * The broker's check of a payload on a protocol topic ([LM-MQTT-4]): size, CBOR profile,
 * version, schema, and a frame type allowed on that topic. Authentication is not checked here
 * (the broker holds no session keys).
 */
import { decodeFrame, LmError, parseTopic, Reason, TOPIC_FRAMES, type ReasonCode, FRAME_TYPE_NAMES } from '@livematrix/spec';

export type FrameCheck = { ok: true; type: number } | { ok: false; reason: ReasonCode; detail: string } | { ok: 'ignored' };

/** Checks one publish. Topics outside `lm/1/...` are `ignored`. Never throws. */
export function checkPublish(topic: string, payload: Uint8Array): FrameCheck {
  const t = parseTopic(topic);
  if (!t) return topic.startsWith('lm/') ? { ok: false, reason: Reason.schema, detail: `topic "${topic}" is not in the protocol tree` } : { ok: 'ignored' };
  try {
    const f = decodeFrame(payload);
    if (!TOPIC_FRAMES[t.kind].has(f.type)) {
      return { ok: false, reason: Reason.schema, detail: `${FRAME_TYPE_NAMES[f.type]} is not allowed on a ${t.kind} topic ([LM-MQTT-4])` };
    }
    return { ok: true, type: f.type };
  } catch (e) {
    if (e instanceof LmError) return { ok: false, reason: e.code, detail: e.message };
    return { ok: false, reason: Reason.internal, detail: String(e) };
  }
}
