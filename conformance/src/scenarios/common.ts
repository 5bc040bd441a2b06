/**
 * @module scenarios/common
 * What the device profile scenarios share: their context and shape, and the steps most of them
 * take (open a session, expect a refusal, deliver and check the receipt, find a NACK).
 */
import { digest, equalBytes, minHintLength, verifyFrame } from '@livematrix/spec';
import type { RequirementId } from '../generated/requirements.js';
import type { Session } from '../session.js';
import type { Tester } from '../tester.js';
import { until } from '../wait.js';

export { sleep } from '../wait.js';

export interface Ctx {
  tester: Tester;
  /** sample G-code the scenarios stream */
  data: Uint8Array;
  /** most bytes per second the device under test's consumer takes (its declared machine rate) */
  consumeRate: number;
  log: (line: string) => void;
}

export interface Scenario {
  id: string;
  title: string;
  covers: readonly RequirementId[];
  run(ctx: Ctx): Promise<void>;
}

export function check(cond: unknown, msg: string): asserts cond {
  if (!cond) throw new Error(msg);
}

/**
 * Opens a session. Hints are two bytes longer than the minimum unless a scenario asks for the
 * minimum: natural ambiguities then practically never occur (2^-24 per symbol), so a scenario
 * fails only for what it aims at.
 */
export async function open(ctx: Ctx, w: number, o: { suite?: 1 | 2 | 3; period?: number; r0Back?: number; timeShift?: number; L?: number; data?: Uint8Array; tx?: { rate: number; burst: number } } = {}): Promise<Session> {
  const t = ctx.tester;
  const params = t.params({ w, L: o.L ?? minHintLength(w) + 2, ...(o.suite ? { suite: o.suite } : {}), ...(o.period ? { period: o.period } : {}) });
  if (o.r0Back) params.r0 -= o.r0Back;
  const { tx, licence } = t.tx(o.data ?? ctx.data, o.tx ?? {});
  const s = await t.offer(params, tx, licence, o.timeShift !== undefined ? { timeShift: o.timeShift } : {});
  if ('refused' in s) throw new Error(`device refused a valid offer: ${s.refused.code} ${s.refused.detail}`);
  return s;
}

export async function refusedWith(ctx: Ctx, code: number, make: (t: Tester) => { tx: Parameters<Tester['offer']>[1]; licence: Uint8Array; params?: Parameters<Tester['offer']>[0] }): Promise<void> {
  const t = ctx.tester;
  const m = make(t);
  const r = await t.offer(m.params ?? t.params({ w: 16 }), m.tx, m.licence, { waitReady: false });
  if (!('refused' in r)) throw new Error(`device accepted the offer; expected ERROR ${code}`);
  check(r.refused.code === code, `device refused with ${r.refused.code} (${r.refused.detail}); expected ${code}`);
}

export async function deliverExact(ctx: Ctx, s: Session, data = ctx.data, o: Parameters<Session['deliver']>[1] = {}): Promise<void> {
  const { receipt } = await s.deliver(data, o);
  check(receipt.bytes === data.length, `receipt says ${receipt.bytes} bytes; sent ${data.length}`);
  if (s.tx.body.jid) {
    // a protected job: the digest is keyed by the licence, so that a candidate file cannot be confirmed ([LM-PROT-4])
    check(equalBytes(receipt.digest, s.tx.body.jd), 'receipt digest differs from the transaction\'s keyed digest of the job ([LM-PROT-4])');
    check(!equalBytes(receipt.digest, digest(data)), 'receipt carries the plain SHA-256 of a protected job: anyone with the file can confirm it is printing ([LM-PROT-4])');
  } else check(equalBytes(receipt.digest, digest(data)), 'receipt digest differs from SHA-256 of the job');
  check(equalBytes(receipt.sid, s.sid), 'receipt names another session');
  check(s.receiptRaw !== undefined, 'no receipt frame');
  try {
    verifyFrame(s.receiptRaw, { signer: ctx.tester.o.devicePublic });
  } catch {
    throw new Error('receipt is not signed by the device key');
  }
}

/** The first NACK of seq (with that reason, when given). */
export function nackOf(s: Session, seq: number, reason?: number): [number, number, number[]] | undefined {
  for (const a of s.acks) for (const n of a.nack) if (n[0] === seq && (reason === undefined || n[1] === reason)) return n;
  return undefined;
}

/** A delivery running beside the scenario's checks: awaited later, never left unhandled if a check fails first. */
export function background<T>(p: Promise<T>): Promise<T> {
  p.catch(() => undefined);
  return p;
}

/** Waits until the session is `n` revisions past its start, so older revisions exist. */
export async function age(s: Session, n: number): Promise<number> {
  const start = s.rev();
  await until(() => s.rev() >= start + n, (n + 2) * s.params.period + 1000, `${n} revisions`);
  return s.rev();
}
