/**
 * @module errors
 * The gateway's local failures, one class per kind (in js-libp2p's manner). Each is an
 * {@link LmError} with the reason code that a stream's `done` and the wire report, so callers
 * can test the class or the code; `name` says the class.
 */
import { LmError, Reason, type ReasonCode } from '@livematrix/spec';

/** No HELLO of the device (of the key asked for) arrived in time. */
export class HelloTimeoutError extends LmError {
  constructor(message: string) {
    super(Reason.timeout, message);
    this.name = 'HelloTimeoutError';
  }
}

/** A stream to the device is already running on this gateway. */
export class StreamBusyError extends LmError {
  constructor(message: string) {
    super(Reason.busy, message);
    this.name = 'StreamBusyError';
  }
}

/** The device did not ACCEPT the OFFER within the offer timeout ([LM-FRAME-9]). */
export class OfferTimeoutError extends LmError {
  constructor(message: string) {
    super(Reason.timeout, message);
    this.name = 'OfferTimeoutError';
  }
}

/** The device refused the OFFER with a refusal signed by its key ([LM-FRAME-9]). */
export class OfferRefusedError extends LmError {
  constructor(code: ReasonCode, message: string) {
    super(code, message);
    this.name = 'OfferRefusedError';
  }
}

/** No authenticated frame of the device arrived for the device timeout ([LM-DLV-13]). */
export class DeviceSilentError extends LmError {
  constructor(message: string) {
    super(Reason.timeout, message);
    this.name = 'DeviceSilentError';
  }
}

/** The device's Last Will arrived and the device was not heard again within the grace ([LM-DLV-13]). */
export class DeviceOfflineError extends LmError {
  constructor(message: string) {
    super(Reason.offline, message);
    this.name = 'DeviceOfflineError';
  }
}

/** The stream was aborted: by the gateway, by the device ([LM-DLV-9]) or by stopping the gateway. */
export class StreamAbortedError extends LmError {
  constructor(message: string) {
    super(Reason.aborted, message);
    this.name = 'StreamAbortedError';
  }
}

/**
 * The gateway stopped while the stream ran: the print is interrupted, and resumes with the
 * device's ticket ([LM-LIC-4]). Its code is `offline`, which the device's ERROR tells it too, so
 * that the device holds its ticket ([LM-LIC-3]).
 */
export class GatewayStoppedError extends LmError {
  constructor(message: string) {
    super(Reason.offline, message);
    this.name = 'GatewayStoppedError';
  }
}
