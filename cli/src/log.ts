/**
 * @module log
 * Hostile input as bounded, one-line log entries: refused OFFERs and dropped frames are written
 * one readable line each, rate-limited, with text from the wire escaped and capped.
 */
import { FRAME_TYPE_NAMES, FrameType, type FrameTypeId, decodeFrame, isReasonCode, reasonName, toHex } from '@livematrix/spec';

/** refusal and drop lines per window, at most; the rest are counted in one summary line */
export const LOG_MAX_LINES = 10;
export const LOG_WINDOW_MS = 10_000;

/**
 * At most `max` lines per window of `windowMs` (a window opens with its first line); what is
 * held back is counted and reported in one line when the window closes, so a flood of bad
 * frames cannot fill a disk with log lines.
 */
export class RateLimitedLog {
  private shown = 0;
  private held = 0;
  private timer: NodeJS.Timeout | undefined;
  constructor(private readonly write: (line: string) => void, private readonly what: string, private readonly max = LOG_MAX_LINES, private readonly windowMs = LOG_WINDOW_MS) {}

  line(text: string): void {
    if (!this.timer) {
      this.shown = 0;
      this.held = 0;
      this.timer = setTimeout(() => this.close(), this.windowMs);
      this.timer.unref();
    }
    if (this.shown < this.max) {
      this.shown++;
      this.write(text);
    } else this.held++;
  }

  /** Closes the current window now (reports what it held back). */
  flush(): void {
    if (!this.timer) return;
    clearTimeout(this.timer);
    this.close();
  }

  private close(): void {
    this.timer = undefined;
    if (this.held > 0) this.write(`... and ${this.held} more ${this.what} in the last ${this.windowMs / 1000} s`);
    this.held = 0;
  }
}

/** Text from the wire on one line: control characters (newlines, terminal escapes) escaped, length capped. */
export function oneLine(text: string, max = 300): string {
  const clean = text.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
  return clean.length > max ? `${clean.slice(0, max)}...` : clean;
}

/** What a device or gateway reports about a frame it refused or dropped. */
export interface Refusal {
  code: number;
  /** frame type: 0 when the frame did not decode; absent when the reporter does not say (the gateway) */
  type?: number;
  detail: string;
}

/**
 * The claimed gateway key of recent OFFERs, by session id: names the sender in refusal lines.
 * The key is what the OFFER says; for an OFFER whose signature does not verify it is a claim.
 */
export class OfferSenders {
  private readonly bySid = new Map<string, string>();
  private last: string | undefined;

  /** Looks at a payload the device receives; decodes only OFFERs (envelope 0x84, version 1, type 2). */
  see(payload: Uint8Array): void {
    if (payload.length < 4 || payload[0] !== 0x84 || payload[2] !== FrameType.OFFER) return;
    try {
      const f = decodeFrame(payload);
      if (f.type !== FrameType.OFFER) return;
      const b = f.body as { sid: Uint8Array; gwpk: Uint8Array };
      this.last = toHex(b.gwpk);
      this.bySid.set(toHex(b.sid).slice(0, 8), this.last);
      if (this.bySid.size > 256) this.bySid.delete(this.bySid.keys().next().value as string);
    } catch {
      // not an OFFER that decodes: the device reports it
    }
  }

  /** The sender of the OFFER with this session id prefix, else of the latest OFFER. */
  of(sid: string | undefined): string | undefined {
    return (sid !== undefined ? this.bySid.get(sid) : undefined) ?? this.last;
  }
}

/** One readable line for a refusal: `refused OFFER from gateway key ab12...: auth (9): ...`. */
export function describeRefusal(r: Refusal, senders?: OfferSenders): string {
  const reason = isReasonCode(r.code) ? reasonName(r.code) : 'code';
  let detail = r.detail;
  // details may repeat what this line says first: the session id and "reason (code): "
  const sid = /^OFFER ([0-9a-f]{8}) refused: /.exec(detail);
  if (sid) detail = detail.slice(sid[0].length);
  const prefix = `${reason} (${r.code}): `;
  const at = detail.indexOf(prefix);
  if (at >= 0 && at < 200) detail = detail.slice(0, at) + detail.slice(at + prefix.length);
  return `${refusedWhat(r.type, sid?.[1], senders)}: ${prefix}${oneLine(detail)}`;
}

/** What was refused or dropped: the start of a refusal line. */
function refusedWhat(type: number | undefined, sid: string | undefined, senders?: OfferSenders): string {
  if (type === undefined) return 'dropped a frame';
  if (type === FrameType.OFFER) {
    const gw = senders?.of(sid);
    return `refused OFFER${sid !== undefined ? ` ${sid}` : ''}${gw ? ` from gateway key ${gw.slice(0, 16)}...` : ''}`;
  }
  if (type === 0) return 'dropped a frame that does not decode';
  return `dropped ${FRAME_TYPE_NAMES[type as FrameTypeId] ?? `frame type ${type}`}`;
}
