/**
 * @module services/store
 * The store over the broker (SPEC §16.1): {@link serveStore} answers its ops from a
 * {@link ProtectedStore}, each only to the keys trusted for it ([LM-SVC-6]); {@link storeClient}
 * asks them: a gateway's {@link SegmentSource} (get), an owner's put and delete.
 *
 * Segments travel in parts: a put carries as many segments as fit in one request (a segment
 * larger than that is staged first); a get answers with as many bytes of the segments asked as
 * fit in one answer and the client asks for the rest from where it ended.
 */
import {
  type CborValue, type IdentityKeyPair, LmError, errorMessage, Reason, SVC_PART, type Segment, SvcOp, type SvcOpId, toHex, verifyDelete,
  verifySegmentList,
} from '@livematrix/spec';
import type { ProtectedStore } from '../store/index.js';
import type { SegmentSource } from '../protected.js';
import { Fields, cmap, concat, splitIds, tupleOf } from './codec.js';
import type { CallOptions, ServiceEndpoint, ServicePeer } from './endpoint.js';

/** Keys a store trusts, by the role they ask as ([LM-SVC-6]). */
export interface StoreTrust {
  /** get, stats */
  gateways: readonly Uint8Array[];
  /** put, delete, stats (owners upload and delete jobs) */
  owners: readonly Uint8Array[];
}

export interface ServeStoreOptions {
  /** the keys service's Ed25519 key: a delete needs its signature over the job's segment list ([LM-SVC-5]) */
  keysService: Uint8Array;
  /** the `service` of the store's deletion receipts; default "store" */
  name?: string;
  /** the identity that signs deletion receipts; default the endpoint's */
  identity?: IdentityKeyPair;
}

/** Ids one get may ask for. */
export const GET_MAX_IDS = 64;
/** Segments per put request at most (each is C + 16 bytes, so usually far fewer fit). */
const PUT_MAX = 256;
/** CBOR bytes per segment in a put, besides its bytes: the array, the id and two heads. */
const PUT_OVERHEAD = 24;

/**
 * Serves the store's ops on `ep` (SPEC §16.1), each only to the keys `trust` names for it
 * ([LM-SVC-6]).
 *
 * @example
 * serveStore(ep, await openStore({ dir, epochs }), { gateways: [gw], owners: [owner] }, { keysService: ksKey });
 */
export function serveStore(ep: ServiceEndpoint, store: ProtectedStore, trust: StoreTrust, o: ServeStoreOptions): void {
  const identity = o.identity ?? ep.identity;
  const byOp: Partial<Record<SvcOpId, readonly Uint8Array[]>> = {
    [SvcOp.stage]: trust.owners,
    [SvcOp.put]: trust.owners,
    [SvcOp.get]: trust.gateways,
    [SvcOp.storeDelete]: trust.owners,
    [SvcOp.stats]: [...trust.gateways, ...trust.owners],
  };
  ep.serve({
    name: 'store',
    trusted: (op) => byOp[op] ?? [],
    handlers: {
      // {1 [[id, bytes]...]} or {2 [[id, tag of the staged segment]...]} -> {1 stored}
      [SvcOp.put]: async (a, ctx) => {
        const segs: Segment[] = [];
        if (a.has(1)) {
          for (const x of a.array(1, PUT_MAX)) {
            const [id, bytes] = tupleOf(x, 'put: a segment');
            if (!(id instanceof Uint8Array) || !(bytes instanceof Uint8Array)) throw new LmError(Reason.schema, 'put: a segment is [id, bytes]');
            segs.push({ id, bytes });
          }
        }
        if (a.has(2)) {
          for (const x of a.array(2, PUT_MAX)) {
            const [id, tag] = tupleOf(x, 'put: a staged segment');
            if (!(id instanceof Uint8Array) || !(tag instanceof Uint8Array)) throw new LmError(Reason.schema, 'put: a staged segment is [id, tag]');
            segs.push({ id, bytes: ctx.staged(tag) });
          }
        }
        await store.put(segs);
        return cmap([1, segs.length]);
      },
      // {1 [ids], 2 off in the first} -> {1 data, 2 sizes of the segments it touches}
      [SvcOp.get]: async (a) => {
        const ids = a.array(1, GET_MAX_IDS).map((x) => {
          if (!(x instanceof Uint8Array) || x.length !== 16) throw new LmError(Reason.schema, 'get: an id is 16 bytes');
          return x;
        });
        const off = a.uint(2);
        if (ids.length === 0) throw new LmError(Reason.schema, 'get: no ids');
        const [first] = await store.get([ids[0] as Uint8Array]);
        const size = (first as Uint8Array).length;
        if (off >= size) throw new LmError(Reason.schema, `get: offset ${off} is beyond the segment's ${size} bytes`);
        const parts = [(first as Uint8Array).subarray(off, Math.min(size, off + SVC_PART))];
        const sizes = [size];
        let room = SVC_PART - (parts[0] as Uint8Array).length;
        const more = Math.min(ids.length - 1, Math.floor(room / size) + 1);
        if (room > 0 && more > 0) {
          for (const seg of await store.get(ids.slice(1, 1 + more))) {
            if (room <= 0) break;
            parts.push(seg.subarray(0, Math.min(seg.length, room)));
            sizes.push(seg.length);
            room -= seg.length;
          }
        }
        return cmap([1, concat(parts)], [2, sizes]);
      },
      // {1 delete, 2 ids | 3 tag of the staged ids, 4 the keys service's signature over them} -> {1 receipt}
      [SvcOp.storeDelete]: async (a, ctx) => {
        const del = a.bytes(1, [1, 4096]);
        const d = verifyDelete(del); // the owner's signature ([LM-SVC-5])
        const tag = a.optBytes(3, 16);
        const ids = tag ? ctx.staged(tag) : a.bytes(2, [0, SVC_PART]);
        if (!verifySegmentList(d.hash, d.jid, ids, a.bytes(4, 64), o.keysService)) {
          throw new LmError(Reason.auth, `delete of job ${toHex(d.jid)}: the segment list is not signed by the keys service this store trusts ([LM-SVC-5])`);
        }
        const { receipt } = await store.deleteJob(del, splitIds(ids, 'delete'), { identity, service: o.name ?? 'store' });
        await store.compact(); // the removed rows' pages are given back, not left in the file
        return cmap([1, receipt]);
      },
      // {} -> {1 epoch, 2 segments, 3 bytes}
      [SvcOp.stats]: async () => {
        const s = await store.stats();
        return cmap([1, s.epoch], [2, s.segments], [3, s.bytes]);
      },
    },
  });
}

/** The store as its clients see it. */
export interface StoreClient extends SegmentSource {
  /** the store asked now: with several, the one that answered last */
  readonly peer: ServicePeer;
  /** The segments of `ids`, in order ([LM-SVC-3]: the outer layer removed by the store). */
  get(ids: Uint8Array[]): Promise<Uint8Array[]>;
  /** Stores an upload's segments ([LM-SVC-1]); `progress` is told the segments stored so far. */
  put(segments: readonly Segment[], progress?: (stored: number) => void): Promise<void>;
  /** Removes a deleted job's segments ([LM-SVC-5]) under the keys service's signed list; returns the store's receipt. */
  delete(deleteTx: Uint8Array, ids: Uint8Array, listSig: Uint8Array): Promise<Uint8Array>;
  stats(): Promise<{ epoch: number; segments: number; bytes: number }>;
}

export interface StoreClientOptions {
  /** ms to wait for one answer (default 3000 for reads, 30 000 for writes) */
  attemptMs?: number;
  /** ms to keep asking a get while the store does not answer (it may be restarting), default 60 000 */
  deadlineMs?: number;
  /** gets in flight at once, default 4 */
  parallel?: number;
}

/** Whether a failed read may be asked of the next store: no answer, or an error other than `unknown` (an unknown segment is a real error) or the client's own closing. */
const failsOver = (e: unknown): boolean => !(e instanceof LmError) || (e.code !== Reason.unknown && e.code !== Reason.aborted);

/**
 * A client of the store `peer` on `ep` ([LM-SVC-6]: it takes only answers signed by
 * `peer.publicKey`). A get is asked again while the store does not answer, so that a store
 * restarted mid-stream costs a pause, not the stream.
 *
 * Given several stores (instances on one PostgreSQL database, which serve the same segments), a
 * read (get, stats) that one does not answer within `attemptMs`, or answers with an error other
 * than `unknown`, is asked of the next, until `deadlineMs`; the client keeps asking the one that
 * answered. A write (put, delete) goes to the store asked now, without failing over: instances on
 * one database share what it stores.
 *
 * @example
 * const store = storeClient(ep, { id: 'store-1', publicKey });
 * const [seg] = await store.get([id]);
 */
export function storeClient(ep: ServiceEndpoint, peers: ServicePeer | readonly ServicePeer[], o: StoreClientOptions = {}): StoreClient {
  const all: readonly ServicePeer[] = Array.isArray(peers) ? peers : [peers as ServicePeer];
  if (all.length === 0) throw new LmError(Reason.schema, 'storeClient: no store');
  let current = 0;
  const read: CallOptions = { retry: true, attemptMs: o.attemptMs ?? 3000, deadlineMs: o.deadlineMs ?? 60_000 };
  const write: CallOptions = { attemptMs: o.attemptMs ?? 30_000 };
  const call = (op: SvcOpId, args: Map<number, CborValue>, opts: CallOptions, peer: ServicePeer = all[current] as ServicePeer) =>
    ep.call(peer, op, args, opts).then((v) => new Fields(v, `store ${peer.id}`));
  /** A read: with one store asked again while it does not answer; with several, each in turn. */
  const readCall = async (op: SvcOpId, args: Map<number, CborValue>): Promise<Fields> => {
    if (all.length === 1) return call(op, args, read);
    const deadline = Date.now() + (read.deadlineMs ?? 60_000);
    let refusedInRow = 0;
    for (;;) {
      const at = current;
      const peer = all[at] as ServicePeer;
      try {
        return await call(op, args, { attemptMs: read.attemptMs ?? 3000 }, peer);
      } catch (e) {
        if (!failsOver(e) || Date.now() >= deadline) throw e;
        // every store answered with an error in a row: that is the answer, not a store gone
        refusedInRow = e instanceof LmError && e.code === Reason.timeout ? 0 : refusedInRow + 1;
        if (refusedInRow >= all.length) throw e;
        if (current === at) {
          current = (at + 1) % all.length; // parallel gets that failed on the same store move once
          ep.log(`store ${peer.id}: ${errorMessage(e)}; asking store ${(all[current] as ServicePeer).id}`);
        }
      }
    }
  };
  /** the segment size seen last: how many ids one get asks for */
  let segmentSize = 0;

  /** Fetches `ids` with as many gets as their bytes need, each from where the last ended. */
  const fetch = async (ids: Uint8Array[]): Promise<Uint8Array[]> => {
    const out: Uint8Array[] = [];
    let partial: Uint8Array | undefined;
    let off = 0;
    while (out.length < ids.length) {
      const r = await readCall(SvcOp.get, cmap([1, ids.slice(out.length, out.length + GET_MAX_IDS)], [2, off]));
      const data = r.bytes(1, [1, SVC_PART]);
      const sizes = r.array(2, GET_MAX_IDS);
      let p = 0;
      for (let i = 0; i < sizes.length && p < data.length; i++) {
        const size = sizes[i];
        if (typeof size !== 'number' || size < 1) throw new LmError(Reason.schema, `store ${all[current]?.id}: get answered a segment size that is not a positive integer`);
        segmentSize = size;
        const start = i === 0 ? off : 0;
        const n = Math.min(size - start, data.length - p);
        if (start === 0 && n === size) out.push(data.slice(p, p + n));
        else {
          partial ??= new Uint8Array(size);
          partial.set(data.subarray(p, p + n), start);
          if (start + n === size) {
            out.push(partial);
            partial = undefined;
          }
        }
        off = start + n === size ? 0 : start + n;
        p += n;
      }
    }
    return out;
  };

  return {
    get peer() {
      return all[current] as ServicePeer;
    },
    async get(ids) {
      if (ids.length === 0) return [];
      // a first segment tells the size, which says how many ids one get answers; then as many
      // gets in flight as allowed
      const head = segmentSize > 0 ? [] : await fetch(ids.slice(0, 1));
      const rest = ids.slice(head.length);
      const per = Math.max(1, Math.min(GET_MAX_IDS, Math.floor(SVC_PART / segmentSize)));
      const groups: Uint8Array[][] = [];
      for (let i = 0; i < rest.length; i += per) groups.push(rest.slice(i, i + per));
      const results: Uint8Array[][] = new Array<Uint8Array[]>(groups.length);
      let next = 0;
      const worker = async () => {
        while (next < groups.length) {
          const g = next++;
          results[g] = await fetch(groups[g] as Uint8Array[]);
        }
      };
      await Promise.all(Array.from({ length: Math.min(o.parallel ?? 4, groups.length) }, worker));
      return [...head, ...results.flat()];
    },
    async put(segments, progress) {
      const peer = all[current] as ServicePeer;
      let i = 0;
      while (i < segments.length) {
        const size = (segments[i] as Segment).bytes.length;
        if (size + PUT_OVERHEAD > SVC_PART) {
          // larger than one request: staged one by one, stored together
          const batch = segments.slice(i, i + 8);
          const staged: CborValue[] = [];
          for (const s of batch) staged.push([s.id, await ep.stage(peer, s.bytes, { attemptMs: read.attemptMs ?? 3000, deadlineMs: read.deadlineMs ?? 60_000 })]);
          await call(SvcOp.put, cmap([2, staged]), write, peer);
          i += batch.length;
        } else {
          const per = Math.max(1, Math.floor(SVC_PART / (size + PUT_OVERHEAD)));
          const batch = segments.slice(i, i + per);
          await call(SvcOp.put, cmap([1, batch.map((s) => [s.id, s.bytes])]), write, peer);
          i += batch.length;
        }
        progress?.(i);
      }
    },
    async delete(deleteTx, ids, listSig) {
      const peer = all[current] as ServicePeer;
      const inline = ids.length <= SVC_PART - 256;
      const tag = inline ? undefined : await ep.stage(peer, ids, read);
      const r = await call(SvcOp.storeDelete, cmap([1, deleteTx], [2, inline ? ids : undefined], [3, tag], [4, listSig]), write, peer);
      return r.bytes(1, [1, 4096]);
    },
    async stats() {
      const r = await readCall(SvcOp.stats, cmap());
      return { epoch: r.uint(1), segments: r.uint(2), bytes: r.uint(3) };
    },
  };
}
