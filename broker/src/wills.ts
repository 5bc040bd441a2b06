/**
 * @module wills
 * Last Will checks ([LM-BRK-7]). A Will is a publish the broker makes on a client's behalf, later
 * and possibly from another instance of a cluster, so it gets the checks of a publish twice: when
 * the CONNECT sets it (refused with return code 5 unless its topic is within the client's publish
 * ACL and its payload passes the frame check of that topic), and again whenever aedes is about to
 * publish one, against the identity its client id belongs to ([LM-BRK-8]) in the current registry.
 *
 * aedes hands `authorizePublish` a Will in three ways: with the closing client itself (the packet is
 * the Will of its CONNECT); from `_clearWills`, for the Wills another, silent instance left in the
 * shared persistence, with a null client; or with a live local client that has the same client id.
 * Both persistences (aedes-persistence, aedes-persistence-redis) stamp `brokerId` and `clientId`
 * on a Will when they store it, which a client's own PUBLISH never carries.
 *
 * A Will that passes may still be late ([LM-STATE-8]): the BYE of a connection older than the one
 * whose HELLO is retained on the device's state topic (the device reconnected before the broker,
 * or a cluster's sweep, noticed the old connection was gone). Its boot sequence `bd` is less than
 * the retained HELLO's; it is dropped before it replaces that HELLO.
 */
import { FrameType, decodeFrame, parseTopic, reasonName } from '@livematrix/spec';
import { checkPublish } from './frame-check.js';
import { topicMatches } from './registry.js';

/** The part of a Will (of a CONNECT, or stored by aedes) that is checked. */
export interface WillMessage {
  topic: string;
  /** a Buffer or string; anything else (a corrupt stored Will) fails the check */
  payload: unknown;
}

export type WillCheck = { ok: true } | { ok: false; reason: 'will-acl' | 'will-frame'; detail: string };

/** Checks a Will against the publish filters of the identity that set it ([LM-BRK-7]). Never throws. */
export function checkWill(id: string, publishFilters: readonly string[], will: WillMessage): WillCheck {
  if (typeof will.topic !== 'string') return { ok: false, reason: 'will-acl', detail: `Last Will of "${id}" has no topic` };
  if (!publishFilters.some((f) => topicMatches(f, will.topic))) return { ok: false, reason: 'will-acl', detail: `Last Will of "${id}" on ${will.topic}, a topic it may not publish to` };
  const p = typeof will.payload === 'string' ? new TextEncoder().encode(will.payload) : will.payload instanceof Uint8Array ? will.payload : undefined;
  if (!p) return { ok: false, reason: 'will-frame', detail: `Last Will of "${id}" on ${will.topic} has no binary payload` };
  const c = checkPublish(will.topic, new Uint8Array(p.buffer, p.byteOffset, p.byteLength));
  if (c.ok === true) return { ok: true };
  return { ok: false, reason: 'will-frame', detail: `Last Will of "${id}" on ${will.topic} is not a valid frame for that topic (${c.ok === false ? `${reasonName(c.reason)}: ${c.detail}` : 'not a protocol topic'})` };
}

/** The client id a stored Will carries (stamped by the persistence), or undefined for any other packet. */
export function storedWillClientId(packet: object): string | undefined {
  const p = packet as { brokerId?: unknown; clientId?: unknown };
  return typeof p.brokerId === 'string' && typeof p.clientId === 'string' ? p.clientId : undefined;
}

/** Reads the message retained on a topic (undefined: none), from the broker's persistence. */
export type RetainedReader = (topic: string) => Promise<Uint8Array | undefined>;

/** The part of an aedes persistence (memory or Redis) that holds retained messages. */
interface RetainedStore {
  createRetainedStream(pattern: string): AsyncIterable<{ topic: string; payload: Buffer | string }>;
}

/** A {@link RetainedReader} over an aedes instance's persistence. */
export function retainedReader(aedes: object): RetainedReader {
  const store = (aedes as { persistence?: RetainedStore }).persistence;
  return async (topic) => {
    if (!store) return undefined;
    for await (const p of store.createRetainedStream(topic)) {
      if (p.topic !== topic) continue;
      return typeof p.payload === 'string' ? new TextEncoder().encode(p.payload) : new Uint8Array(p.payload.buffer, p.payload.byteOffset, p.payload.byteLength);
    }
    return undefined;
  };
}

/** The `bd` a payload carries, when it is a HELLO or BYE frame with one; undefined otherwise. Never throws. */
function bootSequenceOf(payload: Uint8Array, type: typeof FrameType.HELLO | typeof FrameType.BYE): number | undefined {
  try {
    const f = decodeFrame(payload);
    return f.type === type ? f.body.bd : undefined;
  } catch {
    return undefined;
  }
}

/**
 * [LM-STATE-8] Why a Will about to be published is the late Will of an earlier connection (to be
 * dropped), or undefined: a BYE with a `bd` on a device's state topic whose retained message is a
 * HELLO with a greater `bd`. Anything else (no `bd`, no retained HELLO, a reader that fails) is
 * not judged late: the Will goes out, and receivers still compare ([LM-STATE-5]). Never throws.
 *
 * @example
 * const why = await lateWill(packet, retainedReader(aedes)); if (why) drop(packet);
 */
export async function lateWill(will: WillMessage, retained: RetainedReader): Promise<string | undefined> {
  if (typeof will.topic !== 'string' || parseTopic(will.topic)?.kind !== 'deviceState') return undefined;
  const p = typeof will.payload === 'string' ? new TextEncoder().encode(will.payload) : will.payload instanceof Uint8Array ? will.payload : undefined;
  const bd = p && bootSequenceOf(p, FrameType.BYE);
  if (bd === undefined) return undefined;
  let held: Uint8Array | undefined;
  try {
    held = await retained(will.topic);
  } catch {
    return undefined;
  }
  const current = held && bootSequenceOf(held, FrameType.HELLO);
  if (current === undefined || bd >= current) return undefined;
  return `Last Will on ${will.topic} with bd ${bd} is late: the HELLO retained there is of a newer connection (bd ${current}) ([LM-STATE-8])`;
}
