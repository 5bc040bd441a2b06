/**
 * @module services/epochs
 * A store's epoch keys from a keys service in another process ([LM-SVC-3]). The store asks its
 * {@link EpochSource} synchronously (it seals and opens rows inside database transactions), so
 * this source holds K_e and K_{e+1} fetched ahead: the store's process calls
 * {@link RemoteEpochs.prepare} before opening the store and before each rotation, and
 * {@link RemoteEpochs.flush} after one, which confirms the new epoch to the keys service (so that
 * it may erase c_e). A confirmation that does not get through is sent again by the next
 * `prepare()`; until then the keys service keeps c_e, and the store's next rotation finds every
 * row in the newer epoch already.
 */
import { LmError, Reason, wipe } from '@livematrix/spec';
import type { EpochKey, EpochSource } from '../store/types.js';
import type { KeysClient } from './keys.js';

/** An {@link EpochSource} over a keys service client, with the two calls its store's process makes. */
export interface RemoteEpochs extends EpochSource {
  /** Confirms a pending epoch, then fetches K_e and K_{e+1} ([LM-SVC-3]). */
  prepare(): Promise<void>;
  /** Sends the confirmation of the last established epoch, and waits for it. */
  flush(): Promise<void>;
  /** the epoch the store established last that the keys service has not confirmed */
  readonly unconfirmed: number | undefined;
  /** Wipes the keys held. */
  destroy(): void;
}

/**
 * The epoch source of a store whose keys service is remote.
 *
 * @example
 * const epochs = remoteEpochs(keysClient(ep, ks));
 * await epochs.prepare();
 * const store = await openStore({ dir, epochs, epochMs: 0 });
 * setInterval(async () => { await epochs.prepare(); await store.rotate(); await epochs.flush(); }, 120_000);
 */
export function remoteEpochs(keys: Pick<KeysClient, 'epochs' | 'established'>, log: (line: string) => void = () => undefined): RemoteEpochs {
  let cur: EpochKey | undefined;
  let nxt: EpochKey | undefined;
  let pending: number | undefined;
  let sending: Promise<void> | undefined;

  const replace = (a: EpochKey | undefined, b: EpochKey | undefined): EpochKey | undefined => {
    if (a && a !== b) wipe(a.key);
    return b;
  };

  const send = async (): Promise<void> => {
    while (pending !== undefined) {
      const e = pending;
      await keys.established(e);
      if (pending === e) pending = undefined;
    }
  };

  const flush = (): Promise<void> => {
    sending ??= send().finally(() => {
      sending = undefined;
    });
    return sending;
  };

  return {
    get unconfirmed() {
      return pending;
    },
    async prepare() {
      for (let attempt = 0; attempt < 3; attempt++) {
        await flush();
        const got = await keys.epochs();
        if (got.next.e !== got.current.e + 1) throw new LmError(Reason.internal, `the keys service's next epoch is ${got.next.e}, not ${got.current.e + 1}`);
        if (cur && got.current.e < cur.e) {
          // it has not taken this store's confirmation: send it again, then look again ([LM-SVC-3])
          log(`keys service at epoch ${got.current.e}, this store at ${cur.e}: confirming again`);
          if (pending === undefined || pending < cur.e) pending = cur.e;
          wipe(got.current.key, got.next.key);
          continue;
        }
        cur = replace(cur, got.current);
        nxt = replace(nxt, got.next);
        return;
      }
      throw new LmError(Reason.internal, `the keys service stays behind this store's epoch ${cur?.e ?? '?'}`);
    },
    flush,
    current() {
      if (!cur) throw new LmError(Reason.internal, 'the epoch keys are not fetched yet: prepare() first');
      return { e: cur.e, key: cur.key.slice() }; // the caller owns (and wipes) what it gets
    },
    next() {
      if (!cur || !nxt || nxt.e !== cur.e + 1) throw new LmError(Reason.busy, `the key of epoch ${cur ? cur.e + 1 : '?'} is not fetched yet: prepare() before rotating ([LM-SVC-3])`);
      return { e: nxt.e, key: nxt.key.slice() };
    },
    established(e) {
      if (cur && nxt && e === nxt.e) {
        wipe(cur.key);
        cur = nxt;
        nxt = undefined;
      }
      if (pending === undefined || e > pending) pending = e;
      // sent now, in the background; prepare() and flush() wait for it, and send it again if it failed
      void flush().catch((err: unknown) => log(`the keys service did not confirm epoch ${e} yet: ${err instanceof Error ? err.message : String(err)}`));
    },
    destroy() {
      wipe(cur?.key, nxt?.key);
      cur = undefined;
      nxt = undefined;
    },
  };
}
