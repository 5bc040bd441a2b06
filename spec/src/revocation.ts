/**
 * @module revocation
 * Operator-signed revocation lists (SPEC.md §11.5, [LM-REVOKE-1]..[LM-REVOKE-4]): REVOKE frames
 * published retained on the fleet's revocation topic, and the state a device or gateway keeps of
 * the newest one it verified.
 */
import { equalBytes, toHex } from './bytes.js';
import { LmError, Reason } from './errors.js';
import type { RevokeBody } from './frame-schemas.js';
import { type AnyFrame, FrameType, decodeFrame, encodeFrame, verifyFrame } from './frames.js';
import type { TxBody } from './tx.js';

/** How long a list holds when the operator does not say: one hour ([LM-REVOKE-1]). */
export const REVOCATION_PERIOD_MS = 3_600_000;

/** What an operator revokes. */
export interface RevocationRequest {
  seq: number;
  time: number;
  /** when the next list is due; after it this one is stale ([LM-REVOKE-3]) */
  next: number;
  txs?: Uint8Array[];
  devices?: string[];
  operators?: Uint8Array[];
  operatorSecret: Uint8Array;
  operatorPublic: Uint8Array;
}

/** Makes and signs a REVOKE frame with the operator's key ([LM-REVOKE-1]). */
export function signRevocation(r: RevocationRequest): Uint8Array {
  if (r.next <= r.time) throw new LmError(Reason.schema, 'a revocation list must name a next update after its time ([LM-REVOKE-1])');
  const body: RevokeBody = { seq: r.seq, time: r.time, next: r.next, txs: r.txs ?? [], devices: r.devices ?? [], operators: r.operators ?? [], opk: r.operatorPublic };
  return encodeFrame(FrameType.REVOKE, body, { kind: 'sig', secretKey: r.operatorSecret });
}

/**
 * Decodes and verifies a REVOKE frame: signed by the operator key it names, a key the verifier
 * trusts that the list does not itself revoke, with `next` after `time` ([LM-REVOKE-1]). Throws LmError.
 */
export function verifyRevocation(bytes: Uint8Array, trustedOperators: readonly Uint8Array[]): RevokeBody {
  const f: AnyFrame = decodeFrame(bytes);
  if (f.type !== FrameType.REVOKE) throw new LmError(Reason.schema, `expected a REVOKE frame, got type ${f.type}`);
  const b = f.body;
  if (!trustedOperators.some((k) => equalBytes(k, b.opk))) throw new LmError(Reason.txOperator, 'revocation list signed by an operator key that is not trusted here ([LM-REVOKE-1])');
  verifyFrame(f, { signer: b.opk });
  if (b.operators.some((k) => equalBytes(k, b.opk))) throw new LmError(Reason.txRevoked, 'revocation list signed by a key it revokes ([LM-REVOKE-1])');
  if (b.next <= b.time) throw new LmError(Reason.schema, 'revocation list: next update is not after its time ([LM-REVOKE-1])');
  return b;
}

/** The newest verified revocation list a device or gateway holds ([LM-REVOKE-2], [LM-REVOKE-3]). */
export class Revocations {
  private list: RevokeBody | undefined;
  private bytes: Uint8Array | undefined;

  /** The list held, as its REVOKE frame. */
  get current(): Uint8Array | undefined {
    return this.bytes;
  }

  get seq(): number {
    return this.list?.seq ?? 0;
  }

  /**
   * A REVOKE frame's list when it verifies and is newer than the one held, without taking it: an
   * older or equal `seq` is a rollback and gives undefined ([LM-REVOKE-2]). Throws LmError when it
   * does not verify. A verifier persists the list, then calls {@link take}.
   */
  check(bytes: Uint8Array, trustedOperators: readonly Uint8Array[]): RevokeBody | undefined {
    const b = verifyRevocation(bytes, trustedOperators);
    return this.list && b.seq <= this.list.seq ? undefined : b;
  }

  /** Holds a list {@link check} returned. */
  take(bytes: Uint8Array, b: RevokeBody): void {
    this.list = b;
    this.bytes = bytes.slice();
  }

  /** check() and take() at once, for a verifier that keeps nothing on disk. */
  offer(bytes: Uint8Array, trustedOperators: readonly Uint8Array[]): RevokeBody | undefined {
    const b = this.check(bytes, trustedOperators);
    if (b) this.take(bytes, b);
    return b;
  }

  /**
   * Why a transaction must be refused under the list held, or undefined ([LM-REVOKE-3]): the
   * transaction, its device or its operator key revoked, or the list stale (past `next`). A
   * verifier that never received a list refuses nothing on its account.
   */
  refusal(tx: TxBody, txh: Uint8Array, now: number): LmError | undefined {
    const l = this.list;
    if (!l) return undefined;
    if (now > l.next) return new LmError(Reason.txRevoked, `revocation list ${l.seq} is stale since ${new Date(l.next).toISOString()}: no transaction is honoured until a newer one arrives ([LM-REVOKE-3])`);
    if (l.txs.some((h) => equalBytes(h, txh))) return new LmError(Reason.txRevoked, `transaction ${toHex(txh).slice(0, 16)} is revoked (list ${l.seq}) ([LM-REVOKE-3])`);
    if (l.devices.includes(tx.device)) return new LmError(Reason.txRevoked, `device "${tx.device}" is revoked (list ${l.seq}) ([LM-REVOKE-3])`);
    if (l.operators.some((k) => equalBytes(k, tx.opk))) return new LmError(Reason.txRevoked, `the transaction's operator key is revoked (list ${l.seq}) ([LM-REVOKE-3])`);
    return undefined;
  }
}
