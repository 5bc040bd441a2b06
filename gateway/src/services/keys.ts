/**
 * @module services/keys
 * The keys service over the broker (SPEC §16.1): {@link serveKeys} answers its ops from a
 * {@link KeysService}, each only to the keys trusted for it ([LM-SVC-6]); {@link keysClient} asks
 * them: a gateway's {@link KeyRelease} (playbook, release, end of a session, alarm), an owner's
 * register and delete, an operator's grant, a store's epoch keys.
 *
 * Large values travel in parts: an envelope is staged (op `stage`) and registered by its tag; a
 * playbook comes in pages of ids; the segment ids of a deleted job likewise; release takes the
 * chunks of one session in batches.
 */
import { type CborValue, LmError, Reason, SVC_PART, SvcOp, type SvcOpId, fromHex, isReasonCode, signSegmentList, toHex, toLmError, verifyDelete, wipe } from '@livematrix/spec';
import type { KeysService } from '../keys-service/index.js';
import { ReleaseBusyError } from '../keys-service/errors.js';
import type { EpochKey } from '../store/types.js';
import type { KeyRelease, PlaybookView, ReleaseRequest } from '../protected.js';
import { Fields, cmap, concat, splitIds, tupleOf } from './codec.js';
import { type CallOptions, type ServiceEndpoint, type ServicePeer, detailOf } from './endpoint.js';

/** Keys a keys service trusts, by the role they ask as ([LM-SVC-6]). */
export interface KeysTrust {
  /** playbook, release, endSession, alarm */
  gateways: readonly Uint8Array[];
  /** epoch, established */
  stores: readonly Uint8Array[];
  /** register, delete (the jobs' owners) and grant */
  owners: readonly Uint8Array[];
  /** grant: operators who hand a transaction's licence secret to the service */
  operators: readonly Uint8Array[];
}

/** Ids per page of a playbook or a segment list: 16 bytes each, within one part. */
export const IDS_PER_PAGE = Math.floor(SVC_PART / 16);
/** Chunks per release request. */
export const RELEASE_BATCH = 128;
/** How long the segment list of a deleted job is kept for its owner to page through, ms. */
const DELETED_KEPT_MS = 10 * 60_000;

const ENVELOPE_MAX = 64 * 1024 * 1024;

/**
 * Serves the keys service's ops on `ep` (SPEC §16.1), each only to the keys `trust` names for
 * it ([LM-SVC-6]); the service's clock paces releases, whatever a gateway says its clock is.
 *
 * @example
 * const ep = await ServiceEndpoint.connect({ url, fleet, id: 'keys-1', role: 'keys', identity, auth: 'token' });
 * serveKeys(ep, openKeysService({ dir, identity }), { gateways: [gw], stores: [st], owners: [owner], operators: [op] });
 */
export function serveKeys(ep: ServiceEndpoint, ks: KeysService, trust: KeysTrust): void {
  const deleted = new Map<string, { pk: string; jid: Uint8Array; ids: Uint8Array; expires: number }>();
  const byOp: Partial<Record<SvcOpId, readonly Uint8Array[]>> = {
    [SvcOp.stage]: trust.owners,
    [SvcOp.register]: trust.owners,
    [SvcOp.playbook]: trust.gateways,
    [SvcOp.grant]: [...trust.owners, ...trust.operators],
    [SvcOp.release]: trust.gateways,
    [SvcOp.endSession]: trust.gateways,
    [SvcOp.alarm]: trust.gateways,
    [SvcOp.delete]: trust.owners,
    [SvcOp.deletedIds]: trust.owners,
    [SvcOp.epoch]: trust.stores,
    [SvcOp.established]: trust.stores,
  };
  ep.serve({
    name: 'keys service',
    trusted: (op) => byOp[op] ?? [],
    handlers: {
      // {1 upload, 2 envelope | 3 tag of the staged envelope} -> {1 jid}
      [SvcOp.register]: async (a, ctx) => {
        const tag = a.optBytes(3, 16);
        const envelope = tag ? ctx.staged(tag) : a.bytes(2, [1, ENVELOPE_MAX]);
        return cmap([1, fromHex(await ks.register(a.bytes(1, [1, 4096]), envelope))]);
      },
      // {1 jid, 2 from} -> {1 C, 2 n, 3 size, 4 jd, 5 uh, 6 last, 7 ids of order[from ..]}
      [SvcOp.playbook]: async (a) => {
        const pb = await ks.playbook(a.bytes(1, 16));
        const from = a.uint(2);
        if (from > pb.n) throw new LmError(Reason.schema, `playbook: page from ${from} beyond its ${pb.n} chunks`);
        const page = concat(pb.order.slice(from, from + IDS_PER_PAGE));
        return cmap([1, pb.C], [2, pb.n], [3, pb.size], [4, pb.jd], [5, pb.uh], [6, pb.last], [7, page]);
      },
      // {1 tx, 2 licence, 3 jid?} -> {1 txh}
      [SvcOp.grant]: async (a) => {
        const licence = a.bytes(2, 32);
        try {
          return cmap([1, fromHex(await ks.grant(a.bytes(1, [1, 4096]), licence, a.optBytes(3, 16)))]);
        } finally {
          wipe(licence);
        }
      },
      // {1 txh, 2 sid, 3 th, 4 r0, 5 [[j, r]...]} -> {1 [[code, wrap, retryAt, detail]...]}
      [SvcOp.release]: async (a) => {
        const head = { txh: a.bytes(1, 32), sid: a.bytes(2, 16), th: a.bytes(3, 32), r0: a.uint(4) };
        const out: CborValue[] = [];
        for (const item of a.array(5, RELEASE_BATCH)) {
          const [j, r] = tupleOf(item, 'release: a chunk');
          if (typeof j !== 'number' || typeof r !== 'number') throw new LmError(Reason.schema, 'release: a chunk is [j, r]');
          try {
            out.push([0, await ks.release({ ...head, j, r }), 0, '']);
          } catch (e) {
            const err = toLmError(e);
            out.push([err.code, new Uint8Array(0), err instanceof ReleaseBusyError ? err.retryAt : 0, detailOf(err)]);
          }
        }
        return cmap([1, out]);
      },
      [SvcOp.endSession]: async (a) => {
        await ks.endSession(a.bytes(1, 16));
        return cmap();
      },
      [SvcOp.alarm]: async (a) => {
        await ks.alarm(a.bytes(1, 32));
        return cmap();
      },
      // {1 delete} -> {1 receipt, 2 count, 3 list signature, 4 first page of ids}
      [SvcOp.delete]: async (a, ctx) => {
        const del = a.bytes(1, [1, 4096]);
        const d = verifyDelete(del);
        const r = await ks.delete(del);
        const ids = concat(r.segments);
        const sig = signSegmentList(d.hash, d.jid, ids, ep.identity);
        const now = Date.now();
        for (const [k, x] of deleted) if (x.expires < now) deleted.delete(k);
        deleted.set(toHex(d.hash), { pk: toHex(ctx.pk), jid: d.jid, ids, expires: now + DELETED_KEPT_MS });
        return cmap([1, r.receipt], [2, r.segments.length], [3, sig], [4, ids.subarray(0, 16 * IDS_PER_PAGE)]);
      },
      // {1 dh, 2 from} -> {1 ids}
      [SvcOp.deletedIds]: (a, ctx) => {
        const x = deleted.get(toHex(a.bytes(1, 32)));
        if (!x || x.pk !== toHex(ctx.pk)) throw new LmError(Reason.unknown, 'no segment list of that delete is held for this requester (kept 10 minutes)');
        const from = a.uint(2);
        return cmap([1, x.ids.subarray(16 * from, 16 * (from + IDS_PER_PAGE))]);
      },
      // {} -> {1 e, 2 K_e, 3 e + 1, 4 K_e+1}: sealed to the store ([LM-SVC-3], [LM-SVC-6])
      [SvcOp.epoch]: () => {
        const cur = ks.current();
        const next = ks.next();
        return cmap([1, cur.e], [2, cur.key], [3, next.e], [4, next.key]);
      },
      // {1 e} -> {1 current e}
      [SvcOp.established]: (a) => {
        ks.established(a.uint(1));
        const cur = ks.current();
        wipe(cur.key);
        return cmap([1, cur.e]);
      },
    },
  });
}

/** The keys service as its clients see it: a gateway's KeyRelease and the owner's, operator's and store's ops. */
export interface KeysClient extends KeyRelease {
  readonly peer: ServicePeer;
  /** Registers an upload ([LM-PROT-1], [LM-SVC-2]); the envelope is staged in parts when large. Returns the job id in hex. */
  register(upload: Uint8Array, envelope: Uint8Array): Promise<string>;
  playbook(jid: Uint8Array): Promise<PlaybookView>;
  /** Hands a transaction's licence secret to the service ([LM-PROT-2]); returns its hash in hex. */
  grant(tx: Uint8Array, licence: Uint8Array, jid?: Uint8Array): Promise<string>;
  release(req: ReleaseRequest): Promise<Uint8Array>;
  endSession(sid: Uint8Array): Promise<void>;
  alarm(txh: Uint8Array): Promise<void>;
  /** The owner's delete ([LM-SVC-5]): the service's receipt, and the job's segment ids with its signature over them for the store. */
  delete(deleteTx: Uint8Array): Promise<DeletedJob>;
  /** K_e and K_{e+1} ([LM-SVC-3]), for a store. */
  epochs(): Promise<{ current: EpochKey; next: EpochKey }>;
  /** The store holds nothing under an epoch before `e` ([LM-SVC-3]); returns the service's current epoch. */
  established(e: number): Promise<number>;
}

/** What a keys service answers to a delete ([LM-SVC-5]). */
export interface DeletedJob {
  jid: Uint8Array;
  /** SHA-256 of the delete transaction */
  dh: Uint8Array;
  receipt: Uint8Array;
  /** every segment id of the job, real and decoy, concatenated in ascending order */
  ids: Uint8Array;
  /** the keys service's signature over the list, which the store checks */
  sig: Uint8Array;
}

export interface KeysClientOptions {
  /** ms to wait for one answer (default 5000) */
  attemptMs?: number;
  /** ms to keep asking ops that may run twice (default 60 000) */
  deadlineMs?: number;
}

interface Pending {
  j: number;
  r: number;
  resolve(w: Uint8Array): void;
  reject(e: LmError): void;
}

interface Batch {
  head: { txh: Uint8Array; sid: Uint8Array; th: Uint8Array; r0: number };
  items: Pending[];
}

/**
 * A client of the keys service `peer` on `ep` ([LM-SVC-6]: it takes only answers signed by
 * `peer.publicKey`). Releases asked in the same turn of the event loop for one session go in
 * one request.
 *
 * @example
 * const keys = keysClient(ep, { id: 'keys-1', publicKey });
 * const gw = await Gateway.start({ ..., protected: { keys, store: storeClient(ep, { id: 'store-1', publicKey: st }) } });
 */
export function keysClient(ep: ServiceEndpoint, peer: ServicePeer, o: KeysClientOptions = {}): KeysClient {
  const once: CallOptions = { attemptMs: o.attemptMs ?? 30_000 };
  const again: CallOptions = { retry: true, attemptMs: o.attemptMs ?? 5000, deadlineMs: o.deadlineMs ?? 60_000 };
  const call = (op: SvcOpId, args: Map<number, CborValue>, opts: CallOptions) => ep.call(peer, op, args, opts).then((v) => new Fields(v, `keys service ${peer.id}`));
  const batches = new Map<string, Batch>();
  let scheduled = false;

  const flush = () => {
    scheduled = false;
    const all = [...batches.values()];
    batches.clear();
    for (const b of all) {
      for (let i = 0; i < b.items.length; i += RELEASE_BATCH) void releaseBatch(b.head, b.items.slice(i, i + RELEASE_BATCH));
    }
  };

  const releaseBatch = async (head: Batch['head'], items: Pending[]) => {
    try {
      const args = cmap([1, head.txh], [2, head.sid], [3, head.th], [4, head.r0], [5, items.map((x) => [x.j, x.r])]);
      const answer = await ep.ask(peer, SvcOp.release, args, again);
      const got = new Fields(answer.value, `keys service ${peer.id} release`).array(1, items.length);
      const skew = Date.now() - answer.time; // its retryAt, on this host's clock
      items.forEach((x, i) => {
        const [code, wrap, retryAt, detail] = tupleOf(got[i] ?? null, 'release: an answer');
        if (code === 0 && wrap instanceof Uint8Array && wrap.length === 48) return x.resolve(wrap);
        const text = `${peer.id}: ${typeof detail === 'string' ? detail : 'refused'}`;
        if (code === Reason.busy && typeof retryAt === 'number') return x.reject(new ReleaseBusyError(x.j, retryAt + skew, text));
        x.reject(new LmError(typeof code === 'number' && isReasonCode(code) ? code : Reason.internal, text));
      });
    } catch (e) {
      const err = toLmError(e);
      for (const x of items) x.reject(err);
    }
  };

  return {
    peer,
    async register(upload, envelope) {
      const inline = envelope.length + upload.length <= SVC_PART;
      const tag = inline ? undefined : await ep.stage(peer, envelope, again);
      const r = await call(SvcOp.register, cmap([1, upload], [2, inline ? envelope : undefined], [3, tag]), once);
      return toHex(r.bytes(1, 16));
    },
    async playbook(jid) {
      const order: Uint8Array[] = [];
      for (;;) {
        const r = await call(SvcOp.playbook, cmap([1, jid], [2, order.length]), again);
        const n = r.uint(2);
        order.push(...splitIds(r.bytes(7, [0, 16 * IDS_PER_PAGE]), 'playbook'));
        if (order.length >= n || r.bytes(7, [0, 16 * IDS_PER_PAGE]).length === 0) {
          if (order.length !== n) throw new LmError(Reason.schema, `keys service ${peer.id}: playbook of ${n} chunks came with ${order.length} ids`);
          return { jid, C: r.uint(1), n, size: r.uint(3), jd: r.bytes(4, 32), uh: r.bytes(5, 32), order, last: r.uint(6) };
        }
      }
    },
    async grant(tx, licence, jid) {
      const r = await call(SvcOp.grant, cmap([1, tx], [2, licence], [3, jid]), once);
      return toHex(r.bytes(1, 32));
    },
    release(req) {
      return new Promise<Uint8Array>((resolve, reject) => {
        const key = toHex(req.sid) + toHex(req.txh) + toHex(req.th) + String(req.r0);
        let b = batches.get(key);
        if (!b) {
          b = { head: { txh: req.txh, sid: req.sid, th: req.th, r0: req.r0 }, items: [] };
          batches.set(key, b);
        }
        b.items.push({ j: req.j, r: req.r, resolve, reject });
        if (!scheduled) {
          scheduled = true;
          setImmediate(flush);
        }
      });
    },
    async endSession(sid) {
      await call(SvcOp.endSession, cmap([1, sid]), again);
    },
    async alarm(txh) {
      await call(SvcOp.alarm, cmap([1, txh]), again);
    },
    async delete(deleteTx) {
      const d = verifyDelete(deleteTx);
      const r = await call(SvcOp.delete, cmap([1, deleteTx]), once);
      const count = r.uint(2);
      const parts = [r.bytes(4, [0, 16 * IDS_PER_PAGE])];
      let have = parts[0]!.length / 16;
      while (have < count) {
        const p = (await call(SvcOp.deletedIds, cmap([1, d.hash], [2, have]), again)).bytes(1, [0, 16 * IDS_PER_PAGE]);
        if (p.length === 0) break;
        parts.push(p);
        have += p.length / 16;
      }
      if (have !== count) throw new LmError(Reason.schema, `keys service ${peer.id}: ${count} segment ids announced, ${have} sent`);
      return { jid: d.jid, dh: d.hash, receipt: r.bytes(1, [1, 4096]), ids: concat(parts), sig: r.bytes(3, 64) };
    },
    async epochs() {
      const r = await call(SvcOp.epoch, cmap(), again);
      return { current: { e: r.uint(1), key: r.bytes(2, 32) }, next: { e: r.uint(3), key: r.bytes(4, 32) } };
    },
    async established(e) {
      return (await call(SvcOp.established, cmap([1, e]), again)).uint(1);
    },
  };
}
