/**
 * @module machine-link
 * `livematrix device --serial PATH`: each stream goes to a Marlin-style firmware on a serial port
 * instead of a file or stdout, consumed as the firmware acknowledges it ([LM-DLV-5]); the port
 * stays open from one stream to the next.
 */
import { MachineError, type MarlinSerial, openMarlinSerial, streamToMachine } from '@livematrix/device-sdk/machine';
import type { IncomingStream } from '@livematrix/device-sdk';
import { errorMessage } from '@livematrix/spec';
import { Failure, UsageError, type Values, num, opt } from './args.js';
import { Progress } from './progress.js';

/** The options of `livematrix device` that drive a machine. */
export const SERIAL_OPTIONS = {
  serial: { type: 'string' }, baud: { type: 'string' }, 'serial-timeout': { type: 'string' }, 'advanced-ok': { type: 'string' },
} as const;

/** Opens --serial (undefined without it); usage errors for options that do not go with it. */
export async function openSerial(values: Values): Promise<MarlinSerial | undefined> {
  const path = opt(values, 'serial', '');
  if (!path) {
    for (const o of ['baud', 'serial-timeout', 'advanced-ok']) if (values[o] !== undefined) throw new UsageError(`--${o} needs --serial PATH`);
    return undefined;
  }
  for (const o of ['out', 'rate']) if (values[o] !== undefined) throw new UsageError(`--${o} does not go with --serial: the stream goes to the machine, at its pace`);
  const baudRate = num(values, 'baud', 115200, 1, 10_000_000);
  const timeoutMs = num(values, 'serial-timeout', 30_000, 100, 3_600_000);
  const window = values['advanced-ok'] !== undefined ? num(values, 'advanced-ok', 1, 1, 64) : undefined;
  try {
    const link = await openMarlinSerial({ path, baudRate, timeoutMs, ...(window !== undefined ? { advancedOk: window } : {}) });
    const h = link.host;
    h.on('echo', (t) => console.error(`firmware: ${t}`));
    h.on('firmware-error', (t) => console.error(`firmware error: ${t}`));
    h.on('timeout', (t) => console.error(`firmware silent for ${timeoutMs} ms at line ${t.n}: sending it again (probe ${t.probe})`));
    console.error(`machine link on ${path} at ${baudRate} baud, ${window ? `${window} commands in flight (advanced ok)` : 'one command per ok'}`);
    return link;
  } catch (e) {
    throw new Failure(errorMessage(e));
  }
}

/** Sends one stream to the machine; 'stopped' when `stop` fired, 'failed' when the stream or the machine failed. */
export async function toMachine(next: IncomingStream, link: MarlinSerial, label: string, stop: AbortSignal, signalled: () => string | undefined): Promise<'done' | 'stopped' | 'failed'> {
  console.error(`stream ${next.job}: ${next.size} bytes to ${link.path}${next.resumed ? ' (a resumed print: the machine gets the job from its first line)' : ''}`);
  const p = new Progress(label, next.size);
  try {
    const r = await streamToMachine(next, link.host, { signal: stop, onProgress: (x) => p.update(x.bytes, `${x.acknowledged} lines`) });
    p.done();
    console.error(`machine acknowledged ${r.lines} lines of ${next.job} (${r.resends} resends, ${r.timeouts} timeouts, ${r.errors} firmware errors)`);
    return 'done';
  } catch (e) {
    p.done();
    if (stop.aborted) {
      console.error(`stream ${next.job} stopped by ${signalled() ?? 'a stop'} at line ${link.host.acknowledged} on the machine`);
      return 'stopped';
    }
    console.error(`stream failed: ${errorMessage(e)}${e instanceof MachineError ? ' (the stream was aborted)' : ''}`);
    return 'failed';
  }
}
