/**
 * @module errors
 * Local failures of the SDK: misuse of its API, which no peer hears about. Failures of the
 * protocol are LmError with a wire reason code (@livematrix/spec).
 */

/** An operation that needs a running session found none (e.g. telemetry between streams). */
export class NoSessionError extends Error {
  static override readonly name = 'NoSessionError';
  constructor(message: string) {
    super(message);
    this.name = 'NoSessionError';
  }
}

/** A stream's bytes were asked for a second time: a stream is read once. */
export class StreamReadError extends Error {
  static override readonly name = 'StreamReadError';
  constructor(message: string) {
    super(message);
    this.name = 'StreamReadError';
  }
}

/** A status report the SDK cannot publish: a float among the readings, readings over 4096 bytes encoded, a detail over 256 bytes ([LM-STATE-1]). */
export class StatusReportError extends Error {
  static override readonly name = 'StatusReportError';
  constructor(message: string) {
    super(message);
    this.name = 'StatusReportError';
  }
}
