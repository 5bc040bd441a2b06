/**
 * @module @livematrix/device-sdk/machine
 * The machine link: a stream's G-code into a Marlin-style firmware over a serial port, consumed
 * only as the firmware acknowledges it ([LM-DLV-5]). `openMarlinSerial()` opens the port,
 * `streamToMachine()` sends one stream; `MarlinHost` is the protocol on its own, for any
 * transport.
 */
export { streamToMachine, type MachineJobOptions, type MachineJobResult, type MachineProgress } from './sink.js';
export { openMarlinSerial, type MarlinSerial, type MarlinSerialOptions } from './serial.js';
export { MarlinHost, type MarlinEvents, type MarlinOptions, type MarlinStats } from './marlin.js';
export { cleanLine, checksum, frameLine, LineSplitter, type CleanOptions } from './gcode.js';
export { parseReply, type Reply } from './replies.js';
export {
  MachineError, MachineTimeoutError, MachineHaltedError, MachineResetError, MachineProtocolError,
  MachineLineError, MachinePortError, MachineClosedError, MachineStreamError,
} from './errors.js';
