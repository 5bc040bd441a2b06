/**
 * @module @livematrix/conformance
 * Conformance suite for Live Matrix implementations. Its tests cite requirement IDs from
 * `@livematrix/spec/requirements.json`; this release exposes that list.
 */
import { createRequire } from 'node:module';

export interface Requirement {
  id: string;
  level: string;
  section: string;
  text: string;
}

const require = createRequire(import.meta.url);

/** The requirements of SPEC.md, as extracted into spec/requirements.json. */
export function requirements(): Requirement[] {
  return (require('@livematrix/spec/requirements.json') as { requirements: Requirement[] }).requirements;
}
