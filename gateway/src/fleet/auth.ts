/**
 * @module fleet/auth
 * Who may use the fleet service's API ([LM-FLEET-5]): API keys, of which the service keeps only
 * the SHA-256, and short-lived operator tokens signed by a trusted operator key, which need no
 * state on the service at all.
 *
 * - API key: `lmk_` + 64 hex digits (32 random bytes).
 * - Operator token: `lmt.` + base64url(JSON { opk, iat, exp, sub }) + `.` + base64url(Ed25519
 *   signature over ascii("livematrix-api-token-v1") ‖ the JSON bytes); valid from `iat` - 60 s
 *   to `exp`, at most 30 days, under an operator key the service trusts.
 */
import { createHash, randomBytes } from 'node:crypto';
import { type IdentityKeyPair, ascii, concatBytes, equalBytes, fromHex, sign, toHex, verify } from '@livematrix/spec';
import type { FleetDb } from './types.js';

const TOKEN_CONTEXT = ascii('livematrix-api-token-v1');
const MAX_TOKEN_MS = 30 * 86_400_000;
const API_KEY_RE = /^lmk_[0-9a-f]{64}$/;

/** Who a request is from, for the audit trail. */
export interface Principal {
  /** "key:<name>" or "operator:<first 16 hex digits of the key>" */
  who: string;
}

export function hashApiKey(key: string): string {
  return createHash('sha256').update(key, 'utf8').digest('hex');
}

/** Makes an API key and stores its hash; the key itself is returned once and never kept. */
export async function createApiKey(db: FleetDb, name: string, now: number): Promise<{ id: string; key: string }> {
  if (!/^[A-Za-z0-9._ -]{1,64}$/.test(name)) throw new RangeError('"name" expected 1-64 of letters, digits, ".", "_", "-" and spaces');
  const key = `lmk_${randomBytes(32).toString('hex')}`;
  const id = `k-${randomBytes(4).toString('hex')}`;
  await db.addApiKey({ id, name, hash: hashApiKey(key), created: now, revoked: false });
  return { id, key };
}

/** An operator token, valid for `ms` from `now`. */
export function operatorToken(op: IdentityKeyPair, now: number, ms: number, sub = 'operator'): string {
  if (!(ms > 0 && ms <= MAX_TOKEN_MS)) throw new RangeError(`token lifetime expected 1 ms to ${MAX_TOKEN_MS} ms, got ${ms}`);
  const payload = ascii(JSON.stringify({ opk: toHex(op.publicKey), iat: now, exp: now + ms, sub: sub.slice(0, 64) }));
  return `lmt.${Buffer.from(payload).toString('base64url')}.${Buffer.from(sign(op.secretKey, concatBytes(TOKEN_CONTEXT, payload))).toString('base64url')}`;
}

/** Tokens whose signature verified, until they expire: a dashboard's requests cost one verification, not one each. */
const verified = new Map<string, { who: string; opk: Uint8Array; iat: number; exp: number }>();
const VERIFIED_MAX = 1024;

function checkOperatorToken(token: string, trusted: readonly Uint8Array[], now: number): Principal | undefined {
  const hit = verified.get(token);
  if (hit) {
    // the trust list and the clock are checked every time; only the signature is remembered
    const ok = trusted.some((k) => equalBytes(k, hit.opk)) && now <= hit.exp && now >= hit.iat - 60_000;
    return ok ? { who: hit.who } : undefined;
  }
  const parts = token.split('.');
  if (parts.length !== 3 || parts[0] !== 'lmt' || parts[1]!.length > 1024 || parts[2]!.length > 128) return undefined;
  const payload = new Uint8Array(Buffer.from(parts[1]!, 'base64url'));
  const sig = new Uint8Array(Buffer.from(parts[2]!, 'base64url'));
  let p: { opk?: unknown; iat?: unknown; exp?: unknown; sub?: unknown };
  try {
    p = JSON.parse(Buffer.from(payload).toString('utf8')) as typeof p;
  } catch {
    return undefined;
  }
  if (typeof p.opk !== 'string' || !/^[0-9a-f]{64}$/.test(p.opk) || typeof p.iat !== 'number' || typeof p.exp !== 'number') return undefined;
  const opk = fromHex(p.opk);
  if (!trusted.some((k) => equalBytes(k, opk))) return undefined;
  if (sig.length !== 64 || !verify(opk, concatBytes(TOKEN_CONTEXT, payload), sig)) return undefined;
  if (p.exp - p.iat > MAX_TOKEN_MS) return undefined;
  const who = `operator:${p.opk.slice(0, 16)}${typeof p.sub === 'string' ? `/${p.sub.slice(0, 32)}` : ''}`;
  if (verified.size >= VERIFIED_MAX) verified.delete(verified.keys().next().value as string);
  verified.set(token, { who, opk, iat: p.iat, exp: p.exp });
  if (now > p.exp || now < p.iat - 60_000) return undefined;
  return { who };
}

/**
 * The principal of an `Authorization: Bearer ...` header, or undefined: the request is refused
 * with 401 and changes nothing ([LM-FLEET-5]).
 */
export async function authenticate(header: string | undefined, db: FleetDb, trusted: readonly Uint8Array[], now: number): Promise<Principal | undefined> {
  const m = /^Bearer ([A-Za-z0-9_.-]{1,2048})$/.exec(header ?? '');
  if (!m) return undefined;
  const token = m[1]!;
  if (API_KEY_RE.test(token)) {
    const k = await db.apiKeyByHash(hashApiKey(token));
    return k && !k.revoked ? { who: `key:${k.name}` } : undefined;
  }
  if (token.startsWith('lmt.')) return checkOperatorToken(token, trusted, now);
  return undefined;
}
