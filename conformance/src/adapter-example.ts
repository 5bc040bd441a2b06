#!/usr/bin/env node
/**
 * @module adapter-example
 * An example vectors-profile adapter: reads one JSON request per line on stdin, answers one JSON
 * line on stdout, using @livematrix/spec. A vendor writes the same in their own language
 * around their own implementation (conformance/README.md has the protocol).
 */
import { createInterface } from 'node:readline';
import { LmError, Ratchet, Revocations, contentChain, openProtectedChunk, sealProtectedChunk, unwrapChunkKey, verifyUpload, type SuiteId, decodeFrame, decodeTx, verifyRevocation, verifyTicket, deriveSessionKeys, ecdh, fromHex, hint, openChunk, pack, reasonName, sealChunk, shiftedSymbol, toHex, transcriptHash, unpack, verifyFrame, verifyTx, wrapChunkKey, errorMessage } from '@livematrix/spec';

type Req = Record<string, unknown> & { id: number; op: string };
const h = (x: unknown) => fromHex(String(x));
const n = (x: unknown) => Number(x);

function handle(r: Req): Record<string, unknown> {
  switch (r.op) {
    case 'hint':
      return { hint: toHex(hint(n(r['suite']) as SuiteId, h(r['hk']), n(r['w']), n(r['L']), n(r['g']))) };
    case 'pack':
      return { symbols: [...pack(h(r['bytes']), n(r['w']))] };
    case 'shift': {
      const syms = r['symbols'] as number[];
      return { shifted: syms.map((_, j) => j).concat(syms.length).map((j) => shiftedSymbol(syms, n(r['w']), n(r['sh']), j)) };
    }
    case 'unpack':
      return { bytes: toHex(unpack(r['symbols'] as number[], n(r['w']), n(r['n']))) };
    case 'ecdh':
      return { z: toHex(ecdh(h(r['secret']), h(r['peerPublic']))) };
    case 'keys': {
      const z = ecdh(h(r['secret']), h(r['peerPublic']));
      const k = deriveSessionKeys(z, h(r['licence']), transcriptHash(h(r['offer']), h(r['accept'])));
      const chain = (ck: Uint8Array) => {
        const rc = new Ratchet(ck, n(r['r0']));
        return (r['revisions'] as number[]).map((rev) => {
          const x = rc.keysFor(rev);
          return { revision: rev, hk: toHex(x.hk), wk: toHex(x.wk) };
        });
      };
      return { ckG2d0: toHex(k.ckG2d), ckD2g0: toHex(k.ckD2g), fkG2d: toHex(k.fkG2d), fkD2g: toHex(k.fkD2g), g2d: chain(k.ckG2d), d2g: chain(k.ckD2g) };
    }
    case 'chunk_seal':
      return { ciphertext: toHex(sealChunk(h(r['key']), h(r['sid']), n(r['index']), h(r['plaintext']))) };
    case 'chunk_open':
      return { plaintext: toHex(openChunk(h(r['key']), h(r['sid']), n(r['index']), h(r['ciphertext']))) };
    case 'wrap':
      return { wrapped: toHex(wrapChunkKey(h(r['wrapKey']), h(r['sid']), n(r['index']), h(r['chunkKey']))) };
    case 'frame': {
      const f = decodeFrame(h(r['hex']));
      verifyFrame(f, { ...(r['macKey'] ? { mac: h(r['macKey']) } : {}), ...(r['signerPublic'] ? { signer: h(r['signerPublic']) } : {}) });
      return { type: f.type };
    }
    case 'tx': {
      const c = r['context'] as { now: number; trustedOperators: string[]; device: { id: string; publicKey: string }; gatewayPublic: string; printsUsed: number };
      const tx = verifyTx(h(r['tx']), { now: c.now, trustedOperators: c.trustedOperators.map(fromHex), device: { id: c.device.id, publicKey: fromHex(c.device.publicKey) }, gatewayPublic: fromHex(c.gatewayPublic), printsUsed: c.printsUsed });
      return { txh: toHex(tx.hash) };
    }
    case 'ticket': {
      const c = r['context'] as { device: string; devicePublic: string; txh: string; now: number };
      const t = verifyTicket(h(r['ticket']), { device: c.device, devicePublic: fromHex(c.devicePublic), txh: fromHex(c.txh), now: c.now });
      return { ticketId: toHex(t.body.id) }; // not `id`: that is the request's
    }
    case 'revocation':
      return { seq: verifyRevocation(h(r['list']), (r['trustedOperators'] as string[]).map(fromHex)).seq };
    case 'revocation_refusal': {
      const held = new Revocations();
      held.offer(h(r['list']), (r['trustedOperators'] as string[]).map(fromHex));
      const tx = decodeTx(h(r['tx']));
      const e = held.refusal(tx.body, tx.hash, n(r['now']));
      if (e) throw e;
      return { refused: false };
    }
    case 'revocation_sequence': {
      const lists = r['lists'] as string[];
      const held = new Revocations();
      return {
        held: lists.map((x) => {
          held.offer(h(x), (r['trustedOperators'] as string[]).map(fromHex));
          return held.current ? lists.indexOf(toHex(held.current)) : -1;
        }),
      };
    }
    case 'protected_seal':
      return { ciphertext: toHex(sealProtectedChunk(h(r['key']), h(r['jid']), n(r['index']), h(r['plaintext']))) };
    case 'protected_open':
      return { plaintext: toHex(openProtectedChunk(h(r['key']), h(r['jid']), n(r['index']), h(r['ciphertext']))) };
    case 'upload':
      return { uh: toHex(verifyUpload(h(r['upload']), (r['trustedOwners'] as string[]).map(fromHex)).hash) };
    case 'content_keys': {
      const ckc = contentChain(h(r['licence']), h(r['th']));
      const rc = new Ratchet(ckc, n(r['r0']));
      return { ckc: toHex(ckc), wrapKeys: (r['revisions'] as number[]).map((rev) => ({ revision: rev, wk: toHex(rc.keysFor(rev).wk) })) };
    }
    case 'content_unwrap': {
      const wk = new Ratchet(contentChain(h(r['licence']), h(r['th'])), n(r['r0'])).keysFor(n(r['revision'])).wk;
      return { chunkKey: toHex(unwrapChunkKey(wk, h(r['sid']), n(r['index']), h(r['wrapped']))) };
    }
    default:
      throw new Error(`unknown op ${r.op}`);
  }
}

const rl = createInterface({ input: process.stdin });
rl.on('line', (line) => {
  let id = -1;
  try {
    const r = JSON.parse(line) as Req;
    id = r.id;
    process.stdout.write(JSON.stringify({ id, ok: true, ...handle(r) }) + '\n');
  } catch (e) {
    process.stdout.write(JSON.stringify({ id, ok: false, error: e instanceof LmError ? reasonName(e.code) : `internal: ${errorMessage(e)}` }) + '\n');
  }
});
