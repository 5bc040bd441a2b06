/**
 * @module phases
 * The phases a device session is built from, one protocol phase each, and the factory that
 * makes them. `DeviceOptions.phases` replaces any of them for every session of a device:
 * dependency injection of whole phase implementations, for instrumentation and for test kits
 * that build deliberately broken devices (the conformance suite proves with them that it fails
 * what it should). A replaced phase that breaks the protocol makes a non-conforming device.
 *
 * @example
 * // a device whose ACKs report decrypted bytes as consumed (breaks [LM-DLV-4])
 * const lying: Partial<PhaseFactories> = {
 *   acks: (ctx) => defaultPhases.acks({ ...ctx, progress: () => ({ ...ctx.progress(), consumed: ctx.progress().delivered }) }),
 * };
 * await Device.start({ ...options, phases: lying });
 */
import { type AckContext, AckLedger } from './acks.js';
import { type ContentLayer, Delivery, type DeliveryContext, type RateAlarm, contentLayer, rateAlarm } from './delivery.js';
import { type OfferChecks, offerChecks } from './offer.js';
import { HintReceiver, type ReceiveContext, type ReceivePhase } from './receive.js';
import { type RevisionPolicy, revisionPolicy } from './revisions.js';
import { type TelemetryContext, TelemetrySender } from './telemetry.js';
import { Liveness, type LivenessOptions, TimeSync, type TimeSyncOptions } from './timesync.js';

/** The public members of a phase class: what another implementation must provide. */
export type PhaseOf<T> = { [K in keyof T]: T[K] };

export type TimeSyncPhase = PhaseOf<TimeSync>;
export type LivenessPhase = PhaseOf<Liveness>;
export type DeliveryPhase = PhaseOf<Delivery>;
export type AckPhase = PhaseOf<AckLedger>;
export type TelemetryPhase = PhaseOf<TelemetrySender>;

/** One factory per phase; a session calls each once, so its state is fresh per session. */
export interface PhaseFactories {
  /** the checks of an OFFER (offer.ts: [LM-FRAME-6], [LM-TX-1]..[LM-TX-7], [LM-PARAM-1], [LM-CAP-2]) */
  offer(): OfferChecks;
  /** revisions served and held (revisions.ts: [LM-REV-2], [LM-REV-3]) */
  revisions(): RevisionPolicy;
  /** time sync rounds (timesync.ts: [LM-TIME-1]..[LM-TIME-3]) */
  timeSync(o: TimeSyncOptions): TimeSyncPhase;
  /** heartbeat and silence (timesync.ts: [LM-DLV-13]) */
  liveness(o: LivenessOptions): LivenessPhase;
  /** HINTS to symbols (receive.ts: [LM-DLV-1], [LM-DLV-11], [LM-HINT-3], [LM-HINT-4]) */
  receive(ctx: ReceiveContext): ReceivePhase;
  /** key unwrap, unpacking and chunk decryption (delivery.ts: [LM-AEAD-1], [LM-AEAD-2], [LM-AEAD-4], [LM-PACK-3]) */
  content(): ContentLayer;
  /** keys, in-order delivery, consumption, end digest (delivery.ts: [LM-DLV-4], [LM-DLV-6]) */
  delivery(ctx: DeliveryContext): DeliveryPhase;
  /** the consumer's pace against the transaction (delivery.ts: [LM-ALARM-2]) */
  pace(limits: { rate: number; burst: number; grace: number }): RateAlarm;
  /** ACK and NACK (acks.ts: [LM-DLV-2], [LM-DLV-4], [LM-DLV-5]) */
  acks(ctx: AckContext): AckPhase;
  /** telemetry under the d2g chain (telemetry.ts: [LM-TEL-1]) */
  telemetry(ctx: TelemetryContext): TelemetryPhase;
}

/** The phases of the spec. */
export const defaultPhases: Readonly<PhaseFactories> = Object.freeze({
  offer: offerChecks,
  revisions: revisionPolicy,
  timeSync: (o: TimeSyncOptions) => new TimeSync(o),
  liveness: (o: LivenessOptions) => new Liveness(o),
  receive: (ctx: ReceiveContext) => new HintReceiver(ctx),
  content: contentLayer,
  delivery: (ctx: DeliveryContext) => new Delivery(ctx),
  pace: rateAlarm,
  acks: (ctx: AckContext) => new AckLedger(ctx),
  telemetry: (ctx: TelemetryContext) => new TelemetrySender(ctx),
});

/** The default phases with those given replaced (an undefined entry keeps the default). */
export function phaseFactories(replaced: Partial<PhaseFactories> = {}): PhaseFactories {
  const pick = <K extends keyof PhaseFactories>(k: K): PhaseFactories[K] => replaced[k] ?? defaultPhases[k];
  return {
    offer: pick('offer'), revisions: pick('revisions'), timeSync: pick('timeSync'), liveness: pick('liveness'), receive: pick('receive'),
    content: pick('content'), delivery: pick('delivery'), pace: pick('pace'), acks: pick('acks'), telemetry: pick('telemetry'),
  };
}

// what a phase implementation needs: the contexts, the default implementations, their parts
export { type Clock, type Cancel, type Timers, systemTimers } from './clock.js';
export type { ControlOpId, HintsFrame, KeyFrame, OfferFrame, RevisionedType, TimeRespFrame } from './frames.js';
export { type RevisionPolicy, revisionPolicy } from './revisions.js';
export { type OfferChecks, offerChecks, PerSecondLimit, TAKEOVER_SILENCE_MS } from './offer.js';
export { Liveness, type LivenessOptions, TimeSync, type TimeSyncOptions, HEARTBEAT_MS, RESYNC_MS, SYNC_ROUNDS } from './timesync.js';
export { HintReceiver, resolveSymbol, type ChunkState, type FrameState, type HintTable, type ReceiptLedger, type ReceiveContext, type ReceivePhase, type TableSource } from './receive.js';
export { Delivery, contentLayer, rateAlarm, type ChunkSource, type ContentLayer, type DeliveryContext, type KeyOutcome, type RateAlarm, type RateExcess, type SealedChunk } from './delivery.js';
export { ACK_LIST_MAX, AckLedger, ackBodies, type AckContext, type AckProgress, type Nack } from './acks.js';
export { TelemetrySender, type TelemetryContext } from './telemetry.js';
export { RevisionPipeline, type PipelineOptions, type BuiltEvent, type PipelineEvents } from './pipeline.js';
