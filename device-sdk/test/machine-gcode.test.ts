/**
 * The machine link's pieces without a port: checksums against the values hosts and firmware
 * documentation use, line cleaning, splitting pieces into lines, and the firmware's replies
 * (a parser that never throws, checked on arbitrary input).
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { LineSplitter, checksum, cleanLine, frameLine, parseReply } from '../src/machine/index.js';

const text = (b: Uint8Array) => new TextDecoder().decode(b);

describe('line framing', () => {
  it('checksums as Marlin checks them: XOR of the bytes before `*`', () => {
    // the reset lines that Printrun and OctoPrint send, with the checksums their logs show
    expect(text(frameLine(0, 'M110 N0'))).toBe('N0 M110 N0*125\n');
    expect(checksum(new TextEncoder().encode('N-1 M110'))).toBe(15);
    expect(text(frameLine(123, 'G1 X10'))).toBe('N123 G1 X10*81\n');
    // UTF-8 bytes, not UTF-16 code units
    const framed = text(frameLine(7, 'M117 °C'));
    expect(framed).toBe(`N7 M117 °C*${checksum(new TextEncoder().encode('N7 M117 °C'))}\n`);
    expect(framed).not.toBe(`N7 M117 °C*${[...'N7 M117 °C'].reduce((c, ch) => c ^ ch.charCodeAt(0), 0)}\n`);
  });

  it('strips comments and spaces, keeps parentheses unless asked', () => {
    expect(cleanLine('  G1 X10 Y2 ; move  ')).toBe('G1 X10 Y2');
    expect(cleanLine('; only a comment')).toBe('');
    expect(cleanLine('   ')).toBe('');
    expect(cleanLine('M117 Layer (1/3)')).toBe('M117 Layer (1/3)');
    expect(cleanLine('G1 (fast) X1 (y too', { parenComments: true })).toBe('G1  X1');
  });

  it('splits pieces into lines at \\n, \\r\\n and \\r, carrying a partial line and a cut character', () => {
    const s = new LineSplitter();
    const enc = new TextEncoder().encode('G1 X1\r');
    expect(s.push(enc)).toEqual([]); // '\r' may be the start of '\r\n'
    expect(s.push(new TextEncoder().encode('\nG1 X2\rG1 X3\nM117 '))).toEqual(['G1 X1', 'G1 X2', 'G1 X3']);
    expect(s.partial).toBe('M117 ');
    const deg = new TextEncoder().encode('°C\nG28');
    expect(s.push(deg.slice(0, 1))).toEqual([]); // half of '°'
    expect(s.push(deg.slice(1))).toEqual(['M117 °C']);
    expect(s.push(new Uint8Array(0), true)).toEqual(['G28']); // the last line has no line break
  });
});

describe('firmware replies', () => {
  it('reads ok, advanced ok and a temperature report', () => {
    expect(parseReply('ok')).toEqual({ kind: 'ok', text: 'ok' });
    expect(parseReply('ok N123 P15 B3\r')).toMatchObject({ kind: 'ok', n: 123, planner: 15, buffer: 3 });
    const t = parseReply('ok T:210.0 /210.0 B:60.0 /60.0 @:64 B@:0');
    expect(t.kind).toBe('ok');
    expect(t).not.toHaveProperty('n');
    expect(t).not.toHaveProperty('buffer'); // B:60.0 is the bed, not advanced ok's B
    expect(parseReply('okay').kind).toBe('other');
  });

  it('reads Resend: and rs in the forms firmwares write them', () => {
    for (const l of ['Resend: 42', 'Resend:42', 'resend: N42', 'rs 42', 'rs N42']) expect(parseReply(l)).toMatchObject({ kind: 'resend', n: 42 });
  });

  it('reads busy:, echo:, Error: (fatal or not), start and the rest', () => {
    expect(parseReply('echo:busy: processing')).toEqual({ kind: 'busy', text: 'processing' });
    expect(parseReply('busy: paused for user')).toEqual({ kind: 'busy', text: 'paused for user' });
    expect(parseReply('echo:Unknown command: "G999"')).toEqual({ kind: 'echo', text: 'Unknown command: "G999"' });
    expect(parseReply('Error:checksum mismatch, Last Line: 7')).toEqual({ kind: 'error', text: 'checksum mismatch, Last Line: 7', fatal: false });
    expect(parseReply('Error:Printer halted. kill() called!')).toMatchObject({ kind: 'error', fatal: true });
    expect(parseReply('Error:Thermal Runaway, system stopped! Heater_ID: 0')).toMatchObject({ kind: 'error', fatal: true });
    expect(parseReply('start').kind).toBe('start');
    expect(parseReply(' T:21.2 /0.0 B:20.1 /0.0')).toEqual({ kind: 'other', text: 'T:21.2 /0.0 B:20.1 /0.0' });
    expect(parseReply('wait').kind).toBe('other');
  });

  it('never throws, whatever the line', () => {
    fc.assert(fc.property(fc.string({ maxLength: 200 }), (s) => {
      const r = parseReply(s);
      expect(['ok', 'resend', 'busy', 'echo', 'error', 'start', 'other']).toContain(r.kind);
    }), { numRuns: 2000 });
  });
});
