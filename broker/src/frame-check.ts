/**
 * @module frame-check
 * The broker's check of a payload on a protocol topic ([LM-MQTT-4]): size, CBOR profile,
 * version, schema, and a frame type allowed on that topic. Authentication is not checked here
 * (the broker holds no session keys).
 *
 * Every payload is scanned in place (`scanFrame`, spec's cbor-scan: no value built, no byte
 * copied); only one the scan refuses is decoded, to name the reason the decoder gives, so the
 * verdicts are the decoder's ([LM-BRK-3], [LM-BRK-11]) at a fraction of its cost.
 */
import { FRAME_TYPE_NAMES, type FrameTypeId, LmError, Reason, type ReasonCode, TOPIC_FRAMES, type TopicKind, decodeFrame, parseTopic } from '@livematrix/spec';
import { scanFrame } from '@livematrix/spec/cbor-scan';

export type FrameCheck = { ok: true; type: number } | { ok: false; reason: ReasonCode; detail: string } | { ok: 'ignored' };

/** One frozen verdict per type: a passing frame allocates nothing. */
const PASS: readonly FrameCheck[] = Array.from({ length: 64 }, (_, type) => Object.freeze({ ok: true as const, type }));
const IGNORED: FrameCheck = Object.freeze({ ok: 'ignored' as const });

/**
 * Where a publish goes: a protocol topic of `kind`, a topic under `lm/` outside the tree
 * (refused), or any other topic (not checked).
 */
export type TopicClass = { kind: TopicKind } | { kind: 'outside' } | { kind: 'other' };

/** Classifies a topic for {@link checkFrame}. */
export function topicClass(topic: string): TopicClass {
  const t = parseTopic(topic);
  if (t) return { kind: t.kind };
  return topic.startsWith('lm/') ? { kind: 'outside' } : { kind: 'other' };
}

/** Checks one payload for a topic already classified (see {@link topicClass}). Never throws. */
export function checkFrame(topic: string, where: TopicClass, payload: Uint8Array): FrameCheck {
  if (where.kind === 'other') return IGNORED;
  if (where.kind === 'outside') return { ok: false, reason: Reason.schema, detail: `topic "${topic}" is not in the protocol tree` };
  const type = scanFrame(payload);
  if (type !== 0) return allowedOn(where.kind, type);
  // refused by the scan: the decoder names the reason (and, were the scan ever stricter than the
  // decoder, its acceptance stands)
  try {
    return allowedOn(where.kind, decodeFrame(payload).type);
  } catch (e) {
    if (e instanceof LmError) return { ok: false, reason: e.code, detail: e.message };
    return { ok: false, reason: Reason.internal, detail: String(e) };
  }
}

function allowedOn(kind: TopicKind, type: FrameTypeId): FrameCheck {
  if (TOPIC_FRAMES[kind].has(type)) return PASS[type] ?? { ok: true, type };
  return { ok: false, reason: Reason.schema, detail: `${FRAME_TYPE_NAMES[type]} is not allowed on a ${kind} topic ([LM-MQTT-4])` };
}

/** Checks one publish. Topics outside `lm/1/...` are `ignored`. Never throws. */
export function checkPublish(topic: string, payload: Uint8Array): FrameCheck {
  return checkFrame(topic, topicClass(topic), payload);
}
