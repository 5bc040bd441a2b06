/**
 * @module session
 * One session of a stream (SPEC.md §7.3): its offer, then, once the device accepts, its
 * delivery; its liveness ([LM-DLV-13]) and pause state ([LM-DLV-9]). A device that restarted
 * ([LM-DLV-10]) gets a new Session: nothing of the old one carries over but the stream's totals.
 */
import { type HelloBody, type SessionParams, type SignedTicket, acceptFault, toLmError } from '@livematrix/spec';
import { type Cancel, noTimer } from './clock.js';
import { Delivery, type DeliveryHost, resumeFailure } from './delivery.js';
import { DeviceOfflineError } from './errors.js';
import { Liveness } from './liveness.js';
import { type AcceptFrame, type OfferHost, Offering } from './offer.js';

/** What a session needs from its stream. */
export interface SessionHost extends OfferHost, DeliveryHost {
  /** the device accepted an OFFER of this session id, under its ticket if the OFFER carried one ([LM-LIC-4]) */
  accepted(sid: Uint8Array, ticket: SignedTicket | undefined): void;
}

/** The shortest tick of a session's timer (ms). */
const MIN_TICK = 50;

export class Session {
  readonly offering: Offering;
  readonly liveness: Liveness;
  /** CONTROL `pause` stops new HINTS until `resume` ([LM-DLV-9]) */
  paused = false;
  /** the delivery, once the device accepted */
  private accepted: Delivery | undefined;
  private stopTick: Cancel = noTimer;

  constructor(
    private readonly host: SessionHost,
    /** a resumed job ([LM-DLV-10]) */
    resume: boolean,
  ) {
    this.offering = new Offering(host, resume);
    this.liveness = new Liveness(host.device, () => host.clock.now(), {
      silence: host.opts.deviceTimeout ?? 20_000,
      grace: host.opts.offlineGrace ?? 10_000,
    });
  }

  get sid(): Uint8Array {
    return this.offering.sid;
  }

  get params(): SessionParams {
    return this.offering.params;
  }

  /** The HELLO this session's OFFER answered. */
  get hello(): HelloBody | undefined {
    return this.offering.hello;
  }

  get delivery(): Delivery | undefined {
    return this.accepted;
  }

  /** Offers the job to the device that sent `hello`. */
  offer(hello: HelloBody): Promise<void> {
    return this.offering.send(hello);
  }

  /** The device accepted: derive the keys ([LM-FRAME-7]), serve its resume point ([LM-DLV-10]), start the timer. */
  accept(f: AcceptFrame, raw: Uint8Array): void {
    if (this.accepted) return;
    let d: Delivery;
    let ticket: SignedTicket | undefined;
    try {
      const a = this.offering.accept(f, raw);
      ticket = a.ticket;
      d = new Delivery(this.host, this.sid, this.params, a, () => this.paused);
    } catch (e) {
      return this.host.fail(toLmError(e));
    }
    this.accepted = d;
    this.host.accepted(this.sid, ticket);
    this.liveness.accepted();
    // [LM-FRAME-18], [LM-FRAME-19]: the resume point and the window fit the session's chunks
    const failure = acceptFault(f.body, this.params, this.host.source.size) ?? resumeFailure(f.body.from ?? 0, this.params.chunk, this.host.source);
    if (failure) return this.host.fail(failure);
    this.stopTick = this.host.clock.every(Math.max(MIN_TICK, Math.floor(this.params.period / 4)), () => this.tick());
  }

  /** An authenticated frame of the device ([LM-DLV-13]). */
  heard(): void {
    this.liveness.heard();
  }

  /** CONTROL pause or resume, from either side ([LM-DLV-9]). */
  pause(paused: boolean): void {
    this.paused = paused;
    if (!paused) this.host.kick();
  }

  private tick(): void {
    if (this.host.halted()) return;
    // [LM-DLV-13]: a device that went offline and stayed away, or fell silent, ends the stream
    const gone = this.liveness.check();
    if (gone) return this.host.fail(gone, !(gone instanceof DeviceOfflineError));
    this.accepted?.tick();
  }

  /** Stops the timers and erases every key of the session. */
  close(): void {
    this.stopTick();
    this.offering.close();
    this.accepted?.close();
  }
}
