/**
 * @module packet-limit
 * The broker's maximum MQTT packet size ([LM-BRK-6]), enforced on the bytes as they arrive and so
 * before authentication: aedes' parser (mqtt-packet) has no limit and buffers a whole packet,
 * a CONNECT of up to 256 MB included, before the token in it is checked. The connection is
 * wrapped in a stream that reads each packet's fixed header (a type byte, then the remaining
 * length in one to four bytes), skips the body without holding it, and destroys the connection
 * as soon as a header declares a packet larger than the limit, or a malformed length.
 *
 * The size of a packet is counted as MQTT 5's Maximum Packet Size counts it: the fixed header plus
 * the remaining length.
 */
import { Duplex } from 'node:stream';
import { LmError, Reason, ConfigError } from '@livematrix/spec';

/** Default maximum packet size, bytes: four times the largest frame ([LM-FRAME-1]) with room for the topic. */
export const DEFAULT_MAX_PACKET_SIZE = 256 * 1024;
/** The largest packet an MQTT fixed header can declare: 1 + 4 + 268,435,455 bytes. */
export const MQTT_MAX_PACKET_SIZE = 268_435_460;

export type PacketViolation = { kind: 'too-large'; size: number; limit: number } | { kind: 'malformed-length' };

/** Checks a maximum packet size option; returns it, or the default when undefined. */
export function maxPacketSizeOption(v: unknown, where = 'maxPacketSize'): number {
  if (v === undefined) return DEFAULT_MAX_PACKET_SIZE;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 64 || v > MQTT_MAX_PACKET_SIZE) {
    throw new ConfigError(`${where} must be an integer from 64 to ${MQTT_MAX_PACKET_SIZE} (bytes), got ${String(v)}`);
  }
  return v;
}

/** Follows the MQTT fixed headers of a byte stream, chunk by chunk, holding no packet bytes. */
export class PacketSizeScanner {
  private skip = 0; // body bytes of the current packet still to pass
  private state: 'type' | 'length' = 'type';
  private length = 0;
  private lengthBytes = 0;

  constructor(readonly limit: number) {}

  /** Scans the next chunk; returns the first violation, after which the stream must be dropped. */
  scan(chunk: Uint8Array): PacketViolation | undefined {
    let i = 0;
    while (i < chunk.length) {
      if (this.skip > 0) {
        const n = Math.min(this.skip, chunk.length - i);
        this.skip -= n;
        i += n;
      } else if (this.state === 'type') {
        i++;
        this.state = 'length';
        this.length = 0;
        this.lengthBytes = 0;
      } else {
        const b = chunk[i++]!;
        this.length += (b & 0x7f) * 128 ** this.lengthBytes++;
        if (b & 0x80) {
          if (this.lengthBytes === 4) return { kind: 'malformed-length' };
          continue;
        }
        const size = 1 + this.lengthBytes + this.length;
        if (size > this.limit) return { kind: 'too-large', size, limit: this.limit };
        this.skip = this.length;
        this.state = 'type';
      }
    }
    return undefined;
  }
}

/**
 * Wraps a connection (a TCP or TLS socket, a WebSocket stream) for aedes: bytes pass through
 * unchanged, with back-pressure, until a packet header breaks the limit; then `onViolation` is
 * called and both streams are destroyed. Errors and closes of `inner` carry over to the wrapper.
 */
export function limitPacketSize(inner: Duplex, limit: number, onViolation: (v: PacketViolation) => void = () => undefined): Duplex {
  const scanner = new PacketSizeScanner(limit);
  const outer = new Duplex({
    read() {
      inner.resume();
    },
    write(chunk: Buffer, _enc, cb) {
      if (inner.write(chunk)) cb();
      else inner.once('drain', () => cb());
    },
    // aedes (mqtt-packet) corks around each packet's pieces: keep them one system call
    writev(chunks, cb) {
      inner.cork();
      let ok = true;
      for (const c of chunks) ok = inner.write(c.chunk as Buffer);
      inner.uncork();
      if (ok) cb();
      else inner.once('drain', () => cb());
    },
    final(cb) {
      inner.end(() => cb());
    },
    destroy(err, cb) {
      inner.destroy();
      cb(err);
    },
  });
  inner.on('data', (chunk: Buffer) => {
    const v = scanner.scan(chunk);
    if (v) {
      try {
        onViolation(v);
      } catch {
        // a logging callback must not keep an oversized connection open
      }
      inner.destroy();
      outer.destroy();
      return;
    }
    if (!outer.push(chunk)) inner.pause();
  });
  inner.on('end', () => outer.push(null));
  inner.on('error', (e) => outer.destroy(e));
  inner.on('close', () => outer.destroy());
  return outer;
}
