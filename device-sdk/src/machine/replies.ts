/**
 * @module machine/replies
 * What a Marlin-style firmware says on its serial port, one line at a time, as a typed reply:
 * `ok` (with ADVANCED_OK's `N<line> P<planner> B<buffer>`), `Resend: N` / `rs N`, `busy:`,
 * `echo:`, `Error:`, `start`, and everything else (temperatures, `wait`, `//action:`). Parsing
 * never throws: a line it does not know is `other`.
 */

export type Reply =
  /** a command was processed; `n` (advanced ok) is the line number it had */
  | { kind: 'ok'; n?: number; planner?: number; buffer?: number; text: string }
  /** the firmware asks for every line from `n` on again */
  | { kind: 'resend'; n: number; text: string }
  /** host keepalive: a long command is still running (`busy: processing`, `echo:busy: ...`) */
  | { kind: 'busy'; text: string }
  /** information (`echo:...`), without the prefix */
  | { kind: 'echo'; text: string }
  /** `Error:...`, without the prefix; `fatal` when the firmware halted or stopped */
  | { kind: 'error'; text: string; fatal: boolean }
  /** the firmware (re)booted */
  | { kind: 'start'; text: string }
  | { kind: 'other'; text: string };

/** Messages of a firmware that stopped executing: kill(), Stop(), thermal protection. */
const FATAL = /halted|kill\(\) called|stopped due to errors|system stopped|emergency stop/i;
const RESEND = /^(?:resend|rs)\s*:?\s*n?:?\s*(\d+)/i;
const DIGITS = /^-?\d+$/;

/** One line the firmware sent (without its line break) as a {@link Reply}. */
export function parseReply(raw: string): Reply {
  const text = raw.trim();
  const lower = text.toLowerCase();
  if (lower === 'ok' || lower.startsWith('ok ')) return ok(text);
  const rs = RESEND.exec(text);
  if (rs?.[1]) return { kind: 'resend', n: Number(rs[1]), text };
  if (lower.startsWith('busy:')) return { kind: 'busy', text: text.slice(5).trim() };
  if (lower.startsWith('echo:')) {
    const rest = text.slice(5).trim();
    if (rest.toLowerCase().startsWith('busy:')) return { kind: 'busy', text: rest.slice(5).trim() };
    return { kind: 'echo', text: rest };
  }
  if (lower.startsWith('error:') || lower.startsWith('!!')) {
    const rest = text.slice(lower.startsWith('!!') ? 2 : 6).trim();
    return { kind: 'error', text: rest, fatal: FATAL.test(rest) };
  }
  if (lower === 'start') return { kind: 'start', text };
  return { kind: 'other', text };
}

/** `ok`, `ok N12 P15 B3`, `ok T:210.0 /210.0 B:60.0 /60.0` (a temperature report is not advanced ok) */
function ok(text: string): Reply {
  const r: { kind: 'ok'; n?: number; planner?: number; buffer?: number; text: string } = { kind: 'ok', text };
  for (const tok of text.split(/\s+/).slice(1)) {
    const key = tok[0];
    const val = tok.slice(1);
    if (!DIGITS.test(val)) continue;
    if (key === 'N') r.n = Number(val);
    else if (key === 'P') r.planner = Number(val);
    else if (key === 'B') r.buffer = Number(val);
  }
  return r;
}
