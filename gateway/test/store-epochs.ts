/**
 * A test double of the keys service's epoch chain ([LM-SVC-3]) for the store's tests: c_0
 * random (or given), c_{e+1} = nextEpochChain(c_e), K_e = epochKey(c_e); `established(e+1)`
 * erases c_e, so afterwards it holds c_{e+1} alone, as the keys service does.
 */
import { epochKey, nextEpochChain, randomBytes, wipe } from '@livematrix/spec';
import type { EpochKey, EpochSource } from '../src/store/index.js';

export class TestEpochs implements EpochSource {
  private chain: Uint8Array;
  /** the epochs established, in order */
  readonly establishedLog: number[] = [];

  constructor(chain: Uint8Array = randomBytes(32), private epoch = 0) {
    this.chain = chain.slice();
  }

  get e(): number {
    return this.epoch;
  }

  current(): EpochKey {
    return { e: this.epoch, key: epochKey(this.chain) };
  }

  next(): EpochKey {
    const c = nextEpochChain(this.chain);
    const key = epochKey(c);
    wipe(c);
    return { e: this.epoch + 1, key };
  }

  established(e: number): void {
    if (e === this.epoch) return;
    if (e !== this.epoch + 1) throw new Error(`established(${e}) while at epoch ${this.epoch}`);
    const c = nextEpochChain(this.chain);
    wipe(this.chain); // c_e erased: no key of e or before derives from what is left
    this.chain = c;
    this.epoch = e;
    this.establishedLog.push(e);
  }

  /** Everything it holds: the current epoch and its chain value (a copy). */
  state(): { e: number; chain: Uint8Array } {
    return { e: this.epoch, chain: this.chain.slice() };
  }
}
