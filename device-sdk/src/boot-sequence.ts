/**
 * @module boot-sequence
 * The boot sequence `bd` of each MQTT connection ([LM-STATE-3], Sparkplug's bdSeq): greater than
 * that of every earlier connection of the device, restarts included, and known before the CONNECT,
 * since the Last Will that carries it is set there. Numbers are reserved in blocks, durably, in the
 * device's licence store before one of them is used, so that a reconnecting device does not write
 * its store at every attempt (an SD card lives longer) and a restarted one starts above every number
 * the process before it could have used. A fresh store starts at the clock (ms), so that a device
 * whose state directory was wiped still starts above the numbers it used before, as long as its
 * clock is sane; the store's reservation wins when the clock went back.
 */
import type { Clock } from './clock.js';

/** Where the reserved ceiling lives ([LM-STATE-3]); the licence store in the SDK. */
export interface BootSequenceStore {
  /** the highest number reserved so far, if any */
  readonly bootCeiling: number | undefined;
  /** reserves numbers up to `ceiling`, durably: throws when it cannot */
  reserveBoot(ceiling: number): void;
}

/** Numbers reserved per write of the store. */
export const BOOT_BLOCK = 64;

/**
 * The device's boot sequence numbers, one per CONNECT.
 *
 * @example
 * const seq = new BootSequence(licences, Date.now, (e) => log(e));
 * const bd = seq.next(); // for the next CONNECT's Will, then its HELLO and STATUS frames
 */
export class BootSequence {
  private last: number | undefined;
  private reserved: number;

  /** `failed` hears of a reservation the store could not write: the numbers then still grow within this process. */
  constructor(private readonly store: BootSequenceStore, private readonly clock: Clock, private readonly failed: (e: unknown) => void = () => undefined) {
    this.reserved = Math.max((store.bootCeiling ?? -1) + 1, Math.floor(clock())) - 1;
  }

  /** The number of the latest connection attempt, undefined before the first. */
  get current(): number | undefined {
    return this.last;
  }

  /** A number for a new CONNECT, above every number used before; reserved in the store first. Never throws. */
  next(): number {
    const bd = this.last === undefined ? this.reserved + 1 : this.last + 1;
    if (bd > this.reserved) {
      const ceiling = bd + BOOT_BLOCK - 1;
      try {
        this.store.reserveBoot(ceiling);
      } catch (e) {
        this.failed(e);
      }
      this.reserved = ceiling; // in this process in any case: numbers never go back here
    }
    this.last = bd;
    return bd;
  }
}
