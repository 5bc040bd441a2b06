/**
 * @module vectors-profile
 * The vectors profile: runs every test of spec/vectors/v1 through an implementation's adapter
 * (a process speaking line-based JSON on stdin/stdout) in both directions (what it encodes is
 * compared byte for byte, what it decodes field by field) and records a result per vector
 * request, each a check of the requirement IDs the vector cites. Then it probes the adapter
 * protocol (unknown ops, bad JSON, missing or mistyped fields) and the decoder with garbage
 * ([LM-CBOR-6]): every answer must be typed.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import { REASON_WIRE_NAMES, errorMessage } from '@livematrix/spec';
import type { CheckRecord, TestResult } from './checks.js';
import type { RequirementId } from './generated/requirements.js';
import { type VFile, requests } from './vectors-requests.js';

export { wireJson } from './vectors-requests.js';

/** The vector files of spec/vectors/v1 the profile runs, in order. */
export const VECTOR_FILES = [
  'hint.json', 'pack.json', 'keys.json', 'aead.json', 'frames.json', 'tx.json', 'ticket.json', 'revocation.json', 'protected.json',
  'encode.json', 'licence.json', 'table.json', 'clock.json', 'params.json', 'telemetry.json', 'session.json', 'ledger.json', 'ledger-append.json',
] as const;

const vectorsDir = () => join(dirname(createRequire(import.meta.url).resolve('@livematrix/spec/requirements.json')), 'vectors', 'v1');

/** One request waiting for its answer. */
interface Waiter {
  res: (a: Answer) => void;
  rej: (e: Error) => void;
}

/**
 * An adapter process: one request line out, one answer line back, matched by `id`. The profile
 * has one request outstanding at a time, so an answer that cannot be matched (an `id` that is
 * neither an integer nor null, or none) fails that request at once as a protocol failure, rather
 * than leaving it to time out.
 */
class Adapter {
  private readonly child: ChildProcess;
  private readonly pending = new Map<number, Waiter>();
  /** waiters for answers with `"id": null` (to requests the adapter could not read), in order */
  private readonly unread: Waiter[] = [];
  private next = 1;
  private gone: string | undefined;

  constructor(command: string) {
    this.child = spawn(command, { shell: true, stdio: ['pipe', 'pipe', 'inherit'] });
    createInterface({ input: this.child.stdout as Readable }).on('line', (l) => {
      let a: unknown;
      try {
        a = JSON.parse(l);
      } catch {
        return; // not JSON: ignored (an adapter may log on stdout by mistake; its requests then time out)
      }
      if (typeof a !== 'object' || a === null || Array.isArray(a)) return;
      const ans = a as Answer;
      const id = ans['id'];
      if (id === null && this.unread.length > 0) this.unread.shift()?.res(ans);
      else if (typeof id === 'number' && this.pending.has(id)) {
        this.pending.get(id)?.res(ans);
        this.pending.delete(id);
      } else if (typeof id === 'number' && Number.isInteger(id) && id > 0 && id < this.next) {
        return; // a late answer to a request that timed out: already failed
      } else this.unmatched(`an answer without a usable id (the protocol: the request's id, or null for a line the adapter could not read): ${l.slice(0, 200)}`);
    });
    this.child.stdin?.on('error', () => undefined); // a dead adapter: reported through 'exit'
    this.child.on('exit', (code, signal) => {
      this.gone = `the adapter exited (${signal ?? `code ${code}`})`;
      const e = new Error(this.gone);
      for (const w of this.pending.values()) w.rej(e);
      for (const w of this.unread.splice(0)) w.rej(e);
      this.pending.clear();
    });
  }

  /** An answer no outstanding request owns: the oldest outstanding request fails with `why`. */
  private unmatched(why: string): void {
    const raw = this.unread.shift();
    if (raw) return raw.rej(new Error(why));
    const [first] = this.pending;
    if (!first) return; // nothing outstanding: a stray line, which the next request does not take as its answer
    this.pending.delete(first[0]);
    first[1].rej(new Error(why));
  }

  private wait(register: (w: Waiter) => void, cancel: (w: Waiter) => void, what: string): Promise<Answer> {
    return new Promise((res, rej) => {
      if (this.gone) return rej(new Error(this.gone));
      const w: Waiter = {
        res: (a) => {
          clearTimeout(timer);
          res(a);
        },
        rej: (e) => {
          clearTimeout(timer);
          rej(e);
        },
      };
      const timer = setTimeout(() => {
        cancel(w);
        rej(new Error(`adapter did not answer ${what} within 10 s`));
      }, 10_000);
      register(w);
    });
  }

  /** Sends a request (an `id` is added) and waits for its answer. */
  ask(req: Record<string, unknown>): Promise<Answer> {
    const id = this.next++;
    const p = this.wait((w) => this.pending.set(id, w), () => this.pending.delete(id), `request ${id}`);
    if (!this.gone) this.child.stdin?.write(JSON.stringify({ id, ...req }) + '\n');
    return p;
  }

  /** Sends a raw line the adapter cannot read and waits for its answer with `"id": null`. */
  askRaw(line: string): Promise<Answer> {
    const p = this.wait((w) => this.unread.push(w), (w) => {
      const i = this.unread.indexOf(w);
      if (i >= 0) this.unread.splice(i, 1);
    }, `the line ${JSON.stringify(line)}`);
    if (!this.gone) this.child.stdin?.write(line + '\n');
    return p;
  }

  close(): void {
    this.child.stdin?.end();
    this.child.kill();
  }
}

type Answer = Record<string, unknown>;

/**
 * Probes of the adapter protocol itself (conformance/README.md): no requirement of SPEC.md, so
 * they check no ID, but an adapter that fails them fails the run (its other answers cannot be
 * trusted).
 */
const PROTOCOL_PROBES: { name: string; line?: string; req?: Record<string, unknown>; error: string; nullId?: boolean }[] = [
  { name: 'unknown-op', req: { op: 'no-such-op' }, error: 'unsupported' },
  { name: 'not-json', line: '{"id": 1, "op": "hint"', error: 'bad-request', nullId: true },
  { name: 'no-id', line: '{"op": "hint", "suite": 3}', error: 'bad-request', nullId: true },
  { name: 'not-an-object', line: '[1, 2, 3]', error: 'bad-request', nullId: true },
  { name: 'missing-fields', req: { op: 'hint', suite: 3 }, error: 'bad-request' },
  { name: 'bad-hex', req: { op: 'hint', suite: 3, hk: 'zz'.repeat(32), w: 8, L: 2, g: 0 }, error: 'bad-request' },
  { name: 'odd-hex', req: { op: 'frame', hex: '841' }, error: 'bad-request' },
  { name: 'wrong-type', req: { op: 'pack', w: '8', bytes: '00' }, error: 'bad-request' },
  { name: 'wrong-key-length', req: { op: 'chunk_seal', key: '00', sid: '00'.repeat(16), index: 0, plaintext: '' }, error: 'bad-request' },
  { name: 'body-not-an-object', req: { op: 'encode_frame', type: 4, body: [1], auth: 'mac', key: '00'.repeat(32) }, error: 'bad-request' },
];

/** Inputs no decoder may fail on with anything but a reason code ([LM-CBOR-6]): crafted heads, then deterministic noise. */
function garbage(): string[] {
  const crafted = ['', '00', 'ff', 'f97e00', 'c0', '9f', '5b7fffffffffffffff', '9b00000000ffffffff', 'bb00000000ffffffff', '84', '840106a0', '84010640', '8401a040', '8501040000', '7f', '61ff', 'a20000', '818181818181818181818101'];
  const out = [...crafted];
  let x = 0x2545f491;
  const rnd = () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 2 ** 32;
  };
  for (let i = 0; i < 24; i++) {
    const n = 1 + Math.floor(rnd() * 40);
    const head = i % 2 === 0 ? '84' : '';
    out.push(head + Array.from({ length: n }, () => Math.floor(rnd() * 256).toString(16).padStart(2, '0')).join(''));
  }
  return out;
}

/**
 * Citations no request checks: for each vector test, the IDs it cites that none of its requests
 * exercises (a vector's `requirements` must name only what its requests check). Empty when the
 * vector files and the profile agree.
 */
export function uncheckedCitations(): string[] {
  const out: string[] = [];
  for (const file of VECTOR_FILES) {
    const v = JSON.parse(readFileSync(join(vectorsDir(), file), 'utf8')) as VFile;
    for (const g of v.testGroups) {
      for (const t of g.tests) {
        const checked = new Set(requests(file, g, t).flatMap((r) => r.ids ?? t.requirements));
        for (const id of t.requirements) if (!checked.has(id)) out.push(`${file} tc${t.tcId} (${t.comment}): ${id}`);
      }
    }
  }
  return out;
}

const REASONS = new Set(Object.values(REASON_WIRE_NAMES).filter((n) => n !== 'internal'));

/**
 * The profile's tests for `list` and the lint: one per vector file, declaring the IDs its
 * requests check, then the protocol probes (no ID) and the garbage frames ([LM-CBOR-6]).
 */
export function vectorTests(): { id: string; title: string; covers: string[] }[] {
  const out: { id: string; title: string; covers: string[] }[] = [];
  for (const file of VECTOR_FILES) {
    const v = JSON.parse(readFileSync(join(vectorsDir(), file), 'utf8')) as VFile;
    const ids = new Set<string>();
    const ops = new Set<string>();
    let n = 0;
    for (const g of v.testGroups) {
      for (const t of g.tests) {
        for (const r of requests(file, g, t)) {
          n++;
          ops.add(r.req['op'] as string);
          for (const id of r.ids ?? t.requirements) ids.add(id);
        }
      }
    }
    out.push({ id: `vectors/${file.replace('.json', '')}`, title: `${file}: ${n} requests (${[...ops].join(', ')})`, covers: [...ids].sort() });
  }
  out.push({ id: 'vectors/protocol', title: `adapter protocol probes: ${PROTOCOL_PROBES.map((p) => p.name).join(', ')}`, covers: [] });
  out.push({ id: 'vectors/garbage', title: `${garbage().length} garbage frames refused with a reason code`, covers: ['LM-CBOR-6'] });
  return out;
}

/** Runs the vectors profile against an adapter command (run through the shell). */
export async function runVectors(command: string, log: (l: string) => void = () => undefined): Promise<TestResult[]> {
  const adapter = new Adapter(command);
  const results: TestResult[] = [];
  try {
    for (const file of VECTOR_FILES) {
      const v = JSON.parse(readFileSync(join(vectorsDir(), file), 'utf8')) as VFile;
      for (const g of v.testGroups) {
        for (const t of g.tests) {
          for (const { req, expect, ids } of requests(file, g, t)) {
            const t0 = Date.now();
            let message: string | null;
            try {
              const a = await adapter.ask(req);
              message = t.result === 'valid' && a['ok'] !== true ? `adapter error: ${JSON.stringify(a['error'])}${a['detail'] ? ` (${String(a['detail'])})` : ''}` : expect(a);
            } catch (e) {
              message = errorMessage(e);
            }
            // a vector request checks every requirement it exercises, as one comparison
            const covers = ids ?? t.requirements;
            const checks: CheckRecord[] = covers.map((id) => ({ id: id as RequirementId, status: message ? 'fail' : 'pass', ...(message ? { message } : {}) }));
            results.push({ id: `vectors/${file.replace('.json', '')}/${t.tcId}/${req['op'] as string}`, title: t.comment, covers, status: message ? 'fail' : 'pass', ...(message ? { message } : {}), ms: Date.now() - t0, checks });
          }
        }
      }
      log(`${file}: done`);
    }
    for (const p of PROTOCOL_PROBES) {
      const t0 = Date.now();
      let message: string | null;
      try {
        const a = p.line !== undefined ? await adapter.askRaw(p.line) : await adapter.ask(p.req ?? {});
        message = a['ok'] === false && a['error'] === p.error && (p.nullId ? a['id'] === null : typeof a['id'] === 'number') ? null : `want ${JSON.stringify({ id: p.nullId ? null : 'the request\'s', ok: false, error: p.error })}, got ${JSON.stringify(a)}`;
      } catch (e) {
        message = errorMessage(e);
      }
      results.push({ id: `vectors/protocol/${p.name}`, title: `adapter protocol: ${p.name} answered ${p.error}`, covers: [], status: message ? 'fail' : 'pass', ...(message ? { message } : {}), ms: Date.now() - t0, checks: [] });
    }
    for (const [i, hex] of garbage().entries()) {
      const t0 = Date.now();
      let message: string | null;
      try {
        const a = await adapter.ask({ op: 'frame', hex, macKey: '00'.repeat(32) });
        message = a['ok'] === false && typeof a['error'] === 'string' && REASONS.has(a['error']) ? null : `want a reason code of SPEC.md §7.6 (not internal), got ${JSON.stringify(a)}`;
      } catch (e) {
        message = errorMessage(e);
      }
      const checks: CheckRecord[] = [{ id: 'LM-CBOR-6', status: message ? 'fail' : 'pass', ...(message ? { message } : {}) }];
      results.push({ id: `vectors/garbage/${i + 1}/frame`, title: `garbage frame ${hex.slice(0, 24)}${hex.length > 24 ? '…' : ''} refused with a reason code`, covers: ['LM-CBOR-6'], status: message ? 'fail' : 'pass', ...(message ? { message } : {}), ms: Date.now() - t0, checks });
    }
    log('protocol probes: done');
  } finally {
    adapter.close();
  }
  return results;
}
