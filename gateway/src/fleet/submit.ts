/**
 * @module fleet/submit
 * A job as an operator submits it (api.ts `SubmitJob`), checked and turned into the job the
 * database keeps: its file pinned by digest, its transaction verified, or signed here with the
 * service's operator key ([LM-TX-2]); for a protected job signed here, its licence secret goes to
 * the keys service and is wiped, never stored ([LM-SVC-4]).
 */
import { randomBytes } from 'node:crypto';
import {
  ID_RE, type IdentityKeyPair, type SignedTx, TX_MAX_VALIDITY_MS, createTx, equalBytes, fromHex, toHex, toLmError, verifyTx,
} from '@livematrix/spec';
import type { SubmitJob } from './api.js';
import { BadRequestError } from './errors.js';
import type { FileStore } from './files.js';
import type { NewJob } from './types.js';

/** What submission needs of the service. */
export interface SubmitContext {
  files: FileStore;
  now: number;
  /** operator keys whose transactions the service's gateway honours */
  trustedOperators: readonly Uint8Array[];
  /** the operator key the service signs with, if it holds one */
  operator: IdentityKeyPair | undefined;
  /** a device's registered identity key */
  deviceKey(id: string): Uint8Array | undefined;
  /** hands a protected job's licence to the keys service ([LM-SVC-4]); undefined: no keys service */
  grant: ((tx: Uint8Array, licence: Uint8Array) => Promise<void>) | undefined;
  /** who submits, for the job's first event */
  by: string;
}

export const DEFAULTS = { prints: 1, rate: 1_000_000, burst: 2 ** 20, hours: 72, maxAttempts: 5, timeoutMs: 0 } as const;

const HEX = (bytes: number) => new RegExp(`^[0-9a-fA-F]{${bytes * 2}}$`);

/** A sortable, unique job id: j-<time base 36>-<random>. */
export function newJobId(now: number): string {
  return `j-${now.toString(36)}-${randomBytes(3).toString('hex')}`;
}

function int(label: string, v: unknown, dflt: number, min: number, max: number): number {
  if (v === undefined) return dflt;
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min || v > max) throw new BadRequestError(`"${label}" must be an integer from ${min} to ${max}`);
  return v;
}

function hex(label: string, v: unknown, bytes: number): Uint8Array {
  if (typeof v !== 'string' || !HEX(bytes).test(v)) throw new BadRequestError(`"${label}" must be ${bytes} bytes as ${bytes * 2} hex digits`);
  return fromHex(v.toLowerCase());
}

function verified(txHex: unknown, ctx: SubmitContext, device: string): SignedTx {
  if (typeof txHex !== 'string' || !/^(?:[0-9a-fA-F]{2}){16,4096}$/.test(txHex)) throw new BadRequestError('"tx" must be a signed transaction in hex ("livematrix sign" writes one)');
  let tx: SignedTx;
  try {
    tx = verifyTx(fromHex(txHex.toLowerCase()), { now: ctx.now, trustedOperators: ctx.trustedOperators });
  } catch (e) {
    throw new BadRequestError(`"tx": ${toLmError(e).message}`);
  }
  if (tx.body.device !== device) throw new BadRequestError(`"tx" is for device "${tx.body.device}", not "${device}" ([LM-TX-5])`);
  return tx;
}

/** Signs a transaction with the service's operator key. */
function signHere(ctx: SubmitContext, req: SubmitJob, job: string, plaintext: { digest: Uint8Array; size: number }, protectedJob?: { jid: Uint8Array; uh: Uint8Array }): { tx: SignedTx; licence: Uint8Array } {
  const op = ctx.operator;
  if (!op) throw new BadRequestError('this service holds no operator key, so it cannot sign: submit a transaction signed by the operator ("livematrix sign") in "tx", or start the service with --operator');
  const dpk = ctx.deviceKey(req.device);
  if (!dpk) throw new BadRequestError(`device "${req.device}" is not in the service's registry: its identity key is needed to seal the licence ([LM-TX-1])`);
  const hours = int('hours', req.hours, DEFAULTS.hours, 1, TX_MAX_VALIDITY_MS / 3600_000);
  return createTx({
    job: job.slice(0, 128), plaintext, device: req.device, devicePublic: dpk, operatorSecret: op.secretKey, operatorPublic: op.publicKey,
    notBefore: ctx.now - 60_000, notAfter: ctx.now + hours * 3600_000,
    rate: int('rate', req.rate, DEFAULTS.rate, 1, 2 ** 40), burst: int('burst', req.burst, DEFAULTS.burst, 256, 2 ** 40),
    prints: int('prints', req.prints, DEFAULTS.prints, 1, 1_000_000), ...(protectedJob ? { protectedJob } : {}),
  });
}

/** Checks a submission and makes the job to queue. Throws BadRequestError / NotFoundError with a message for the operator. */
export async function prepareJob(req: SubmitJob, ctx: SubmitContext): Promise<NewJob> {
  if (typeof req !== 'object' || req === null) throw new BadRequestError('a job is a JSON object');
  if (typeof req.device !== 'string' || !ID_RE.test(req.device)) throw new BadRequestError('"device" must be a device id (1-64 of A-Z a-z 0-9 . _ -)');
  if ((req.file === undefined) === (req.jid === undefined)) throw new BadRequestError('a job names either "file" (a job file of the service) or "jid" (a protected job in the store)');
  const common = {
    id: newJobId(ctx.now), device: req.device, time: ctx.now, by: ctx.by,
    maxAttempts: int('maxAttempts', req.maxAttempts, DEFAULTS.maxAttempts, 1, 100), timeoutMs: int('timeoutMs', req.timeoutMs, DEFAULTS.timeoutMs, 0, TX_MAX_VALIDITY_MS),
  };
  if (req.file !== undefined) {
    if (typeof req.file !== 'string') throw new BadRequestError('"file" must be a file name');
    const f = await ctx.files.pin(req.file);
    const digest = fromHex(f.sha256);
    let tx: SignedTx;
    let licence: Uint8Array;
    if (req.tx !== undefined) {
      tx = verified(req.tx, ctx, req.device);
      if (tx.body.jid) throw new BadRequestError('"tx" is a protected job\'s transaction: submit it with "jid"');
      if (tx.body.size !== f.size || !equalBytes(tx.body.jd, digest)) throw new BadRequestError(`"tx" was signed for another file than ${f.name} (size or SHA-256 differ) ([LM-TX-6])`);
      licence = hex('licence', req.licence, 32);
    } else {
      ({ tx, licence } = signHere(ctx, req, f.name, { digest, size: f.size }));
    }
    return { ...common, source: { kind: 'file', sha256: f.sha256, name: f.name }, size: f.size, tx: toHex(tx.bytes), txh: toHex(tx.hash), licence: toHex(licence) };
  }
  const jid = hex('jid', req.jid, 16);
  if (req.licence !== undefined) throw new BadRequestError('a protected job\'s licence goes to the keys service ("livematrix grant"), never to the service that streams it ([LM-SVC-4])');
  let tx: SignedTx;
  if (req.tx !== undefined) {
    tx = verified(req.tx, ctx, req.device);
    if (!tx.body.jid || !equalBytes(tx.body.jid, jid)) throw new BadRequestError('"tx" is not a transaction of this protected job ([LM-PROT-2])');
  } else {
    if (!ctx.grant) throw new BadRequestError('this service has no keys service to hand a licence to: submit a transaction already granted ("livematrix sign --protected-jid", "livematrix grant") in "tx"');
    const size = int('size', req.size, -1, 0, 2 ** 48);
    if (size < 0) throw new BadRequestError('"size" (the plaintext size, as "livematrix upload" printed it) is required to sign a protected job');
    const signed = signHere(ctx, req, `protected-${toHex(jid)}`, { digest: hex('digest', req.digest, 32), size }, { jid, uh: hex('uploadHash', req.uploadHash, 32) });
    tx = signed.tx;
    try {
      await ctx.grant(tx.bytes, signed.licence);
    } finally {
      signed.licence.fill(0);
    }
  }
  return { ...common, source: { kind: 'stored', jid: toHex(jid) }, size: tx.body.size, tx: toHex(tx.bytes), txh: toHex(tx.hash) };
}
