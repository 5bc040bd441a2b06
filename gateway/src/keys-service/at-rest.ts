/**
 * @module keys-service/at-rest
 * Secrets at rest in the keys service's database ([LM-SVC-2], [LM-SVC-3], [LM-PROT-2]): each
 * is `nonce(12 random) ‖ ChaCha20-Poly1305(K_rest, nonce, secret, aad = table ‖ 0x00 ‖ row key)`
 * under `K_rest = HKDF-SHA-256(ikm = the service's X25519 secret, info = "lm2 at rest")`. The
 * aad names the table as well as the row, so a sealed value moved to another row or table does
 * not open.
 */
import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';
import { LmError, Reason, ascii, concatBytes, wipe } from '@livematrix/spec';

const TAG = 16;
const NONCE = 12;

/** The tables whose rows hold sealed values; part of each value's aad. */
export type SealedTable = 'ks_epoch' | 'ks_jobs' | 'ks_chunk_keys' | 'ks_licences';

/** Seals and opens the service's secrets under K_rest. */
export class AtRest {
  private readonly key: Uint8Array;

  constructor(x25519Secret: Uint8Array) {
    this.key = new Uint8Array(hkdfSync('sha256', x25519Secret, new Uint8Array(0), ascii('lm2 at rest'), 32));
  }

  seal(table: SealedTable, rowKey: Uint8Array, secret: Uint8Array): Uint8Array {
    const nonce = new Uint8Array(randomBytes(NONCE));
    const c = createCipheriv('chacha20-poly1305', this.key, nonce, { authTagLength: TAG });
    c.setAAD(aad(table, rowKey), { plaintextLength: secret.length });
    const body = c.update(secret);
    c.final();
    const out = concatBytes(nonce, body, c.getAuthTag());
    body.fill(0);
    return out;
  }

  /** Opens a sealed value; throws LmError `auth` when it was sealed for another row, table or key. */
  open(table: SealedTable, rowKey: Uint8Array, sealed: Uint8Array): Uint8Array {
    if (sealed.length < NONCE + TAG) throw new LmError(Reason.auth, `${table}: sealed value of ${sealed.length} bytes is too short`);
    const n = sealed.length - NONCE - TAG;
    const d = createDecipheriv('chacha20-poly1305', this.key, sealed.subarray(0, NONCE), { authTagLength: TAG });
    d.setAAD(aad(table, rowKey), { plaintextLength: n });
    d.setAuthTag(sealed.subarray(NONCE + n));
    const out = new Uint8Array(n);
    const body = d.update(sealed.subarray(NONCE, NONCE + n));
    out.set(body);
    body.fill(0);
    try {
      d.final();
    } catch {
      out.fill(0);
      throw new LmError(Reason.auth, `${table}: a sealed value does not open under this service's key (another identity, or tampered)`);
    }
    return out;
  }

  /** Erases K_rest; the object is unusable afterwards. */
  destroy(): void {
    wipe(this.key);
  }
}

function aad(table: SealedTable, rowKey: Uint8Array): Uint8Array {
  return concatBytes(ascii(table), Uint8Array.of(0), rowKey);
}

/** 8-byte big-endian (row keys of chunk keys and epochs). */
export function u64be(x: number): Uint8Array {
  if (!Number.isSafeInteger(x) || x < 0) throw new LmError(Reason.schema, `u64be: ${x} is not a safe non-negative integer`);
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, BigInt(x));
  return b;
}
