/**
 * @module commands/keys
 * Keys and transactions: `livematrix keygen` (an identity file), `livematrix sign` (a streaming
 * transaction signed by the operator), and reading a transaction file back for the gateway.
 */
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { createIdentityFile, readIdentityFile } from '@livematrix/spec/keyfile';
import { createTx, fromHex, toHex } from '@livematrix/spec';
import { EXIT, UsageError, hexKey, need, num, parse } from '../args.js';
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
  const h = createHash('sha256');
  let size = 0;
  for await (const b of createReadStream(path)) {
    h.update(b as Buffer);
    size += (b as Buffer).length;
  }
  return { digest: new Uint8Array(h.digest()), size };
}

export async function sign(argv: string[]): Promise<number> {
  const { values } = parse(argv, {
    operator: { type: 'string' }, job: { type: 'string' }, device: { type: 'string' }, 'device-key': { type: 'string' }, 'gateway-key': { type: 'string' },
    rate: { type: 'string' }, burst: { type: 'string' }, hours: { type: 'string' }, prints: { type: 'string' }, out: { type: 'string' },
  });
  if (values['help']) return help('sign');
  const op = readIdentityFile(need(values, 'operator'));
  const jobFile = need(values, 'job');
  if (!existsSync(jobFile)) throw new UsageError(`no such job file: ${jobFile}`);
  const plaintext = await fileDigest(jobFile);
  const now = Date.now();
  const { tx, licence } = createTx({
    job: jobFile.split('/').pop()!.slice(0, 128), plaintext, device: need(values, 'device'),
    devicePublic: hexKey(values, 'device-key'), operatorSecret: op.secretKey, operatorPublic: op.publicKey, notBefore: now - 60_000,
    notAfter: now + num(values, 'hours', 24, 0.01, 720) * 3600_000, rate: num(values, 'rate', 100_000, 1), burst: num(values, 'burst', 2 ** 20, 256),
    prints: num(values, 'prints', 1, 1, 1e6), ...(values['gateway-key'] ? { gatewayPublic: hexKey(values, 'gateway-key') } : {}),
  });
  const out = need(values, 'out');
  writeFileSync(out + '.tmp', JSON.stringify({ kind: 'livematrix-transaction', tx: toHex(tx.bytes), licence: toHex(licence), txh: toHex(tx.hash) }, null, 2) + '\n', { mode: 0o600 });
  renameSync(out + '.tmp', out);
  console.log(`wrote ${out}: job ${tx.body.job}, ${plaintext.size} bytes, device ${tx.body.device}, valid until ${new Date(tx.body.naf).toISOString()}`);
  return EXIT.ok;
}

/** The transaction and licence secret of a file written by `livematrix sign`. */
export function readTx(path: string): { tx: Uint8Array; licence: Uint8Array } {
  if (!existsSync(path)) throw new UsageError(`no such transaction file: ${path}`);
  const j = JSON.parse(readFileSync(path, 'utf8')) as { tx?: string; licence?: string };
  if (typeof j.tx !== 'string' || typeof j.licence !== 'string') throw new UsageError(`${path} is not a transaction file from "livematrix sign"`);
  return { tx: fromHex(j.tx), licence: fromHex(j.licence) };
}
