/**
 * @module status
 * Machine state outside sessions (SPEC.md §10.2): the states a STATUS frame carries
 * ([LM-STATE-2]), the boot sequence `bd` that ties a connection's HELLO, STATUS frames and Last
 * Will together ([LM-STATE-3]), and the rules by which a receiver ignores the late Will of an
 * earlier connection ([LM-STATE-5]) and takes a STATUS ([LM-STATE-6]). Both roles and the broker
 * use them; nothing here throws.
 */
import type { ByeBody, HelloBody, StatusBody } from './frame-schemas.js';
import { type Frame, type FrameType, verifyFrame } from './frames.js';
import { toLmError } from './errors.js';

/** The states of a STATUS frame and their wire values ([LM-STATE-2]). */
export const DeviceState = { idle: 1, streaming: 2, paused: 3, error: 4, offline: 5 } as const;
export type DeviceStateName = keyof typeof DeviceState;
export type DeviceStateId = (typeof DeviceState)[DeviceStateName];
export const DEVICE_STATE_NAMES = Object.fromEntries(Object.entries(DeviceState).map(([k, v]) => [v, k])) as Record<DeviceStateId, DeviceStateName>;

/** The status interval a device uses unless configured otherwise ([LM-STATE-1]): 30 s. */
export const DEFAULT_STATUS_INTERVAL_MS = 30_000;

export type StatusFrame = Frame<typeof FrameType.STATUS>;

/**
 * [LM-STATE-5]: whether a BYE on a device's state topic is the late Last Will of an earlier
 * connection, to be ignored: it carries a `bd` and the latest HELLO the receiver accepted of the
 * device carries another. A BYE without `bd`, or with no HELLO with `bd` to compare it with,
 * is not stale: it says the device left, as before ([LM-DLV-13]).
 *
 * @example
 * if (isStaleBye(bye.body, hellos.latest(device))) return; // the device is still online
 */
export function isStaleBye(bye: Pick<ByeBody, 'bd'>, current: Pick<HelloBody, 'bd'> | undefined): boolean {
  // less than, not other than: a greater bd is the Will of a connection whose HELLO this receiver
  // did not take (it was away, or refused it), and that connection is gone ([LM-STATE-5])
  return bye.bd !== undefined && current?.bd !== undefined && bye.bd < current.bd;
}

/** What a receiver knows when it judges a STATUS ([LM-STATE-6]). */
export interface StatusContext {
  /** the device's identity key: registered, or that of the HELLO the receiver accepted */
  key: Uint8Array | undefined;
  /** the latest HELLO the receiver accepted of the device */
  hello: Pick<HelloBody, 'bd'> | undefined;
  /** the last STATUS the receiver took of the device */
  last: Pick<StatusBody, 'bd' | 'seq'> | undefined;
}

/**
 * Why a STATUS on `device`'s status topic must be ignored, or undefined when the receiver may
 * take it as the device's state ([LM-STATE-6]): it names the device of its topic, verifies under
 * the device's key, carries the `bd` of the device's latest accepted HELLO, and a `seq` greater
 * than that of the last STATUS taken of that `bd` (a retained STATUS delivered again is the same
 * `seq`: not newer, nothing changes).
 *
 * @example
 * const why = statusRefusal('p1', frame, { key, hello, last }); if (!why) show(frame.body);
 */
export function statusRefusal(device: string, f: StatusFrame, c: StatusContext): string | undefined {
  const s = f.body;
  if (s.device !== device) return `it names "${s.device}"`;
  if (!c.key) return 'the device\'s key is not known (no registry entry, no accepted HELLO)';
  try {
    verifyFrame(f, { signer: c.key });
  } catch (e) {
    return toLmError(e).message;
  }
  if (c.hello?.bd === undefined) return 'no HELLO with a boot sequence was accepted of the device';
  if (s.bd !== c.hello.bd) return `its bd ${s.bd} is not that of the device's current connection (${c.hello.bd})`;
  if (c.last && c.last.bd === s.bd && s.seq <= c.last.seq) return `its seq ${s.seq} is not after the last one taken (${c.last.seq})`;
  return undefined;
}
