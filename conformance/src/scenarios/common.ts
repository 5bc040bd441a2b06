/**
 * @module scenarios/common
 * What the device profile scenarios share: their context and shape, and the steps most of them
 * take (open a session, expect a refusal, deliver and check the receipt, find a NACK).
 */
import { type CborValue, FRAME_QOS, FRAME_TYPE_NAMES, TOPIC_FRAMES, decodeCbor, digest, encodeCbor, equalBytes, errorMessage, minHintLength, parseTopic, verifyFrame } from '@livematrix/spec';
import { CheckFailed } from '../checks.js';
import type { Checks } from '../checks.js';
import { R, type RequirementId } from '../generated/requirements.js';
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
  /** the scenario's checks: every check names the requirement it checks */
  checks: Checks;
  /** restarts the device under test (--restart-cmd); scenarios that need it declare `needs: 'restart'` */
  restart?: () => Promise<void>;
  /** ms between the device under test's STATUS frames when nothing changes (--status-interval; SPEC §10.2, [LM-STATE-1]) */
  statusInterval: number;
}

export interface Scenario {
  id: string;
  title: string;
  covers: readonly RequirementId[];
  /** what the run must provide: 'restart' runs only with --restart-cmd; 'long' (over a minute) only with --long */
  needs?: 'restart' | 'long';
  run(ctx: Ctx): Promise<void>;
}

/**
 * A guard that can only fail `id` (a time limit while waiting for what `id` requires): it records
 * nothing while it holds, so waiting is never counted as a passed check.
 */
export function failUnless(ctx: Ctx, id: RequirementId, cond: unknown, msg: string): asserts cond {
  if (cond) return;
  ctx.checks.fail(id, msg);
  throw new CheckFailed(id, msg);
}

/** A check of requirement `id`: PASS when `cond` holds, else FAIL with `msg`, and the scenario stops. */
export function check(ctx: Ctx, id: RequirementId, cond: unknown, msg: string): asserts cond {
  ctx.checks.check(id, cond, msg);
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

export async function refusedWith(ctx: Ctx, id: RequirementId, code: number, make: (t: Tester) => { tx: Parameters<Tester['offer']>[1]; licence: Uint8Array; params?: Parameters<Tester['offer']>[0] }): Promise<void> {
  const t = ctx.tester;
  const m = make(t);
  const r = await t.offer(m.params ?? t.params({ w: 16 }), m.tx, m.licence, { waitReady: false });
  check(ctx, id, 'refused' in r, `device accepted the offer; expected ERROR ${code}`);
  check(ctx, id, r.refused.code === code, `device refused with ${r.refused.code} (${r.refused.detail}); expected ${code}`);
}

/**
 * Delivers `data` in session `s` and checks the device's RECEIPT ([LM-DLV-7]: its byte count,
 * digest and session, signed by the device key; [LM-PROT-4] for a protected job's keyed digest).
 * An exact delivery is also the check of every requirement in `ids` it exercises (hints, packing,
 * keys, chunk encryption, acknowledgements ...): they pass together, or fail together when the
 * delivery fails.
 */
export async function deliverExact(ctx: Ctx, s: Session, ids: readonly RequirementId[] = [], data = ctx.data, o: Parameters<Session['deliver']>[1] = {}): Promise<void> {
  let receipt: Awaited<ReturnType<Session['deliver']>>['receipt'];
  try {
    ({ receipt } = await s.deliver(data, o));
  } catch (e) {
    const msg = `the delivery of ${data.length} bytes failed: ${errorMessage(e)}`;
    for (const id of ids) ctx.checks.fail(id, msg);
    throw new CheckFailed(ids[0] ?? R.LM_DLV_7, msg);
  }
  check(ctx, R.LM_DLV_7, receipt.bytes === data.length, `receipt says ${receipt.bytes} bytes; sent ${data.length}`);
  if (s.tx.body.jid) {
    // a protected job: the digest is keyed by the licence, so that a candidate file cannot be confirmed ([LM-PROT-4])
    check(ctx, R.LM_PROT_4, equalBytes(receipt.digest, s.tx.body.jd), 'receipt digest differs from the transaction\'s keyed digest of the job ([LM-PROT-4])');
    check(ctx, R.LM_PROT_4, !equalBytes(receipt.digest, digest(data)), 'receipt carries the plain SHA-256 of a protected job: anyone with the file can confirm it is printing ([LM-PROT-4])');
  } else check(ctx, R.LM_DLV_7, equalBytes(receipt.digest, digest(data)), 'receipt digest differs from SHA-256 of the job');
  check(ctx, R.LM_DLV_7, equalBytes(receipt.sid, s.sid), 'receipt names another session');
  check(ctx, R.LM_DLV_7, s.receiptRaw !== undefined, 'no receipt frame');
  let signed = true;
  try {
    verifyFrame(s.receiptRaw, { signer: ctx.tester.o.devicePublic });
  } catch {
    signed = false;
  }
  check(ctx, R.LM_DLV_7, signed, 'receipt is not signed by the device key');
  for (const id of ids) ctx.checks.pass(id);
}

/**
 * [LM-MQTT-7], over MQTT 5 only: every frame the device published carries Content Type
 * `application/livematrix+cbor`. Over MQTT 3.1.1 there is no Content Type, and nothing is checked.
 */
export function checkContentType(ctx: Ctx): void {
  if (ctx.tester.o.protocolVersion !== 5) return;
  const frames = ctx.tester.inbound;
  const without = frames.filter((x) => x.contentType !== 'application/livematrix+cbor');
  check(ctx, R.LM_MQTT_7, frames.length > 0 && without.length === 0, `${without.length} of ${frames.length} frames of the device came without Content Type application/livematrix+cbor (first: ${JSON.stringify(without[0]?.contentType ?? null)})`);
}

/**
 * [LM-MQTT-1]: every frame the device published reached the suite on the topic that carries its
 * type (its state topic or its outbound topic) at the QoS of SPEC.md §7.2 (the suite subscribes at
 * QoS 1, so a frame arrives at the QoS it was published with).
 */
export function checkTopicsAndQos(ctx: Ctx): void {
  const frames = ctx.tester.inbound;
  check(ctx, R.LM_MQTT_1, frames.length > 0, 'the device sent no frame to check');
  for (const { f, topic, qos } of frames) {
    const kind = parseTopic(topic)?.kind;
    const name = FRAME_TYPE_NAMES[f.type];
    check(ctx, R.LM_MQTT_1, (kind === 'deviceState' || kind === 'deviceOut') && TOPIC_FRAMES[kind].has(f.type), `the device published ${name} on ${topic}, which does not carry it`);
    check(ctx, R.LM_MQTT_1, qos === FRAME_QOS[f.type], `the device published ${name} at QoS ${qos}; SPEC.md §7.2 says QoS ${FRAME_QOS[f.type]}`);
  }
}

/**
 * [LM-CBOR-1]: every frame the device sent so far is in the deterministic encoding: decoded and
 * encoded again, it gives the same bytes (the device's own encoder made them).
 */
export function checkDeterministic(ctx: Ctx): void {
  const frames = ctx.tester.inbound;
  check(ctx, R.LM_CBOR_1, frames.length > 0, 'the device sent no frame to check');
  for (const { raw } of frames) {
    let again: Uint8Array | undefined;
    try {
      again = encodeCbor(decodeCbor(raw) as CborValue);
    } catch {
      again = undefined;
    }
    check(ctx, R.LM_CBOR_1, again !== undefined && equalBytes(again, raw), `a ${raw.length}-byte frame of the device is not in the deterministic encoding (RFC 8949 §4.2.1): re-encoded it differs`);
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
