/**
 * @module protected-job
 * A protected job as the suite plays the sender side of SPEC.md §16: the owner uploads the job
 * ([LM-PROT-1]) to a throw-away keys service, which opens the envelope for the chunk keys and the
 * playbook; the suite's gateway then streams the owner's ciphertext in the playbook's order and,
 * as the keys service, wraps the chunk keys under each session's content chain ([LM-PROT-2],
 * session.ts). No store is needed: the segments stay in memory.
 */
import { type SignedUpload, identityKeyPair, openEnvelope, sealUpload, toHex, wipe, x25519KeyPair } from '@livematrix/spec';

export interface ProtectedJob {
  jid: Uint8Array;
  /** the owner-signed upload transaction; its hash is the `uh` of the job's streaming transactions */
  upload: SignedUpload;
  /** ct_j in chunk order: the real segments in the playbook's order, the last trimmed to its length */
  ciphertexts: Uint8Array[];
  /** k_j, as the keys service holds them */
  keys: Uint8Array[];
}

/**
 * Uploads `data` as a protected job under a throw-away owner and keys service key pair, and
 * opens its envelope as the keys service would ([LM-PROT-1], [LM-SVC-2]).
 */
export function uploadJob(data: Uint8Array, o: { C?: number } = {}): ProtectedJob {
  const owner = identityKeyPair();
  const keysService = x25519KeyPair();
  const up = sealUpload(data, { owner, keysService: keysService.publicKey, ...(o.C !== undefined ? { C: o.C } : {}), now: Date.now() });
  const book = openEnvelope(up.envelope, keysService, up.upload);
  wipe(owner.secretKey, keysService.secretKey);
  const stored = new Map(up.segments.map((s) => [toHex(s.id), s.bytes]));
  const ciphertexts = book.order.map((id, j) => {
    const seg = stored.get(toHex(id));
    if (!seg) throw new Error(`the upload has no segment ${toHex(id)} for chunk ${j}`);
    // every segment is C + 16 bytes; the last chunk's ciphertext is `last` bytes of its segment ([LM-SVC-1])
    return j === book.order.length - 1 ? seg.subarray(0, book.last) : seg;
  });
  return { jid: up.jid, upload: up.upload, ciphertexts, keys: book.keys };
}
