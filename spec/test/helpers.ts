export * from '../src/index.js';
import { TOPIC_FRAMES, type FrameTypeId } from '../src/index.js';

/** True when some topic of SPEC.md §10 carries frame type t. */
export function checkPublishTopicFrames(t: FrameTypeId): boolean {
  return Object.values(TOPIC_FRAMES).some((s) => s.has(t));
}
