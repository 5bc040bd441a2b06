/**
 * @module machine/errors
 * Failures of the machine link, one class per kind, all a {@link MachineError}: the firmware
 * went silent, halted, rebooted or broke the protocol; a line cannot be sent; the port failed or
 * closed; the stream cannot go to a machine.
 */

/** Any failure of the machine link. */
export class MachineError extends Error {
  static override readonly name: string = 'MachineError';
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/** The firmware acknowledged nothing within the timeout, probes included. */
export class MachineTimeoutError extends MachineError {
  static override readonly name = 'MachineTimeoutError';
  constructor(readonly line: number, readonly ms: number, detail: string) {
    super(`the firmware went silent: no acknowledgement of line ${line} within ${ms} ms (${detail})`);
  }
}

/** The firmware reported that it halted or stopped (`Error:Printer halted. kill() called!`). */
export class MachineHaltedError extends MachineError {
  static override readonly name = 'MachineHaltedError';
  constructor(readonly firmwareMessage: string) {
    super(`the firmware halted: ${firmwareMessage}`);
  }
}

/** The firmware rebooted (`start`) in the middle of a job: what it queued is gone. */
export class MachineResetError extends MachineError {
  static override readonly name = 'MachineResetError';
}

/** The firmware's answers do not fit the protocol (line numbers never sent, endless resends). */
export class MachineProtocolError extends MachineError {
  static override readonly name = 'MachineProtocolError';
}

/** A line cannot be sent as it is (too long for the firmware's command buffer, a line break inside). */
export class MachineLineError extends MachineError {
  static override readonly name = 'MachineLineError';
}

/** The serial port could not be opened, failed, or was closed. */
export class MachinePortError extends MachineError {
  static override readonly name = 'MachinePortError';
}

/** The link was closed (or its job stopped) while something waited on it. */
export class MachineClosedError extends MachineError {
  static override readonly name = 'MachineClosedError';
}

/** The stream cannot go to the machine as it is (e.g. a resumed stream starting mid-job). */
export class MachineStreamError extends MachineError {
  static override readonly name = 'MachineStreamError';
}
