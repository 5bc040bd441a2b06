/**
 * @module telemetry
 * Machine status to the gateway as hints under the device-to-gateway chain ([LM-TEL-1]).
 */
import { type Ratchet, type RevisionKeys, type SessionParams, type TelemetryBody, minHintLength, pack, sealTelemetry, senderRevision, wipe } from '@livematrix/spec';
import type { Kernel } from '@livematrix/spec/engine';
import type { Clock } from './clock.js';
import { NoSessionError } from './errors.js';

export interface TelemetryContext {
  readonly sid: Uint8Array;
  readonly params: SessionParams;
  /** the session's d2g ratchet; the sender owns it from here and destroys it */
  readonly chain: Ratchet;
  /** the device's hashing kernel (hints of a few symbols need no table) */
  readonly kernel: Pick<Kernel, 'setKey' | 'hintList' | 'wipe'>;
  readonly clock: Clock;
}

export class TelemetrySender {
  private keys: RevisionKeys | undefined;
  private seq = 0;
  private destroyed = false;

  constructor(private readonly ctx: TelemetryContext) {}

  /** The TELEMETRY body of a payload (a CBOR map, [LM-TEL-1]) at the current revision. */
  seal(payload: Uint8Array): TelemetryBody {
    if (this.destroyed) throw new NoSessionError('telemetry of an ended session');
    const { sid, params: p, kernel } = this.ctx;
    const k = this.keysNow();
    const seq = this.seq++;
    const ct = sealTelemetry(k.wk, sid, seq, payload);
    kernel.setKey(k.hk);
    const hints = kernel.hintList(p.suite, p.wt, minHintLength(p.wt), pack(ct, p.wt));
    kernel.wipe();
    return { sid, seq, rev: k.revision, ctlen: ct.length, hints };
  }

  /** Erases the chain and its keys ([LM-KEY-4]). */
  destroy(): void {
    this.destroyed = true;
    this.ctx.chain.destroy();
    if (this.keys) wipe(this.keys.hk, this.keys.wk);
    this.keys = undefined;
  }

  private keysNow(): RevisionKeys {
    const rev = senderRevision(this.ctx.clock(), this.ctx.params);
    if (!this.keys || rev > this.keys.revision) {
      // the chain only moves forward: a clock that reads an earlier revision keeps the current keys
      if (this.keys) wipe(this.keys.hk, this.keys.wk);
      this.keys = this.ctx.chain.keysFor(Math.max(rev, this.ctx.chain.position));
    }
    return this.keys;
  }
}
