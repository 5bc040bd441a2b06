export * from '../src/index.js';
import { LmError, TOPIC_FRAMES, type FrameTypeId } from '../src/index.js';

/** True when some topic of SPEC.md §10 carries frame type t. */
export function checkPublishTopicFrames(t: FrameTypeId): boolean {
  return Object.values(TOPIC_FRAMES).some((s) => s.has(t));
}

/** The reason code of the LmError a call throws (0 when it does not throw). */
export function reasonOf(f: () => unknown): number {
  try {
    f();
  } catch (e) {
    if (e instanceof LmError) return e.code;
    throw e;
  }
  return 0;
}
