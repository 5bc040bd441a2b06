/**
 * @module machine/serial
 * A {@link MarlinHost} on a serial port (the `serialport` package, loaded only when a port is
 * opened): the firmware's lines go to the host, the host's lines to the port; a port that fails
 * or closes fails the link with MachinePortError.
 */
import { MachinePortError } from './errors.js';
import { MarlinHost, type MarlinOptions } from './marlin.js';

export interface MarlinSerialOptions extends Omit<MarlinOptions, 'write'> {
  /** the port, e.g. /dev/ttyUSB0, /dev/ttyACM0 */
  path: string;
  /** e.g. 115200 or 250000, as the firmware was built (Marlin's BAUDRATE) */
  baudRate: number;
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
  const { SerialPort, ReadlineParser } = await import('serialport');
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
  const lines = port.pipe(new ReadlineParser({ delimiter: '\n', encoding: 'utf8' }));
  lines.on('data', (l: string) => host.receive(l));
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
