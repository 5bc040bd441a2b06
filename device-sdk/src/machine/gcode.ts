/**
 * @module machine/gcode
 * The host side of a G-code line on a Marlin serial link: cleaning a job's line (comments,
 * blank lines, spaces), framing it with a line number and checksum (`N12 G1 X10*98`), and
 * splitting a stream's pieces into lines with the partial line carried across pieces.
 */

const encoder = new TextEncoder();

/** Options of {@link cleanLine}. */
export interface CleanOptions {
  /**
   * Also strip `( ... )` comments. Marlin treats parentheses as comments only when built with
   * PAREN_COMMENTS (off by default), and text such as `M117 Layer (1/20)` would lose words, so
   * this is off by default.
   */
  parenComments?: boolean;
}

/**
 * A job's line as it goes to the firmware: without its `;` comment (and `(...)` comments when
 * asked), without leading and trailing white space; '' for a line with nothing to send.
 * @example cleanLine('  G1 X10 ; move') // 'G1 X10'
 */
export function cleanLine(raw: string, o: CleanOptions = {}): string {
  let s = raw;
  const semi = s.indexOf(';');
  if (semi >= 0) s = s.slice(0, semi);
  if (o.parenComments && s.includes('(')) {
    let out = '';
    let depth = 0;
    for (const c of s) {
      if (c === '(') depth++;
      else if (c === ')' && depth > 0) depth--;
      else if (depth === 0) out += c;
    }
    s = out; // an unclosed '(' runs to the end of the line, as in Marlin
  }
  return s.trim();
}

/** XOR of the bytes, as Marlin checks it: every byte of the line before the `*`. */
export function checksum(bytes: Uint8Array): number {
  let c = 0;
  for (const b of bytes) c ^= b;
  return c;
}

/**
 * The bytes on the wire for command `command` as line `n`: `N<n> <command>*<checksum>\n`, the
 * checksum taken over the UTF-8 bytes before `*`.
 * @example new TextDecoder().decode(frameLine(0, 'M110 N0')) // 'N0 M110 N0*125\n'
 */
export function frameLine(n: number, command: string): Uint8Array {
  const head = encoder.encode(`N${n} ${command}`);
  const tail = encoder.encode(`*${checksum(head)}\n`);
  const out = new Uint8Array(head.length + tail.length);
  out.set(head);
  out.set(tail, head.length);
  return out;
}

/**
 * Splits pieces of a byte stream into lines (at `\n`, `\r\n` or a lone `\r`, as Marlin ends a
 * line at either), decoding UTF-8 across piece boundaries; the partial line at the end of a
 * piece waits for the next.
 */
export class LineSplitter {
  private readonly decoder = new TextDecoder();
  private rest = '';

  /** The lines that `piece` completes; with `last`, also the final line that has no line break. */
  push(piece: Uint8Array, last = false): string[] {
    let text = this.rest + this.decoder.decode(piece, { stream: !last });
    // a '\r' at the end may be the first half of '\r\n': it waits with the partial line
    const hold = !last && text.endsWith('\r') ? '\r' : '';
    if (hold) text = text.slice(0, -1);
    const parts = text.split(/\r\n|\r|\n/);
    const tail = parts.pop() ?? '';
    this.rest = last ? '' : tail + hold;
    if (last && tail) parts.push(tail);
    return parts;
  }

  /** bytes of the line carried to the next piece (as text) */
  get partial(): string {
    return this.rest;
  }
}
