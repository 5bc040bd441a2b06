/**
 * @module commands/keys
 * Keys and transactions: `livematrix keygen` (an identity file), `livematrix sign` (a streaming
 * transaction signed by the operator), and reading a transaction file back for the gateway.
 */
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { fileSha256 } from '@livematrix/gateway/fleet';
import { createIdentityFile, readIdentityFile } from '@livematrix/spec/keyfile';
import { createTx, fromHex, toHex } from '@livematrix/spec';
import { EXIT, UsageError, type Values, hexKey, need, num, parse } from '../args.js';
import { help } from '../help.js';

export function keygen(argv: string[]): number {
  const { values } = parse(argv, { id: { type: 'string' }, out: { type: 'string' } });
  if (values['help']) return help('keygen');
  const f = createIdentityFile(need(values, 'out'), need(values, 'id'));
  console.log(`wrote ${need(values, 'out')} (mode 600) for "${f.id}"\npublic key: ${toHex(f.publicKey)}`);
  return EXIT.ok;
}

/** SHA-256 and size of a file, read as a stream (jobs may be larger than memory allows). */
export async function fileDigest(path: string): Promise<{ digest: Uint8Array; size: number }> {
  const d = await fileSha256(path);
  return { digest: fromHex(d.sha256), size: d.size };
}

export async function sign(argv: string[]): Promise<number> {
  const { values } = parse(argv, {
    operator: { type: 'string' }, job: { type: 'string' }, device: { type: 'string' }, 'device-key': { type: 'string' }, 'gateway-key': { type: 'string' },
    rate: { type: 'string' }, burst: { type: 'string' }, hours: { type: 'string' }, prints: { type: 'string' }, out: { type: 'string' },
    'protected-jid': { type: 'string' }, 'upload-hash': { type: 'string' }, size: { type: 'string' }, digest: { type: 'string' }, 'licence-out': { type: 'string' },
  });
  if (values['help']) return help('sign');
  const op = readIdentityFile(need(values, 'operator'));
  const prot = protectedJob(values);
  const jobFile = typeof values['job'] === 'string' ? values['job'] : undefined;
  if (jobFile !== undefined && !existsSync(jobFile)) throw new UsageError(`no such job file: ${jobFile}`);
  if (jobFile === undefined && !prot) throw new UsageError('--job is required');
  // a protected job's digest and size are its upload's ("livematrix upload" prints them): the file is not needed
  const plaintext = jobFile !== undefined ? await fileDigest(jobFile) : { digest: hex32(values, 'digest'), size: num(values, 'size', 0, 0) };
  if (jobFile === undefined && values['size'] === undefined) throw new UsageError('--size is required without --job');
  const now = Date.now();
  const { tx, licence } = createTx({
    job: (jobFile ?? `protected-${toHex(prot!.jid)}`).split('/').pop()!.slice(0, 128), plaintext, device: need(values, 'device'),
    devicePublic: hexKey(values, 'device-key'), operatorSecret: op.secretKey, operatorPublic: op.publicKey, notBefore: now - 60_000,
    notAfter: now + num(values, 'hours', 24, 0.01, 720) * 3600_000, rate: num(values, 'rate', 100_000, 1), burst: num(values, 'burst', 2 ** 20, 256),
    prints: num(values, 'prints', 1, 1, 1e6), ...(values['gateway-key'] ? { gatewayPublic: hexKey(values, 'gateway-key') } : {}),
    ...(prot ? { protectedJob: prot } : {}),
  });
  const out = need(values, 'out');
  const txh = toHex(tx.hash);
  if (prot) {
    // [LM-PROT-2], [LM-SVC-4]: the gateway's file holds no licence; the licence goes to the keys service ("livematrix grant")
    const licenceOut = need(values, 'licence-out');
    writeJson(licenceOut, { kind: 'livematrix-grant', tx: toHex(tx.bytes), licence: toHex(licence), txh, jid: toHex(prot.jid) });
    writeJson(out, { kind: 'livematrix-transaction', tx: toHex(tx.bytes), txh, jid: toHex(prot.jid) });
    licence.fill(0);
    console.log(`wrote ${out} (for the gateway: no licence) and ${licenceOut} (the licence, for "livematrix grant" to the keys service): protected job ${toHex(prot.jid)}, ${plaintext.size} bytes, device ${tx.body.device}, valid until ${new Date(tx.body.naf).toISOString()}`);
    return EXIT.ok;
  }
  writeJson(out, { kind: 'livematrix-transaction', tx: toHex(tx.bytes), licence: toHex(licence), txh });
  console.log(`wrote ${out}: job ${tx.body.job}, ${plaintext.size} bytes, device ${tx.body.device}, valid until ${new Date(tx.body.naf).toISOString()}`);
  return EXIT.ok;
}

/** Writes JSON owner-only, atomically. */
function writeJson(path: string, v: object): void {
  writeFileSync(path + '.tmp', JSON.stringify(v, null, 2) + '\n', { mode: 0o600 });
  renameSync(path + '.tmp', path);
}

function hex32(values: Values, name: string): Uint8Array {
  const s = need(values, name);
  if (!/^[0-9a-fA-F]{64}$/.test(s)) throw new UsageError(`--${name} must be 64 hex digits`);
  return fromHex(s);
}

/** --protected-jid and --upload-hash, both or neither ([LM-PROT-2]: a protected job's transaction names them). */
function protectedJob(values: Values): { jid: Uint8Array; uh: Uint8Array } | undefined {
  const jid = values['protected-jid'];
  const uh = values['upload-hash'];
  if (jid === undefined && uh === undefined) {
    if (values['licence-out'] !== undefined) throw new UsageError('--licence-out is for a protected job (--protected-jid)');
    return undefined;
  }
  if (typeof jid !== 'string' || !/^[0-9a-fA-F]{32}$/.test(jid)) throw new UsageError('--protected-jid must be 32 hex digits (the "jid" that "livematrix upload" printed)');
  return { jid: fromHex(jid), uh: hex32(values, 'upload-hash') };
}

/**
 * The transaction of a protected job from a file written by `livematrix sign --protected-jid`
 * (`--out`): a file that holds the licence secret is refused, since a protected job's gateway
 * must never hold it ([LM-PROT-2], [LM-SVC-4]).
 */
export function readProtectedTx(path: string): Uint8Array {
  if (!existsSync(path)) throw new UsageError(`no such transaction file: ${path}`);
  const j = JSON.parse(readFileSync(path, 'utf8')) as { tx?: unknown; licence?: unknown };
  if (typeof j.tx !== 'string') throw new UsageError(`${path} is not a transaction file from "livematrix sign"`);
  if (j.licence !== undefined) throw new UsageError(`${path} holds the licence secret: a protected job's gateway must not ([LM-SVC-4]). Give it the --out file of "livematrix sign --protected-jid"; the --licence-out file goes to the keys service ("livematrix grant")`);
  return fromHex(j.tx);
}

/** The transaction and licence secret of a file written by `livematrix sign`. */
export function readTx(path: string): { tx: Uint8Array; licence: Uint8Array } {
  if (!existsSync(path)) throw new UsageError(`no such transaction file: ${path}`);
  const j = JSON.parse(readFileSync(path, 'utf8')) as { tx?: string; licence?: string };
  if (typeof j.tx !== 'string' || typeof j.licence !== 'string') throw new UsageError(`${path} is not a transaction file from "livematrix sign"`);
  return { tx: fromHex(j.tx), licence: fromHex(j.licence) };
}
