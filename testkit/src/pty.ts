/**
 * @module pty
 * A pair of connected pseudo-terminals made by `socat -d -d pty,raw,echo=0 pty,raw,echo=0` (the
 * Debian package), for tests of serial links: one end for the program under test, the other
 * for a simulated machine. The paths come from socat's own report on stderr, waited for, never
 * guessed or slept on.
 */
import { spawn, spawnSync } from 'node:child_process';
import { constants, openSync } from 'node:fs';
import { ReadStream, WriteStream } from 'node:tty';

/** Path of the socat binary, or undefined when it is not installed. */
export function socatPath(): string | undefined {
  for (const p of ['/usr/bin/socat', '/bin/socat', '/usr/local/bin/socat']) if (spawnSync(p, ['-V']).error === undefined) return p;
  return undefined;
}

export interface PtyPair {
  /** the end for the program under test, e.g. /dev/pts/3 */
  a: string;
  /** the other end, e.g. for the simulator */
  b: string;
  /** Stops socat: both ends hang up. */
  close(): Promise<void>;
}

/** Starts socat and resolves once both ends exist and it relays (about 5 s at most). */
export async function ptyPair(): Promise<PtyPair> {
  const bin = socatPath();
  if (!bin) throw new Error('socat is not installed (apt-get install socat)');
  const proc = spawn(bin, ['-d', '-d', 'pty,raw,echo=0', 'pty,raw,echo=0'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  const paths = await new Promise<string[]>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`socat made no pty pair within 5 s: ${log}`)), 5000);
    proc.once('exit', (code) => {
      clearTimeout(t);
      reject(new Error(`socat exited (${code}): ${log}`));
    });
    proc.stderr.on('data', (d: Buffer) => {
      log += d.toString();
      const found = [...log.matchAll(/PTY is (\S+)/g)].map((m) => m[1] ?? '');
      if (found.length >= 2 && log.includes('starting data transfer loop')) {
        clearTimeout(t);
        resolve(found.slice(0, 2));
      }
    });
  });
  return {
    a: paths[0] ?? '', b: paths[1] ?? '',
    close: () => new Promise<void>((resolve) => {
      if (proc.exitCode !== null || proc.signalCode !== null) return resolve();
      proc.once('exit', () => resolve());
      proc.kill('SIGTERM');
    }),
  };
}

export interface PtyEnd {
  input: ReadStream;
  output: WriteStream;
  close(): void;
}

/** Opens one end of a pair for reading and writing (raw, as socat set it). */
export function openPty(path: string): PtyEnd {
  const fd = openSync(path, constants.O_RDWR | constants.O_NOCTTY);
  const input = new ReadStream(fd);
  const output = new WriteStream(fd);
  // a hung-up pty (socat stopped) reports EIO: the end is gone, nothing to throw about
  input.on('error', () => undefined);
  output.on('error', () => undefined);
  return {
    input, output,
    close: () => {
      input.destroy();
      output.destroy();
    },
  };
}
