/**
 * Deliberately broken devices for the proofs that the suite can fail (broken-*.test.ts). Each is
 * the device SDK composed with one phase replaced (`DeviceOptions.phases`) by a variant that
 * breaks one rule; the product carries none of them.
 */
import { FrameType, LmError, Reason, checkRevision, decodeTx, splitShifted } from '@livematrix/spec';
import {
  type ChunkState, type ContentLayer, type FrameState, HintReceiver, type PhaseFactories, RevisionPipeline, type RevisionPolicy, type RevisionedType, defaultPhases, resolveSymbol,
} from '@livematrix/device-sdk/phases';

/** Serves frames of `type` of expired revisions too, and holds the tables and keys of three revisions below the current. */
function servingExpired(type: RevisionedType): RevisionPolicy {
  return {
    keep: 3,
    admit(t, rev, now, p) {
      const rc = checkRevision(rev, now, p);
      return rc === Reason.revExpired && t === type ? null : rc;
    },
  };
}

/** Resolves an ambiguous hint to whatever the symbol holds instead of NACKing it. */
class GuessingReceiver extends HintReceiver {
  protected override ambiguous(fs: FrameState, ch: ChunkState, rel: number): void {
    resolveSymbol(fs, ch, rel, ch.symbols[fs.off + rel] as number);
  }
}

/** Takes the bits of shifted hints with the shift mirrored (w - sh for sh): an off-by-shift bug. */
class MirroredShiftReceiver extends HintReceiver {
  protected override shiftedBits(r: number, w: number, sh: number): { prevLow: number; curHigh: number } {
    return splitShifted(r, w, 2 * sh !== w ? w - sh : sh);
  }
}

/**
 * Phases of a device that also opens a protected job's chunk keys under the hint layer's wrap key
 * when they do not open under the content chain's: a key that a gateway, which holds no licence,
 * can make ([LM-PROT-2]). The receive phase is the SDK's; it is only watched, for the session's
 * revision pipeline (the hint layer's keys).
 */
function unwrappingUnderHintLayer(): Partial<PhaseFactories> {
  let pipeline: RevisionPipeline | undefined;
  return {
    receive(ctx) {
      pipeline = ctx.tables instanceof RevisionPipeline ? ctx.tables : undefined; // a session composes receive, then delivery
      return defaultPhases.receive(ctx);
    },
    delivery(ctx) {
      const hintLayer = pipeline;
      let rev = 0;
      const content: ContentLayer = {
        ...ctx.content,
        unwrap(wk, sid, index, wrapped) {
          try {
            return ctx.content.unwrap(wk, sid, index, wrapped);
          } catch (e) {
            const hk = ctx.tx.body.jid ? hintLayer?.keys(rev) : undefined;
            if (!hk) throw e;
            return ctx.content.unwrap(hk.wk, sid, index, wrapped);
          }
        },
      };
      // the delivery phase asks for a KEY's revision keys just before it unwraps the KEY
      const keys = (r: number) => {
        rev = r;
        return ctx.keys(r);
      };
      return defaultPhases.delivery({ ...ctx, content, keys });
    },
  };
}

export const brokenDevices = {
  /** resolves HINTS of revisions older than c - 1 (and keeps their tables) */
  acceptExpiredRevision: { revisions: () => servingExpired(FrameType.HINTS) },
  /** keeps the keys of expired revisions and accepts KEY frames stamped with them */
  keepExpiredKeys: { revisions: () => servingExpired(FrameType.KEY) },
  /** accepts transactions whose operator signature does not verify */
  skipTxSignature: {
    offer: () => {
      const checks = defaultPhases.offer();
      return {
        ...checks,
        transaction(bytes, ctx) {
          try {
            return checks.transaction(bytes, ctx);
          } catch (e) {
            if (e instanceof LmError && e.code === Reason.txSignature) return decodeTx(bytes);
            throw e;
          }
        },
      };
    },
  },
  /** reports bytes as consumed as soon as they are decrypted, before the consumer takes them */
  ackBeforeConsume: {
    acks: (ctx) => defaultPhases.acks({
      ...ctx,
      progress() {
        const p = ctx.progress();
        return { ...p, consumed: Math.max(p.consumed, p.delivered - p.from) };
      },
    }),
  },
  /** does not check the zero padding of a chunk's last symbol */
  ignorePadding: {
    content: () => {
      const layer = defaultPhases.content();
      return {
        ...layer,
        open(c) {
          const m = c.symbols.length;
          const pad = m * c.w - 8 * c.ctlen;
          if (pad > 0) c.symbols[m - 1] = ((c.symbols[m - 1] as number) >>> pad) << pad;
          return layer.open(c);
        },
      };
    },
  },
  /** resolves an ambiguous hint to a guess instead of NACKing it */
  noAmbiguityNack: { receive: (ctx) => new GuessingReceiver(ctx) },
  /** takes the bits of shifted hints with the shift mirrored */
  misreadShifted: { receive: (ctx) => new MirroredShiftReceiver(ctx) },
  /** never checks the consumer's pace against the transaction ([LM-ALARM-2]) */
  skipRateCheck: { pace: () => ({ start: () => undefined, check: () => undefined }) },
  /** opens a protected job's chunk keys under the hint layer's wrap key too, which the gateway holds ([LM-PROT-2]) */
  unwrapUnderHintLayer: unwrappingUnderHintLayer(),
} satisfies Record<string, Partial<PhaseFactories>>;

export type BrokenDevice = keyof typeof brokenDevices;
