/**
 * @module licences
 * What a device must not forget (SPEC.md §11.4): the prints it counted per transaction
 * ([LM-LIC-1]), its resume tickets ([LM-LIC-3], [LM-LIC-4]), the session ids of the OFFERs it
 * checked within the freshness window ([LM-LIC-5]) and the newest revocation list it verified
 * ([LM-REVOKE-2]), and the points of each transaction's digest that resume it without its
 * plaintext ([LM-DLV-20]). Every change is written through a {@link LicenceStore} before the device
 * acts on it; the default store is a crash-safe file (write, fsync, rename, fsync of the directory).
 */
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import {
  type IdentityKey, LmError, Reason, type SignedTicket, decodeTicket, fromHex, randomBytes, signTicket, signingKey, toHex,
} from '@livematrix/spec';
import type { Clock } from './clock.js';
import { type PointStore, type SealedPoint, checkSealed, retainPoints } from './resume.js';

/** A ticket as the store keeps it. */
export interface StoredTicket {
  /** the signed ticket, hex */
  bytes: string;
  /** transaction hash, hex */
  txh: string;
  /** the session it was issued for, hex */
  sid: string;
  /**
   * running: its session runs in this process; held: its session was cut off and the ticket
   * resumes it ([LM-LIC-3]); spent: a resume used it, or its print completed or was abandoned
   */
  state: 'running' | 'held' | 'spent';
  exp: number;
}

/** Everything a device keeps across restarts, as JSON. */
export interface LicenceRecord {
  v: 1;
  /** prints counted per transaction hash (hex) ([LM-LIC-1]) */
  prints: Record<string, number>;
  /** tickets by id (hex) */
  tickets: Record<string, StoredTicket>;
  /** session ids (hex) of OFFERs whose signature verified, with the OFFER's time ([LM-LIC-5]) */
  sids: Record<string, number>;
  /** the newest verified REVOKE frame, hex ([LM-REVOKE-2]) */
  revocation?: string;
  /**
   * the RECEIPT frame (hex) of each transaction's last completed session, kept as long as its
   * ticket, to hand back should it never have reached a ledger ([LM-LIC-6])
   */
  receipts?: Record<string, { rc: string; exp: number }>;
  /**
   * per transaction hash (hex), points of its digest spread over time, sealed ([LM-DLV-20],
   * [LM-DLV-22]): `n` bytes of the job, `h` its masked intermediate hash value (hex), `t` its tag
   * (hex), `s` the save's sequence number; kept while a ticket of the transaction resumes
   * something, erased with it ([LM-DLV-21])
   */
  points?: Record<string, { n: number; h: string; t?: string; s?: number }[]>;
  /** the highest boot sequence number reserved: connections use numbers up to it, a restart starts above it ([LM-STATE-3]) */
  bd?: number;
}

/** Where a device keeps its licence state: loads it once, saves every change before it is acted on. */
export interface LicenceStore {
  load(): LicenceRecord | undefined;
  /** must be atomic and durable: after a crash, load() returns this record or the previous one */
  save(r: LicenceRecord): void;
}

/** A store in memory: for tests and for devices that really keep nothing (a restart forgets every count). */
export function memoryLicenceStore(): LicenceStore {
  let saved: string | undefined;
  return {
    load: () => (saved === undefined ? undefined : (JSON.parse(saved) as LicenceRecord)),
    save: (r) => void (saved = JSON.stringify(r)),
  };
}

/**
 * The default store: `licences.json` in the device's state directory, replaced atomically
 * (write a temporary file, fsync it, rename it over the old one, fsync the directory), so that a
 * crash at any point leaves either the old record or the new one ([LM-LIC-1]).
 */
export function fileLicenceStore(dir: string): LicenceStore {
  const path = join(dir, 'licences.json');
  return {
    load() {
      mkdirSync(dir, { recursive: true, mode: 0o700 });
      let text: string;
      try {
        text = readFileSync(path, 'utf8');
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
        throw e;
      }
      try {
        const r = JSON.parse(text) as LicenceRecord;
        if (r.v !== 1 || typeof r.prints !== 'object' || typeof r.tickets !== 'object' || typeof r.sids !== 'object') throw new Error('not a version 1 licence record');
        return r;
      } catch (e) {
        // never start over silently: a lost record would reset every print count
        throw new LmError(Reason.internal, `licence state ${path} is unreadable (${(e as Error).message}); restore it or move it away knowingly`);
      }
    },
    save(r) {
      const tmp = `${path}.tmp`;
      const fd = openSync(tmp, 'w', 0o600);
      try {
        writeSync(fd, JSON.stringify(r));
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
      renameSync(tmp, path);
      const d = openSync(dir, 'r');
      try {
        fsyncSync(d);
      } finally {
        closeSync(d);
      }
    },
  };
}

/** How long after its expiry a ticket that still resumes a print is kept */
const HELD_GRACE_MS = 7 * 24 * 3600_000;

/** How long a session id is remembered: beyond the window in which its OFFER's time is fresh ([LM-LIC-5]). */
const SID_MEMORY_MS = 2 * 120_000;

/** The device's licence state, written through its store. */
export class Licences implements PointStore {
  /** the record as it is on disk: replaced only after a save of its successor returned */
  private r: LicenceRecord;

  constructor(private readonly store: LicenceStore, private readonly identity: IdentityKey, private readonly deviceId: string, private readonly clock: Clock) {
    this.r = store.load() ?? { v: 1, prints: {}, tickets: {}, sids: {} };
    // a session that ran in a process that is gone was cut off: its ticket resumes it ([LM-LIC-3])
    if (Object.values(this.r.tickets).some((t) => t.state === 'running')) {
      this.change((r) => {
        for (const t of Object.values(r.tickets)) if (t.state === 'running') t.state = 'held';
      });
    }
  }

  /** Prints counted for a transaction ([LM-LIC-1]). */
  used(txh: string): number {
    return this.r.prints[txh] ?? 0;
  }

  /** An OFFER of this session id was checked within the window ([LM-LIC-5]). */
  seen(sid: string): boolean {
    return this.r.sids[sid] !== undefined;
  }

  /** Remembers a checked OFFER's session id, durably ([LM-LIC-5]). */
  remember(sid: string, time: number): void {
    this.change((r) => void (r.sids[sid] = time));
  }

  /** The unspent ticket of a transaction whose session was cut off, if any ([LM-LIC-3]). */
  held(txh: string): SignedTicket | undefined {
    for (const t of Object.values(this.r.tickets)) if (t.txh === txh && t.state === 'held' && t.exp >= this.clock()) return decodeTicket(fromHex(t.bytes));
    return undefined;
  }

  /** True when the ticket with this id is held and unspent ([LM-LIC-4]). */
  unspent(id: string): boolean {
    const t = this.r.tickets[id];
    return t !== undefined && t.state === 'held' && t.exp >= this.clock();
  }

  /**
   * The counting point ([LM-LIC-1]): counts one print of the transaction and issues the ticket
   * of the session that makes it, in one write; refuses (`tx-count`) when no print is left.
   */
  count(txh: string, limit: number, session: { sid: string; off: number; exp: number }): void {
    const used = this.used(txh);
    if (used >= limit) throw new LmError(Reason.txCount, `print count exhausted: ${used} of ${limit} used ([LM-TX-7])`);
    this.change((r) => {
      r.prints[txh] = used + 1;
      this.issue(r, txh, session);
    });
  }

  /** A resume ([LM-LIC-4]): spends the ticket it carried and issues the new session's, in one write. */
  resume(spent: string, txh: string, session: { sid: string; off: number; exp: number }): void {
    const t = this.r.tickets[spent];
    if (!t || t.state !== 'held') throw new LmError(Reason.txResume, 'the resume ticket is spent or unknown ([LM-LIC-4])');
    this.change((r) => {
      (r.tickets[spent] as StoredTicket).state = 'spent';
      this.issue(r, txh, session);
    });
  }

  /** The session was cut off at `off` bytes: its ticket is held, re-signed with the offset ([LM-LIC-3]). */
  hold(sid: string, off: number): void {
    const [id, t] = this.ofSession(sid) ?? [];
    if (!id || !t || t.state !== 'running') return;
    const old = decodeTicket(fromHex(t.bytes));
    const bytes = toHex(signTicket({ ...old.body, off }, signingKey(this.identity)).bytes);
    this.change((r) => void (r.tickets[id] = { ...t, bytes, state: 'held' }));
  }

  /** The session's print completed or was abandoned: its ticket resumes nothing ([LM-LIC-3]). */
  close(sid: string, receipt?: Uint8Array): void {
    const [id, t] = this.ofSession(sid) ?? [];
    if (!id || !t || t.state === 'spent') return;
    this.change((r) => {
      r.tickets[id] = { ...t, state: 'spent' };
      if (receipt) (r.receipts ??= {})[t.txh] = { rc: toHex(receipt), exp: t.exp }; // [LM-LIC-6]
    });
  }

  /** The RECEIPT of the transaction's last completed session, while it is kept ([LM-LIC-6]). */
  receipt(txh: string): Uint8Array | undefined {
    const k = this.r.receipts?.[txh];
    return k && k.exp + HELD_GRACE_MS >= this.clock() ? fromHex(k.rc) : undefined;
  }

  /**
   * Keeps a sealed point of a transaction's digest, durably ([LM-DLV-20], [LM-DLV-22]): numbered
   * in the order of the saves, one per count, and thinned to POINTS_KEPT spread over time
   * ({@link retainPoints}). Kept only while a ticket of the transaction is running or held
   * ([LM-DLV-21]).
   */
  keepPoint(txh: string, p: SealedPoint): void {
    checkSealed(p);
    const [h, t] = [toHex(p.h), toHex(p.t)];
    this.change((r) => {
      const all = r.points ?? (r.points = {});
      const old = all[txh] ?? [];
      const s = old.reduce((m, q) => Math.max(m, q.s ?? 0), 0) + 1;
      const list = retainPoints([...old.filter((q) => q.n !== p.n).map((q) => ({ ...q, s: q.s ?? 0 })), { n: p.n, h, t, s }]);
      all[txh] = list.sort((a, b) => a.n - b.n);
    });
  }

  /** The kept (sealed) points of a transaction's digest, fewest bytes first ([LM-DLV-20]); their tags are checked where they are opened. */
  points(txh: string): SealedPoint[] {
    const out: SealedPoint[] = [];
    for (const q of this.r.points?.[txh] ?? []) {
      try {
        out.push(checkSealed({ n: q.n, h: fromHex(q.h), t: fromHex(q.t ?? '') }));
      } catch {
        // a point of the wrong shape resumes nothing; the others still may
      }
    }
    return out;
  }

  /** The highest boot sequence number reserved so far, if any ([LM-STATE-3]). */
  get bootCeiling(): number | undefined {
    return this.r.bd;
  }

  /** Reserves boot sequence numbers up to `ceiling`, durably, before a CONNECT uses one of them ([LM-STATE-3]). */
  reserveBoot(ceiling: number): void {
    this.change((r) => {
      r.bd = ceiling;
    });
  }

  /** The newest verified revocation list (a REVOKE frame) ([LM-REVOKE-2]). */
  get revocation(): Uint8Array | undefined {
    return this.r.revocation === undefined ? undefined : fromHex(this.r.revocation);
  }

  set revocation(bytes: Uint8Array | undefined) {
    this.change((r) => {
      if (bytes === undefined) delete r.revocation;
      else r.revocation = toHex(bytes);
    });
  }

  private ofSession(sid: string): [string, StoredTicket] | undefined {
    for (const [id, t] of Object.entries(this.r.tickets)) if (t.sid === sid && t.state !== 'spent') return [id, t];
    return undefined;
  }

  private issue(r: LicenceRecord, txh: string, s: { sid: string; off: number; exp: number }): void {
    const t = signTicket({ v: 1, id: randomBytes(16), txh: fromHex(txh), sid: fromHex(s.sid), off: s.off, exp: s.exp, device: this.deviceId }, signingKey(this.identity));
    r.tickets[toHex(t.body.id)] = { bytes: toHex(t.bytes), txh, sid: s.sid, state: 'running', exp: s.exp };
  }

  /**
   * One change, all or nothing ([LM-LIC-2]): applied to a copy of the record, which drops what no
   * longer matters (expired tickets, session ids past the window) and is saved; only once the
   * save returned does it become the record. A save that throws changes nothing, in memory either.
   */
  private change(fn: (r: LicenceRecord) => void): void {
    const next = structuredClone(this.r);
    fn(next);
    const now = this.clock();
    for (const [sid, t] of Object.entries(next.sids)) if (Math.abs(now - t) > SID_MEMORY_MS) delete next.sids[sid];
    // a spent ticket goes at its expiry; one that still resumes a print is kept a week longer, so
    // that a clock running ahead for a while cannot throw a paid print away
    for (const [id, t] of Object.entries(next.tickets)) if (t.exp + (t.state === 'spent' ? 0 : HELD_GRACE_MS) < now) delete next.tickets[id];
    for (const [txh, k] of Object.entries(next.receipts ?? {})) if (k.exp + HELD_GRACE_MS < now) delete next.receipts![txh];
    // [LM-DLV-21]: a transaction's points go with the last ticket that resumes it (its print completed, was abandoned, or expired)
    const live = new Set(Object.values(next.tickets).filter((t) => t.state !== 'spent').map((t) => t.txh));
    for (const txh of Object.keys(next.points ?? {})) if (!live.has(txh)) delete next.points![txh];
    if (next.points && Object.keys(next.points).length === 0) delete next.points;
    this.store.save(next);
    this.r = next;
  }
}
