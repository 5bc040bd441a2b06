/**
 * @module scenarios/protected
 * Protected jobs (SPEC.md §16): the suite plays the gateway and the keys service of a job its
 * owner encrypted before upload ([LM-PROT-1]). The device keys the hint layer from the ECDH alone
 * and opens chunk keys only under the content chain of its licence ([LM-PROT-2]), so neither a
 * gateway (which holds no licence) nor one that holds the licence as in v1 can make a key it takes.
 */
import { Reason, errorMessage, minHintLength } from '@livematrix/spec';
import { R } from '../generated/requirements.js';
import { type ProtectedJob, uploadJob } from '../protected-job.js';
import type { Session } from '../session.js';
import { type Ctx, type Scenario, check, deliverExact } from './common.js';

/** The upload's chunk size: not the suite's default of 4096, so the device must take C from the OFFER, which takes it from the upload. */
const UPLOAD_CHUNK = 2048;
/** How long the device has to answer three KEYs that do not authenticate. */
const REFUSAL_TIMEOUT_MS = 3000;

/** Offers a new transaction of a protected job (`uh` its upload, size and digest the upload's) and waits for the session to be ready. */
async function openProtected(ctx: Ctx, job: ProtectedJob): Promise<Session> {
  const t = ctx.tester;
  const params = t.params({ w: 16, L: minHintLength(16) + 2, chunk: job.upload.body.C });
  const { tx, licence } = t.protectedTx(job);
  let s: Awaited<ReturnType<typeof t.offer>>;
  try {
    s = await t.offer(params, tx, licence, { protected: job });
  } catch (e) {
    // no ACK under the frame keys: the device keyed its session with the licence, as in v1
    throw new Error(`${errorMessage(e)} (a protected job's frame and hint keys derive from the ECDH alone, deriveSessionKeys(z, 0^32, th) [LM-PROT-2])`);
  }
  if ('refused' in s) throw new Error(`device refused the OFFER of a protected job: ${s.refused.code} ${s.refused.detail}`);
  return s;
}

export const protectedJob: Scenario = {
  id: 'device/protected-job',
  title: 'prints a protected job exactly: the owner\'s ciphertext as hints keyed without the licence, chunk keys wrapped under the content chain; keys wrapped under the v1 or the hint layer\'s wrap key do not open',
  covers: ['LM-PROT-1', 'LM-PROT-2', 'LM-PROT-3', 'LM-PROT-4'],
  async run(ctx) {
    const hello = await ctx.tester.waitHello();
    check(ctx, R.LM_PROT_3, hello.caps.prot === true, 'the device\'s HELLO does not announce protected jobs (caps key 5 prot) ([LM-PROT-3])');
    const job = uploadJob(ctx.data, { C: UPLOAD_CHUNK });
    // HINTS of ct_j (the stored segments in the playbook's order, the last trimmed), KEYs of k_j under W_r
    await deliverExact(ctx, await openProtected(ctx, job), [R.LM_PROT_1, R.LM_PROT_2]);

    // another transaction of the same upload: chunk 0's key wrapped under keys a gateway could hold
    const s = await openProtected(ctx, job);
    const [c] = s.plan(ctx.data);
    if (!c) throw new Error('the job has no chunk');
    await s.sendChunk(c);
    const r = s.rev();
    await s.sendKey(c, r, s.v1WrapKey(r)); // what a gateway holding K_lic would send in v1
    await s.sendKey(c, r, s.keysFor(r).wk); // the protected hint layer's wrap key: the gateway has it
    await s.sendKey(c, r, s.v1WrapKey(r));
    // three authentication failures within 60 s: ALARM tamper (or the session ends at the first, ERROR auth)
    const refused = await s.wait(
      () => s.alarms.find((a) => a.code === Reason.tamper) ?? s.errors.find((e) => e.code === Reason.auth || e.code === Reason.tamper),
      REFUSAL_TIMEOUT_MS, 'ALARM tamper or ERROR auth',
    ).catch(() => undefined);
    const consumed = Math.max(0, ...s.acks.map((a) => a.consumed));
    check(ctx, R.LM_PROT_2, consumed === 0, `the device delivered ${consumed} bytes of chunk 0, whose key came only wrapped under the v1 or the hint layer's wrap key, not under the content chain's W_r ([LM-PROT-2])`);
    check(ctx, R.LM_PROT_2, s.receipt === undefined, 'the device sent a receipt for a job whose keys it never had');
    check(ctx, R.LM_PROT_2, refused, `three KEYs that do not open under the content chain raised neither ALARM tamper nor ERROR auth in ${REFUSAL_TIMEOUT_MS} ms (wraps that fail count as tampering: [LM-AEAD-4], [LM-ALARM-3])`);
  },
};
