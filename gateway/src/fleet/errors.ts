/**
 * @module fleet/errors
 * The fleet service's local failures, one class per kind. The HTTP API maps each to a status.
 */

/** A job state change the state machine forbids ([LM-FLEET-1]), e.g. resuming a SUCCEEDED job. HTTP 409. */
export class JobTransitionError extends Error {
  constructor(readonly job: string, readonly from: string, readonly to: string) {
    super(`job ${job}: ${from} -> ${to} is not a transition the job state machine allows ([LM-FLEET-1])`);
    this.name = 'JobTransitionError';
  }
}

/** No such job, device, file or key. HTTP 404. */
export class NotFoundError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'NotFoundError';
  }
}

/** A request the service cannot act on as given (a bad field, a file that does not exist, a job the service cannot sign). HTTP 400. */
export class BadRequestError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'BadRequestError';
  }
}

/** An upload over the service's limit: nothing of it is kept. HTTP 413. */
export class TooLargeError extends BadRequestError {
  constructor(message: string) {
    super(message);
    this.name = 'TooLargeError';
  }
}
