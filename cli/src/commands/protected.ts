/**
 * @module commands/protected
 * What people do with protected jobs (SPEC §16), over the broker with their own identity
 * ([LM-SVC-7]): `livematrix upload` (the owner encrypts a file on this machine and sends only
 * ciphertext among decoys to the store and the sealed envelope to the keys service,
 * [LM-PROT-1], [LM-SVC-1], [LM-SVC-2]), `livematrix delete` (the owner's delete, with both
 * services' signed receipts, [LM-SVC-5]) and `livematrix grant` (the operator hands a
 * transaction's licence secret to the keys service, never to a gateway, [LM-PROT-2]).
 */
import { existsSync, readFileSync } from 'node:fs';
import { LmError, decodeTx, edPublicToX25519, equalBytes, fromHex, sealUpload, signDelete, toHex, verifyDeletionReceipt, wipe } from '@livematrix/spec';
import { readIdentityFile } from '@livematrix/spec/keyfile';
import { keysClient, storeClient } from '@livematrix/gateway/services';
import { EXIT, Failure, UsageError, need, num, parse } from '../args.js';
import { help } from '../help.js';
import { Progress, mb } from '../progress.js';
import { CONNECT_OPTIONS, peerOption, serviceEndpoint } from '../services.js';

const PEERS = { store: { type: 'string' }, 'store-key': { type: 'string' }, 'keys-service': { type: 'string' }, 'keys-service-key': { type: 'string' } } as const;

export async function upload(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, { owner: { type: 'string' }, density: { type: 'string' }, chunk: { type: 'string' }, ...PEERS, ...CONNECT_OPTIONS });
  if (values['help']) return help('upload');
  const file = positionals[0];
  if (!file) throw new UsageError('the FILE to upload is required');
  if (!existsSync(file)) throw new UsageError(`no such file: ${file}`);
  const owner = readIdentityFile(need(values, 'owner'));
  const storePeer = peerOption(values, 'store');
  const ksPeer = peerOption(values, 'keys-service');
  const C = num(values, 'chunk', 4096, 256, 65536);
  const density = num(values, 'density', 0.5, 0, 0.95);
  const plaintext = new Uint8Array(readFileSync(file));
  // [LM-PROT-1]: encrypted here; only ciphertext among decoys and the sealed envelope leave
  const up = sealUpload(plaintext, { owner, keysService: edPublicToX25519(ksPeer.publicKey), C, density, now: Date.now() });
  plaintext.fill(0);
  const b = up.upload.body;
  const { ep, log } = await serviceEndpoint(values, owner, 'owner', 'upload');
  try {
    console.error(`upload ${file}: ${mb(b.size)} in ${b.n} chunks under ${b.n} fresh keys, ${up.segments.length} segments of ${b.C + 16} bytes (${up.segments.length - b.n} decoys) to store ${storePeer.id}`);
    const p = new Progress('upload', up.segments.length * (b.C + 16));
    await storeClient(ep, storePeer).put(up.segments, (n) => p.update(n * (b.C + 16), `${n}/${up.segments.length} segments`));
    p.done();
    const jid = await keysClient(ep, ksPeer).register(up.upload.bytes, up.envelope);
    const uh = toHex(up.upload.hash);
    console.error(`registered job ${jid} with keys service ${ksPeer.id}: its chunk keys and playbook, sealed to it ([LM-SVC-2])`);
    console.log(JSON.stringify({ jid, uh, size: b.size, jd: toHex(b.jd), C: b.C, n: b.n, segments: b.segments }));
    console.error(`The operator signs a transaction for it with:\n  livematrix sign --operator OPERATOR.json --protected-jid ${jid} --upload-hash ${uh} --size ${b.size} --digest ${toHex(b.jd)} `
      + '--device ID --device-key HEX --gateway-key HEX --out tx.json --licence-out grant.json');
    return EXIT.ok;
  } finally {
    log.flush();
    await ep.close();
  }
}

export async function deleteCmd(argv: string[]): Promise<number> {
  const { values } = parse(argv, { owner: { type: 'string' }, jid: { type: 'string' }, ...PEERS, ...CONNECT_OPTIONS });
  if (values['help']) return help('delete');
  const owner = readIdentityFile(need(values, 'owner'));
  const jidHex = need(values, 'jid');
  if (!/^[0-9a-fA-F]{32}$/.test(jidHex)) throw new UsageError('--jid must be 32 hex digits (the "jid" that "livematrix upload" printed)');
  const storePeer = peerOption(values, 'store');
  const ksPeer = peerOption(values, 'keys-service');
  const del = signDelete(fromHex(jidHex), owner, Date.now());
  const { ep, log } = await serviceEndpoint(values, owner, 'owner', 'delete');
  try {
    // [LM-SVC-5]: the keys service first (it knows the job's segments and signs their list), then the store
    const d = await keysClient(ep, ksPeer).delete(del);
    const kr = verifyDeletionReceipt(d.receipt, ksPeer.publicKey);
    console.log(JSON.stringify({ receipt: 'keys service', service: kr.service, jid: toHex(kr.jid), removed: kr.removed, time: new Date(kr.time).toISOString(), dh: toHex(kr.dh), bytes: toHex(d.receipt) }));
    let sr;
    try {
      const receipt = await storeClient(ep, storePeer).delete(del, d.ids, d.sig);
      sr = { ...verifyDeletionReceipt(receipt, storePeer.publicKey), bytes: receipt };
    } catch (e) {
      throw new Failure(`the keys service deleted job ${jidHex}, but the store did not remove its ${d.ids.length / 16} segments: ${e instanceof Error ? e.message : String(e)}. Run this command again within 10 minutes (the keys service keeps the signed segment list that long).`);
    }
    console.log(JSON.stringify({ receipt: 'store', service: sr.service, jid: toHex(sr.jid), removed: sr.removed, time: new Date(sr.time).toISOString(), dh: toHex(sr.dh), bytes: toHex(sr.bytes) }));
    console.error(`deleted job ${jidHex}: keys service ${ksPeer.id} removed ${kr.removed} keys and licences, store ${storePeer.id} removed ${sr.removed} segments; both receipts verify`);
    return EXIT.ok;
  } finally {
    log.flush();
    await ep.close();
  }
}

/** A licence file of `livematrix sign --licence-out`: the transaction and its licence secret. */
function readGrant(path: string): { tx: Uint8Array; licence: Uint8Array } {
  if (!existsSync(path)) throw new UsageError(`no such file: ${path}`);
  let j: { tx?: unknown; licence?: unknown };
  try {
    j = JSON.parse(readFileSync(path, 'utf8')) as typeof j;
  } catch (e) {
    throw new UsageError(`${path} is not JSON: ${e instanceof Error ? e.message : String(e)}`);
  }
  if (typeof j.tx !== 'string' || typeof j.licence !== 'string') throw new UsageError(`${path} holds no licence secret: give the file "livematrix sign --licence-out" wrote`);
  return { tx: fromHex(j.tx), licence: fromHex(j.licence) };
}

export async function grant(argv: string[]): Promise<number> {
  const { values } = parse(argv, { tx: { type: 'string' }, identity: { type: 'string' }, 'keys-service': { type: 'string' }, 'keys-service-key': { type: 'string' }, ...CONNECT_OPTIONS });
  if (values['help']) return help('grant');
  const { tx, licence } = readGrant(need(values, 'tx'));
  const body = decodeTx(tx).body;
  if (!body.jid) throw new UsageError('this transaction names no protected job: it goes to a gateway with its licence ("livematrix stream FILE"), not to a keys service');
  const identity = readIdentityFile(need(values, 'identity'));
  const ksPeer = peerOption(values, 'keys-service');
  const { ep, log } = await serviceEndpoint(values, identity, 'owner', 'grant');
  try {
    const txh = await keysClient(ep, ksPeer).grant(tx, licence);
    console.log(JSON.stringify({ txh, jid: toHex(body.jid), device: body.device, keysService: ksPeer.id, prints: body.prints, validUntil: new Date(body.naf).toISOString() }));
    console.error(`keys service ${ksPeer.id} holds the licence secret of transaction ${txh}${equalBytes(body.opk, identity.publicKey) ? '' : ` (signed by operator key ${toHex(body.opk).slice(0, 16)}...)`}; the gateway streams it with "livematrix stream --protected"`);
    return EXIT.ok;
  } catch (e) {
    if (e instanceof LmError) throw new Failure(`keys service ${ksPeer.id} refused the grant: ${e.message}`);
    throw e;
  } finally {
    wipe(licence);
    log.flush();
    await ep.close();
  }
}
