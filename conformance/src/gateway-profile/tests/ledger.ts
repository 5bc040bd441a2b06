/**
 * @module gateway-profile/tests/ledger
 * The gateway's receipt ledger (SPEC.md §11.6), read after every other stream of the run through
 * the target's ledger reader (--ledger-cmd): appends that race, from gateways sharing one
 * database, make no fork ([LM-LEDGER-3]); each RECEIPT of a stream the gateway reported
 * delivered is recorded exactly once, with the bytes the device sent, and no session twice
 * however often its RECEIPT came ([LM-LEDGER-4]); the chain and its records are well formed
 * ([LM-LEDGER-1], [LM-LEDGER-2], [LM-LEDGER-5]).
 */
import { type LedgerRecord, type LedgerProblemKind, FrameType, decodeFrame, decodeLedgerRecord, encodeLedgerRecord, equalBytes, toHex, verifyLedger } from '@livematrix/spec';
import type { RequirementId } from '../../generated/requirements.js';
import { until } from '../../wait.js';
import { type GatewayTest, describeExit, tail } from '../context.js';
import { startStream } from './common.js';

const C16 = 8176;

/** The requirement a problem {@link verifyLedger} reports breaks. */
const PROBLEM_ID: Readonly<Record<LedgerProblemKind, RequirementId>> = {
  record: 'LM-LEDGER-1', seq: 'LM-LEDGER-2', chain: 'LM-LEDGER-2', transaction: 'LM-LEDGER-5', operator: 'LM-LEDGER-5', receipt: 'LM-LEDGER-5', mismatch: 'LM-LEDGER-5', count: 'LM-TX-7', session: 'LM-LEDGER-4',
};

/** The session id of a record's RECEIPT (hex), or undefined when it holds no RECEIPT. */
function receiptSid(r: LedgerRecord): string | undefined {
  try {
    const f = decodeFrame(r.receipt);
    return f.type === FrameType.RECEIPT ? toHex(f.body.sid) : undefined;
  } catch {
    return undefined;
  }
}

export const ledger: GatewayTest = {
  id: 'gateway/ledger',
  title: 'the receipt ledger after the run: RECEIPTs verified at once by three gateways (each sent twice) make no fork; every RECEIPT of a delivered stream is recorded exactly once, with its bytes; the chain is unbroken',
  covers: ['LM-LEDGER-1', 'LM-LEDGER-2', 'LM-LEDGER-3', 'LM-LEDGER-4', 'LM-LEDGER-5', 'LM-TX-7', 'LM-DLV-7'],
  needs: 'ledger',
  async run(ctx) {
    const read = ctx.target.readLedger;
    if (!read) throw new Error('the target cannot read the gateway\'s ledger');
    // three streams whose RECEIPTs reach three gateways at once: their appends to one ledger race ([LM-LEDGER-3])
    const started = await Promise.all([0, 1, 2].map(() => startStream(ctx, { bytes: 2 * C16 - 100, accept: { behaviour: { receipt: false } } })));
    await Promise.all(started.map(async (s) => {
      await until(() => (s.session.complete() && s.session.ends.length > 0) || s.session.ended || s.run.exited, 30_000, `every chunk and END of the stream to ${s.dev.id}`);
      if (!s.session.complete() || !s.session.ends.length) throw new Error(`the stream to ${s.dev.id} ended before the job was delivered (${describeExit(s.run.exited)}): ${tail(s.run.output())}`);
    }));
    await Promise.all(started.map((s) => s.session.sendReceipt()));
    // each RECEIPT once more, byte for byte: at most one record per session however often it arrives ([LM-LEDGER-4])
    await Promise.all(started.map((s) => s.session.repeatReceipt()));
    for (const s of started) {
      const exit = await Promise.race([s.run.exit, new Promise<undefined>((r) => setTimeout(r, 15_000, undefined))]);
      ctx.check('LM-DLV-7', exit?.code === 0, `the gateway did not report the stream to ${s.dev.id} delivered after the device's signed RECEIPT (${describeExit(exit)}): ${tail(s.run.output())}`);
      s.session.reported = true;
    }
    for (const s of started) await s.run.stop();

    const bytes = await read({ state: ctx.stateDir, url: ctx.target.url, fleet: ctx.target.fleet });
    const records: LedgerRecord[] = [];
    for (const [i, b] of bytes.entries()) {
      let r: LedgerRecord | string;
      try {
        r = decodeLedgerRecord(b);
      } catch (e) {
        r = e instanceof Error ? e.message : String(e);
      }
      if (typeof r === 'string') return ctx.check('LM-LEDGER-1', false, `ledger record ${i + 1} does not decode: ${r}`);
      // [LM-LEDGER-1]: the deterministic encoding of the six fields
      ctx.check('LM-LEDGER-1', equalBytes(encodeLedgerRecord(r), b), `ledger record ${i + 1} (seq ${r.seq}) is not the deterministic encoding of its fields`);
      records.push(r);
    }
    const bySid = new Map<string, LedgerRecord[]>();
    for (const r of records) {
      const sid = receiptSid(r);
      if (sid) bySid.set(sid, [...(bySid.get(sid) ?? []), r]);
    }
    // [LM-LEDGER-3]: the racing appends made no fork (no two records with the same seq or prev) and
    // no gap; only a ledger that holds all three racing RECEIPTs shows that they were serialised
    const raced = started.every((s) => (bySid.get(s.session.sidHex)?.length ?? 0) > 0);
    if (raced) {
      const seqs = new Set<number>();
      const prevs = new Map<string, number>();
      for (const r of records) {
        const p = toHex(r.prev);
        ctx.check('LM-LEDGER-3', !seqs.has(r.seq) && !prevs.has(p), `the ledger forked: two records with ${seqs.has(r.seq) ? `seq ${r.seq}` : `prev ${p.slice(0, 16)}... (seqs ${prevs.get(p)} and ${r.seq})`}; appends were not serialised`);
        seqs.add(r.seq);
        prevs.set(p, r.seq);
      }
      const gap = records.findIndex((r, i) => r.seq !== i + 1);
      ctx.check('LM-LEDGER-3', gap < 0, `the ledger's seqs do not run 1, 2, 3, ...: record ${gap + 1} has seq ${records[gap]?.seq}`);
    } else {
      ctx.log('the ledger does not hold the RECEIPTs of all three racing streams: [LM-LEDGER-3] not checked ([LM-LEDGER-4] says which are missing)');
    }
    // [LM-LEDGER-2], [LM-LEDGER-5]: the chain and every record's RECEIPT and transaction (an empty ledger shows nothing of them)
    if (records.length) {
      const v = await verifyLedger(bytes);
      for (const id of new Set(Object.values(PROBLEM_ID))) {
        const p = v.problems.filter((x) => PROBLEM_ID[x.kind] === id);
        ctx.check(id, p.length === 0, p.slice(0, 3).map((x) => `seq ${x.seq}: ${x.detail}`).join('; '));
      }
    }
    // [LM-LEDGER-4]: every RECEIPT of a stream the gateway reported delivered exactly once, with its bytes; none of another session twice
    const sent = ctx.receipts();
    const delivered = [...sent.values()].filter((r) => r.reported).length;
    ctx.check('LM-LEDGER-4', records.length >= delivered, `the ledger holds ${records.length} record(s); the gateway reported ${delivered} streams of this run delivered, each after a RECEIPT it must have recorded`);
    let reported = 0;
    for (const [sid, rc] of sent) {
      const recs = bySid.get(sid) ?? [];
      if (rc.reported) reported++;
      ctx.check('LM-LEDGER-4', rc.reported ? recs.length === 1 : recs.length <= 1,
        `the ledger holds ${recs.length} records of session ${sid.slice(0, 8)} (device ${rc.device}), whose stream the gateway ${rc.reported ? 'reported delivered: exactly one' : 'did not report delivered: at most one'}`);
      const rec = recs[0];
      if (rec) ctx.check('LM-LEDGER-4', rc.frames.some((f) => equalBytes(f, rec.receipt)), `the ledger record seq ${rec.seq} of session ${sid.slice(0, 8)} holds a RECEIPT other than the bytes device ${rc.device} sent`);
    }
    // a record of one of the suite's devices whose RECEIPT the suite never sent signed (a forged one, [LM-DLV-7])
    const ours = records.filter((r) => {
      const sid = receiptSid(r);
      return sid !== undefined && !sent.has(sid) && decodeDevice(r)?.startsWith(`${ctx.shared.prefix}-`);
    });
    ctx.check('LM-LEDGER-4', ours.length === 0, `the ledger records ${ours.length} RECEIPT(s) of the suite's devices that they never sent signed (seq ${ours.map((r) => r.seq).join(', ')})`);
    ctx.log(`${records.length} ledger records; ${reported} RECEIPTs of delivered streams, ${sent.size} sessions with a RECEIPT`);
  },
};

/** The device a record's RECEIPT names. */
function decodeDevice(r: LedgerRecord): string | undefined {
  try {
    const f = decodeFrame(r.receipt);
    return f.type === FrameType.RECEIPT ? f.body.device : undefined;
  } catch {
    return undefined;
  }
}
