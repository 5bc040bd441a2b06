/**
 * @module machine/serial
 * A {@link MarlinHost} on a serial port (the `serialport` package, loaded only when a port is
 * opened): the firmware's lines go to the host, the host's lines to the port; a port that fails
 * or closes fails the link with MachinePortError. A line from the firmware is at most
 * {@link MAX_FIRMWARE_LINE} bytes: more without a line break (a wrong baud rate, a bad board)
 * fails the link with MachineProtocolError instead of buffering without bound.
 */
import { MachinePortError, MachineProtocolError } from './errors.js';
import { MarlinHost, type MarlinOptions } from './marlin.js';

export interface MarlinSerialOptions extends Omit<MarlinOptions, 'write'> {
  /** the port, e.g. /dev/ttyUSB0, /dev/ttyACM0 */
  path: string;
  /** e.g. 115200 or 250000, as the firmware was built (Marlin's BAUDRATE) */
  baudRate: number;
}

/**
 * The longest line (bytes, without its line break) the link takes from the firmware. Marlin's
 * replies are under 100 bytes and its longest reports (M503, M115 capabilities) a few hundred.
 */
export const MAX_FIRMWARE_LINE = 4096;

/**
 * Splits the bytes from the port into lines at `\n` (a `\r` before it stays, as the host's
 * parser expects) and decodes each as UTF-8; `overlong` is called once, and nothing more is
 * split, when `max` bytes pass without a line break.
 */
export function lineSplitter(onLine: (l: string) => void, overlong: (bytes: number) => void, max = MAX_FIRMWARE_LINE): (chunk: Buffer) => void {
  let pending: Buffer[] = [];
  let size = 0;
  let dead = false;
  return (chunk) => {
    if (dead) return;
    let from = 0;
    let over = -1; // the length of a line over `max` whose break is in this chunk
    for (let i = chunk.indexOf(0x0a); i >= 0; i = chunk.indexOf(0x0a, from)) {
      if (size + i - from > max) {
        over = size + i - from;
        break;
      }
      pending.push(chunk.subarray(from, i));
      const line = Buffer.concat(pending).toString('utf8');
      pending = [];
      size = 0;
      from = i + 1;
      onLine(line);
    }
    const rest = chunk.length - from;
    if (over >= 0 || size + rest > max) {
      dead = true;
      pending = [];
      overlong(over >= 0 ? over : size + rest);
      return;
    }
    if (rest > 0) {
      pending.push(Buffer.from(chunk.subarray(from))); // a copy: the port may reuse its buffer
      size += rest;
    }
  };
}

/** An open serial link to a Marlin-style firmware. */
export interface MarlinSerial {
  readonly path: string;
  readonly host: MarlinHost;
  /** Closes the port; what waits on the host rejects with MachineClosedError. */
  close(): Promise<void>;
}

/**
 * Opens `path` at `baudRate` and puts a {@link MarlinHost} on it. Rejects with MachinePortError
 * when the port cannot be opened.
 * @example
 * const link = await openMarlinSerial({ path: '/dev/ttyUSB0', baudRate: 115200, advancedOk: 4 });
 * link.host.on('echo', (l) => console.log(l));
 */
export async function openMarlinSerial(o: MarlinSerialOptions): Promise<MarlinSerial> {
  if (!Number.isInteger(o.baudRate) || o.baudRate <= 0) throw new RangeError(`"baudRate" expected a positive integer, got ${o.baudRate}`);
  const { SerialPort } = await import('serialport');
  const port = new SerialPort({ path: o.path, baudRate: o.baudRate, autoOpen: false });
  await new Promise<void>((resolve, reject) => port.open((e) => (e ? reject(new MachinePortError(`cannot open ${o.path} at ${o.baudRate} baud: ${e.message}`)) : resolve())));
  const failed = (why: string) => host.close(new MachinePortError(`serial port ${o.path}: ${why}`));
  const host = new MarlinHost({
    ...o,
    write: (b) => {
      port.write(Buffer.from(b), (e) => {
        if (e) failed(`write failed: ${e.message}`);
      });
    },
  });
  port.on('data', lineSplitter((l) => host.receive(l), (n) => host.close(new MachineProtocolError(
    `serial port ${o.path}: the firmware sent ${n} bytes without a line break (at most ${MAX_FIRMWARE_LINE} in a line): is ${o.baudRate} the baud rate the firmware was built with?`))));
  port.on('error', (e: Error) => failed(e.message));
  port.on('close', () => failed('closed'));
  return {
    path: o.path,
    host,
    close: () => new Promise<void>((resolve) => {
      host.close();
      if (!port.isOpen) return resolve();
      port.close(() => resolve());
    }),
  };
}
