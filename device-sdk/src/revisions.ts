/**
 * @module revisions
 * Which revisions a device serves ([LM-REV-2]) and how many it holds ([LM-REV-3]): a phase of
 * its own so that the receive and delivery phases ask one policy.
 */
import { type ReasonCode, type SessionParams, checkRevision } from '@livematrix/spec';
import type { RevisionedType } from './frames.js';

export interface RevisionPolicy {
  /** revisions held below the current one ([LM-REV-3]): 1 */
  readonly keep: number;
  /**
   * null when a frame of `type` stamped with revision `rev` is served at device time `now`,
   * else the reason to refuse it: `rev-expired` or `rev-future` ([LM-REV-2]).
   */
  admit(type: RevisionedType, rev: number, now: number, p: SessionParams): ReasonCode | null;
}

/** The spec's policy: revisions c - 1 and c, for HINTS and KEY alike. */
export function revisionPolicy(): RevisionPolicy {
  return { keep: 1, admit: (_type, rev, now, p) => checkRevision(rev, now, p) }; // [LM-REV-2]
}
