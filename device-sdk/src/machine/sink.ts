/**
 * @module machine/sink
 * A stream's G-code into a Marlin firmware: each piece of `IncomingStream.bytes()` is split into
 * lines, cleaned (comments, blank lines, spaces) and handed to a {@link MarlinHost}; the loop asks
 * for the next piece, which is what counts the piece as consumed and acknowledges it to the
 * gateway ([LM-DLV-4]), only once the firmware acknowledged every line that ended in it. So the
 * consumption the gateway sees never runs ahead of the firmware by more than the partial line
 * carried into the next piece, and the gateway's window ([LM-DLV-5], [LM-DLV-16]) holds the
 * stream at the machine's pace.
 */
import type { IncomingStream } from '../stream.js';
import { MachineClosedError, MachineError, MachineStreamError } from './errors.js';
import { type CleanOptions, LineSplitter, cleanLine } from './gcode.js';
import type { MarlinHost } from './marlin.js';

export interface MachineJobOptions extends CleanOptions {
  /** stops the job: what waits rejects with MachineClosedError; the stream is left as it is */
  signal?: AbortSignal;
  /** abort the stream ([LM-DLV-9]) when the machine link fails; default true */
  abortOnFailure?: boolean;
  /** after each piece the firmware acknowledged */
  onProgress?(p: MachineProgress): void;
}

export interface MachineProgress {
  /** bytes of the job the loop took: consumed once it asks for the next piece */
  bytes: number;
  /** bytes of the stream */
  total: number;
  /** lines given to the firmware in this job (the M110 of the start not counted) */
  lines: number;
  /** of those, acknowledged by the firmware */
  acknowledged: number;
}

export interface MachineJobResult {
  bytes: number;
  /** lines the firmware acknowledged: the job without comments and blank lines */
  lines: number;
  /** `Resend:` requests during the job */
  resends: number;
  /** probes after a timeout during the job */
  timeouts: number;
  /** `Error:` lines during the job */
  errors: number;
}

/**
 * Sends a stream to the firmware behind `host` (numbering starts again with M110), line by
 * line, consuming the stream only as fast as the firmware acknowledges it. Resolves once the
 * stream ended (its digest verified, [LM-DLV-6]) and the firmware acknowledged every line.
 * Rejects with the stream's LmError, a {@link MachineError} of the link (after aborting the
 * stream, unless `abortOnFailure` is false), or MachineStreamError for a resumed stream that
 * starts mid-job (the firmware would get the rest of a line).
 * @example
 * const link = await openMarlinSerial({ path: '/dev/ttyUSB0', baudRate: 115200 });
 * for (;;) await streamToMachine(await device.nextStream(), link.host);
 */
export async function streamToMachine(stream: IncomingStream, host: MarlinHost, o: MachineJobOptions = {}): Promise<MachineJobResult> {
  if (stream.offset > 0) {
    throw new MachineStreamError(`stream ${stream.job} resumes at byte ${stream.offset}: a machine link starts a job at its first line (give the device no resume point for it)`);
  }
  const before = { ...host.stats };
  const total = stream.size;
  let onAbort: (() => void) | undefined;
  const stopped = new Promise<never>((_, reject) => {
    onAbort = () => reject(new MachineClosedError(`job ${stream.job} stopped`));
    if (o.signal?.aborted) onAbort();
    else o.signal?.addEventListener('abort', onAbort, { once: true });
  });
  stopped.catch(() => undefined);
  const race = <T>(p: Promise<T>): Promise<T> => Promise.race([p, stopped]);
  const split = new LineSplitter();
  const it = stream.bytes()[Symbol.asyncIterator]();
  let bytes = 0;
  try {
    await race(host.reset());
    for (;;) {
      const r = await race(it.next());
      if (r.done) break;
      bytes += r.value.length;
      // the last byte ends the last line, with or without a line break
      for (const line of split.push(r.value, bytes >= total)) {
        const command = cleanLine(line, o);
        if (command) await race(host.send(command));
      }
      // [LM-DLV-5]: ask for the next piece (so consume this one) once the firmware acknowledged
      // every line that ended in it
      await race(host.drain());
      o.onProgress?.({ bytes, total, lines: host.given, acknowledged: host.acknowledged });
    }
  } catch (e) {
    if (o.signal?.aborted) void it.return().catch(() => undefined); // a pending read ends with the session
    else {
      if (e instanceof MachineError && (o.abortOnFailure ?? true)) await stream.abort().catch(() => undefined);
      // the stream failed: the lines already sent run, so that their oks are not taken for the next job's
      else if (!(e instanceof MachineError)) await host.drain().catch(() => undefined);
      await it.return().catch(() => undefined);
    }
    throw e;
  } finally {
    if (onAbort) o.signal?.removeEventListener('abort', onAbort);
  }
  const s = host.stats;
  return { bytes, lines: host.acknowledged, resends: s.resends - before.resends, timeouts: s.timeouts - before.timeouts, errors: s.errors - before.errors };
}
