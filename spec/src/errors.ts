/**
 * @module errors
 * Reason codes of SPEC.md §7.6 and the one error type the reference code throws.
 */

/** Reason codes, SPEC.md §7.6. */
export const Reason = {
  malformed: 1,
  trailing: 2,
  noncanonical: 3,
  tooLarge: 4,
  tooDeep: 5,
  version: 6,
  unknownType: 7,
  schema: 8,
  auth: 9,
  unknownSession: 10,
  revExpired: 16,
  revFuture: 17,
  busy: 18,
  unknown: 19,
  ambiguous: 20,
  padding: 21,
  replay: 22,
  txSignature: 32,
  txExpired: 33,
  txDevice: 34,
  txCount: 35,
  txGateway: 36,
  txSchema: 37,
  txOperator: 38,
  txRevoked: 39,
  txResume: 40,
  skew: 48,
  params: 49,
  rate: 64,
  tamper: 65,
  digest: 66,
  aborted: 67,
  timeout: 68,
  internal: 80,
  offline: 81,
} as const;

export type ReasonName = keyof typeof Reason;
export type ReasonCode = (typeof Reason)[ReasonName];

/** Wire names of the reason codes as SPEC.md writes them (kebab-case). */
export const REASON_WIRE_NAMES: Readonly<Record<ReasonCode, string>> = Object.freeze(
  Object.fromEntries(
    Object.entries(Reason).map(([k, v]) => [v, k.replace(/[A-Z]/g, (c) => '-' + c.toLowerCase())]),
  ) as Record<ReasonCode, string>,
);

const CODES = new Set<number>(Object.values(Reason));

/** True when `code` is a reason code of SPEC.md §7.6. */
export function isReasonCode(code: number): code is ReasonCode {
  return CODES.has(code);
}

/** Name of a reason code as the spec writes it, e.g. `rev-expired`. */
export function reasonName(code: ReasonCode): string {
  return REASON_WIRE_NAMES[code];
}

/**
 * The one error type of the protocol core. Every failure a parser, verifier or codec reports is
 * an `LmError` with a reason code from SPEC.md §7.6 ([LM-CBOR-6]).
 *
 * @example
 * try { decodeFrame(bytes) } catch (e) { if (e instanceof LmError && e.code === Reason.auth) ... }
 */
export class LmError extends Error {
  static override readonly name = 'LmError';
  readonly code: ReasonCode;
  constructor(code: ReasonCode, message: string, options?: { cause?: unknown }) {
    super(`${reasonName(code)} (${code}): ${message}`, options);
    this.name = 'LmError';
    this.code = code;
  }
  get reason(): string {
    return reasonName(this.code);
  }
}

/** Throw an LmError. Typed `never` so TypeScript narrows after it. */
export function fail(code: ReasonCode, message: string): never {
  throw new LmError(code, message);
}

/**
 * Any thrown value as an LmError: an LmError as it is, anything else as `internal` with its
 * message, the original kept as `cause`. One place instead of unchecked `e as LmError` casts.
 *
 * @example
 * promise.catch((e: unknown) => session.fail(toLmError(e)));
 */
export function toLmError(e: unknown, context?: string): LmError {
  if (e instanceof LmError) return e;
  const message = e instanceof Error ? e.message : String(e);
  return new LmError(Reason.internal, context ? `${context}: ${message}` : message, { cause: e });
}

/**
 * A local failure that never goes on the wire: a missing or malformed file (identity, registry,
 * broker config), an option out of range. Wire failures are {@link LmError}s with reason codes.
 *
 * @example
 * try { readIdentityFile(path) } catch (e) { if (e instanceof ConfigError) console.error(e.message) }
 */
export class ConfigError extends Error {
  static override readonly name = 'ConfigError';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ConfigError';
  }
}

/** The message of any thrown value (an Error's message, or the value as text). */
export function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
