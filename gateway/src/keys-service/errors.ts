/**
 * @module keys-service/errors
 * The keys service's failures, one class per kind (as gateway/src/errors.ts). Each is an
 * {@link LmError}, so callers can test the class or the reason code.
 */
import { LmError, Reason, toHex } from '@livematrix/spec';

/** The job was deleted ([LM-SVC-5]) or never registered here. Reason `unknown` (19). */
export class UnknownJobError extends LmError {
  readonly jid: string;
  constructor(jid: Uint8Array) {
    super(Reason.unknown, `job ${toHex(jid)} is not known to this keys service (deleted or never uploaded)`);
    this.name = 'UnknownJobError';
    this.jid = toHex(jid);
  }
}

/** No licence secret was granted for the transaction. Reason `unknown` (19). */
export class NoGrantError extends LmError {
  constructor(txh: Uint8Array) {
    super(Reason.unknown, `transaction ${toHex(txh)} has no licence granted to this keys service (grant(tx, licence) first, or its job was deleted)`);
    this.name = 'NoGrantError';
  }
}

/**
 * The chunk is beyond the transaction's allowance so far ([LM-PROT-2]). Reason `busy` (18);
 * `retryAt` (ms, on the service's clock) is the first time it will be released.
 */
export class ReleaseBusyError extends LmError {
  constructor(readonly j: number, readonly retryAt: number, message: string) {
    super(Reason.busy, message);
    this.name = 'ReleaseBusyError';
  }
}

/** Release for the transaction is withheld after an alarm until it is cleared ([LM-PROT-2]). Reason `rate` (64). */
export class ReleaseWithheldError extends LmError {
  constructor(txh: Uint8Array) {
    super(Reason.rate, `chunk keys of transaction ${toHex(txh)} are withheld after an alarm, until it is cleared ([LM-PROT-2])`);
    this.name = 'ReleaseWithheldError';
  }
}
