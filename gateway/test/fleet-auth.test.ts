/**
 * The fleet service's pieces that need no broker: who may use the API ([LM-FLEET-5]), what a
 * run's failure means for its job ([LM-FLEET-1], [LM-FLEET-4]), and the checks of a submission
 * (a job file pinned by digest, transactions verified, a protected job's licence never taken).
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { LmError, Reason, createTx, digest, identityKeyPair, toHex } from '@livematrix/spec';
import { BadRequestError, FileStore, authenticate, backoff, createApiKey, hashApiKey, openFleetDb, operatorToken, outcome } from '../src/fleet/index.js';
import { receiptLost } from '../src/fleet/outcome.js';
import { prepareJob, type SubmitContext } from '../src/fleet/submit.js';

const tmp = mkdtempSync(join(tmpdir(), 'lm-fleet-auth-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const NOW = 1_800_000_000_000;

describe('API credentials [LM-FLEET-5]', () => {
  it('an API key works until revoked; only its SHA-256 is in the database file', async () => {
    const file = join(tmp, 'keys.db');
    const db = await openFleetDb(file);
    const { id, key } = await createApiKey(db, 'ops', NOW);
    expect(key).toMatch(/^lmk_[0-9a-f]{64}$/);
    expect(await authenticate(`Bearer ${key}`, db, [], NOW)).toEqual({ who: 'key:ops' });
    expect(await authenticate(`Bearer lmk_${'1'.repeat(64)}`, db, [], NOW)).toBeUndefined();
    expect(await authenticate(key, db, [], NOW)).toBeUndefined(); // not a Bearer header
    expect(await authenticate(undefined, db, [], NOW)).toBeUndefined();
    await db.close();
    // the key is not in the file, its hash is: the same search finds what is there
    const bytes = readFileSync(file).toString('latin1') + readFileSync(`${file}-wal`, { flag: 'a+' }).toString('latin1');
    expect(bytes.includes(hashApiKey(key))).toBe(true);
    expect(bytes.includes(key.slice(4))).toBe(false);
    const again = await openFleetDb(file);
    expect(await again.revokeApiKey(id)).toBe(true);
    expect(await authenticate(`Bearer ${key}`, again, [], NOW)).toBeUndefined();
    await again.close();
  });

  it('an operator token is valid only under a trusted key, unaltered, and within its time', async () => {
    const db = await openFleetDb(':memory:');
    const op = identityKeyPair();
    const other = identityKeyPair();
    const t = operatorToken(op, NOW, 3600_000, 'alice');
    expect(await authenticate(`Bearer ${t}`, db, [op.publicKey], NOW + 1000)).toEqual({ who: expect.stringMatching(/^operator:[0-9a-f]{16}\/alice$/) });
    expect(await authenticate(`Bearer ${t}`, db, [other.publicKey], NOW)).toBeUndefined(); // untrusted key
    expect(await authenticate(`Bearer ${t}`, db, [op.publicKey], NOW + 3600_001)).toBeUndefined(); // expired
    expect(await authenticate(`Bearer ${t}`, db, [op.publicKey], NOW - 120_000)).toBeUndefined(); // not yet valid
    // a longer expiry written into the payload breaks the signature
    const [, payload, sig] = t.split('.');
    const p = JSON.parse(Buffer.from(payload!, 'base64url').toString()) as { exp: number };
    const forged = `lmt.${Buffer.from(JSON.stringify({ ...p, exp: p.exp + 86_400_000 })).toString('base64url')}.${sig}`;
    expect(await authenticate(`Bearer ${forged}`, db, [op.publicKey], NOW + 3600_001)).toBeUndefined();
    // a token signed by another key that claims the trusted one
    const claimed = operatorToken(other, NOW, 3600_000).split('.');
    const swapped = `lmt.${Buffer.from(JSON.stringify({ ...p, opk: toHex(op.publicKey) })).toString('base64url')}.${claimed[2]}`;
    expect(await authenticate(`Bearer ${swapped}`, db, [op.publicKey], NOW)).toBeUndefined();
    expect(() => operatorToken(op, NOW, 31 * 86_400_000)).toThrow(RangeError);
    for (const junk of ['lmt.', 'lmt.a.b', 'lmt.e30.AAAA', `lmt.${'x'.repeat(2000)}.y`]) expect(await authenticate(`Bearer ${junk}`, db, [op.publicKey], NOW)).toBeUndefined();
    await db.close();
  });
});

describe('what a failed run means for its job [LM-FLEET-1], [LM-FLEET-4]', () => {
  it('transient failures queue the job again with a doubling back-off until its attempts are spent', () => {
    expect([1, 2, 3, 4, 7, 8].map(backoff)).toEqual([1000, 2000, 4000, 8000, 60_000, 60_000]);
    expect(outcome(new LmError(Reason.offline, 'gone'), 1, 5)).toMatchObject({ to: 'QUEUED', backoff: 1000, quarantine: false });
    expect(outcome(new LmError(Reason.timeout, 'silent'), 3, 5)).toMatchObject({ to: 'QUEUED', backoff: 4000 });
    expect(outcome(new LmError(Reason.busy, 'busy'), 5, 5)).toMatchObject({ to: 'FAILED', quarantine: false });
  });
  it('refusals reject, alarms fail and quarantine, anything else fails', () => {
    for (const code of [Reason.txCount, Reason.txRevoked, Reason.txExpired, Reason.params, Reason.digest]) expect(outcome(new LmError(code, 'no'), 1, 5).to).toBe('REJECTED');
    for (const code of [Reason.rate, Reason.tamper]) expect(outcome(new LmError(code, 'alarm'), 1, 5)).toMatchObject({ to: 'FAILED', quarantine: true });
    expect(outcome(new LmError(Reason.aborted, 'device aborted'), 1, 5)).toMatchObject({ to: 'FAILED', quarantine: false });
  });
  it('a run taken over that the device will not print again: FAILED, saying the receipt may be lost, not REJECTED', () => {
    const taken = { reason: 'lease taken over from serve-1' };
    expect(receiptLost(new LmError(Reason.txResume, 'nothing to resume'), taken)).toMatchObject({ to: 'FAILED', reason: expect.stringMatching(/receipt reached the ledger/) });
    expect(receiptLost(new LmError(Reason.txCount, 'used up'), taken)?.to).toBe('FAILED');
    expect(receiptLost(new LmError(Reason.txCount, 'used up'), { reason: 'started (attempt 1)' })).toBeUndefined(); // a first run: a refusal
    expect(receiptLost(new LmError(Reason.offline, 'gone'), taken)).toBeUndefined();
  });
});

describe('submissions', () => {
  const op = identityKeyPair();
  const dev = identityKeyPair();
  const dir = join(tmp, 'files');
  const files = new FileStore(dir);
  writeFileSync(join(dir, 'part.gcode'), 'G28\nG1 X10 Y10\n');
  const ctx = (o: Partial<SubmitContext> = {}): SubmitContext => ({
    files, now: NOW, trustedOperators: [op.publicKey], operator: op, deviceKey: (id) => (id === 'p1' ? dev.publicKey : undefined), grant: undefined, by: 'test', ...o,
  });
  const body = new TextEncoder().encode('G28\nG1 X10 Y10\n');
  const signed = (device = 'p1', data = body) => createTx({
    job: 'part', plaintext: { digest: digest(data), size: data.length }, device, devicePublic: dev.publicKey, operatorSecret: op.secretKey, operatorPublic: op.publicKey,
    notBefore: NOW - 1000, notAfter: NOW + 3600_000, rate: 1000, burst: 1000,
  });

  it('signs for a registered device and pins the file by its digest', async () => {
    const j = await prepareJob({ device: 'p1', file: 'part.gcode' }, ctx());
    expect(j.source).toEqual({ kind: 'file', sha256: toHex(digest(body)), name: 'part.gcode' });
    expect(readFileSync(files.path(toHex(digest(body))))).toEqual(Buffer.from(body));
    writeFileSync(join(dir, 'part.gcode'), 'changed'); // the job keeps its own copy
    expect(readFileSync(files.path(toHex(digest(body))))).toEqual(Buffer.from(body));
    writeFileSync(join(dir, 'part.gcode'), body);
  });

  it('refuses what it cannot stand behind, with a message that says why', async () => {
    const cases: [object, Partial<SubmitContext>, RegExp][] = [
      [{ device: '../p1', file: 'part.gcode' }, {}, /"device" must be a device id/],
      [{ device: 'p1' }, {}, /either "file" .* or "jid"/],
      [{ device: 'p1', file: '../etc/passwd' }, {}, /file name/],
      [{ device: 'p1', file: 'nothing.gcode' }, {}, /no file named/],
      [{ device: 'p2', file: 'part.gcode' }, {}, /not in the service's registry/],
      [{ device: 'p1', file: 'part.gcode' }, { operator: undefined }, /holds no operator key/],
      [{ device: 'p1', file: 'part.gcode', tx: toHex(signed('p9').tx.bytes), licence: '00'.repeat(32) }, {}, /for device "p9"/],
      [{ device: 'p1', file: 'part.gcode', tx: toHex(signed('p1', new Uint8Array(3)).tx.bytes), licence: '00'.repeat(32) }, {}, /another file/],
      [{ device: 'p1', file: 'part.gcode', tx: toHex(signed().tx.bytes) }, {}, /"licence"/],
      [{ device: 'p1', file: 'part.gcode', tx: 'zz' }, {}, /"tx" must be/],
      [{ device: 'p1', file: 'part.gcode', prints: 0 }, {}, /"prints"/],
      [{ device: 'p1', jid: '00'.repeat(16), licence: '00'.repeat(32) }, {}, /keys service/],
      [{ device: 'p1', jid: '00'.repeat(16), size: 10, digest: '00'.repeat(32), uploadHash: '00'.repeat(32) }, {}, /no keys service/],
    ];
    for (const [req, o, re] of cases) await expect(prepareJob(req as never, ctx(o)), JSON.stringify(req)).rejects.toThrow(re);
    await expect(prepareJob({ device: 'p1', file: 'part.gcode', prints: 0 }, ctx())).rejects.toBeInstanceOf(BadRequestError);
  });

  it('an upload over the limit leaves nothing behind, under its name or beside it', async () => {
    const small = new FileStore(join(tmp, 'small'), 100);
    await expect(small.put('big.gcode', Readable.from([Buffer.alloc(60), Buffer.alloc(60)]))).rejects.toThrow(/over the limit/);
    expect(await small.list()).toEqual([]);
    expect((await small.put('ok.gcode', Readable.from([Buffer.from('G28\n')]))).size).toBe(4);
    expect((await small.list()).map((f) => f.name)).toEqual(['ok.gcode']);
  });
});
