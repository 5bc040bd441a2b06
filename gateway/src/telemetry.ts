/**
 * @module telemetry
 * Telemetry in (SPEC.md §7.5): the device's TELEMETRY frames are hints under the d2g chain; the
 * gateway inverts them with its engine, opens the payload and hands it on as a plain object.
 * Telemetry that fails is dropped without ending the session ([LM-TEL-2]).
 */
import {
  type CborValue, type Ratchet, type RevisionKeys, type SessionParams, type TelemetryBody, checkRevision, decodeCbor, minHintLength, openTelemetry, unpack, wipe,
} from '@livematrix/spec';
import type { MatrixEngine } from '@livematrix/spec/engine';

export interface TelemetryInOptions {
  readonly sid: Uint8Array;
  readonly params: SessionParams;
  /** the d2g ratchet; telemetry owns it from now on */
  readonly d2g: Ratchet;
  readonly engine: MatrixEngine;
  now(): number;
}

/** The telemetry of one session. */
export class TelemetryIn {
  /** d2g keys of the revisions telemetry may still come in ({c − 1, c}) */
  private readonly keys = new Map<number, RevisionKeys>();

  constructor(private readonly o: TelemetryInOptions) {}

  /**
   * Opens a TELEMETRY frame and hands its payload to `deliver`. Telemetry that fails, a failing
   * `deliver` included, is dropped ([LM-TEL-2]).
   */
  async receive(b: TelemetryBody, deliver: (payload: Record<string, unknown>) => void): Promise<void> {
    const p = this.o.params;
    if (checkRevision(b.rev, this.o.now(), p) !== null) return; // [LM-TEL-2]
    const k = this.keysFor(b.rev);
    if (!k) return;
    try {
      const syms = await this.o.engine.scan(p.suite, p.wt, minHintLength(p.wt), k.hk, b.hints); // the gateway inverts the d2g hints
      if (syms.some((s) => s < 0)) return;
      const ct = unpack(syms, p.wt, b.ctlen);
      const payload = decodeCbor(openTelemetry(k.wk, this.o.sid, b.seq, ct));
      if (!(payload instanceof Map)) return;
      deliver(Object.fromEntries([...payload.entries()].map(([key, v]) => [String(key), plain(v)])));
    } catch {
      // [LM-TEL-2]: telemetry that fails is dropped without ending the session
    }
  }

  /** Keys of revision `rev`, keeping those of the revision before; undefined when its chain key is gone. */
  private keysFor(rev: number): RevisionKeys | undefined {
    const known = this.keys.get(rev);
    if (known) return known;
    if (rev < this.o.d2g.position) return undefined;
    const k = this.o.d2g.keysFor(rev);
    this.keys.set(rev, k);
    for (const [r, old] of this.keys) if (r < rev - 1) {
      wipe(old.hk, old.wk);
      this.keys.delete(r);
    }
    return k;
  }

  /** Erases the revision keys and the d2g chain ([LM-KEY-5]). */
  wipe(): void {
    for (const k of this.keys.values()) wipe(k.hk, k.wk);
    this.keys.clear();
    this.o.d2g.destroy();
  }
}

/** A CBOR value as plain JavaScript: maps become objects with text keys. */
export function plain(v: CborValue): unknown {
  if (v instanceof Map) return Object.fromEntries([...v.entries()].map(([k, x]) => [String(k), plain(x)]));
  if (Array.isArray(v)) return v.map(plain);
  return v;
}
