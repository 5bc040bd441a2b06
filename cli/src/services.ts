/**
 * @module services
 * What the commands of protected jobs share (SPEC §16.1): the connection of a party to the
 * broker with its own identity and role, and its service inbox ([LM-SVC-7]); the other parties it
 * talks to, each named by id and pinned to its public key ([LM-SVC-6]); the keys a service
 * trusts; and waiting for SIGINT or SIGTERM.
 */
import { type RoleName, errorMessage, fromHex } from '@livematrix/spec';
import type { IdentityFile } from '@livematrix/spec/keyfile';
import { ServiceEndpoint, type ServicePeer } from '@livematrix/gateway/services';
import { UsageError, type Values, list, need, opt } from './args.js';
import { TLS_OPTIONS, connectAs, connection } from './connection.js';
import { RateLimitedLog } from './log.js';

const HEX32 = /^[0-9a-fA-F]{64}$/;

/** The options every command of a party on the broker takes. */
export const CONNECT_OPTIONS = { url: { type: 'string' }, credentials: { type: 'string' }, fleet: { type: 'string' }, ...TLS_OPTIONS } as const;

/** Every value of a repeatable option of public keys (64 hex digits each). */
export function hexKeys(values: Values, name: string): Uint8Array[] {
  return list(values, name).map((h) => {
    if (!HEX32.test(h)) throw new UsageError(`--${name} must be 64 hex digits (an Ed25519 public key), got "${h}"`);
    return fromHex(h);
  });
}

/** Another party: `--NAME ID` and `--NAME-key HEX` (its identity key: only messages it signs are taken, [LM-SVC-6]). */
export function peerOption(values: Values, name: string): ServicePeer {
  const id = need(values, name);
  const key = need(values, `${name}-key`);
  if (!HEX32.test(key)) throw new UsageError(`--${name}-key must be 64 hex digits (the Ed25519 public key "livematrix keygen" printed for ${id})`);
  return { id, publicKey: fromHex(key) };
}

/**
 * Several parties of one kind: `--NAME ID[,ID...]` and `--NAME-key HEX[,HEX...]`, paired in
 * order (store instances on one database, asked in turn).
 */
export function peersOption(values: Values, name: string): ServicePeer[] {
  const ids = need(values, name).split(',').map((x) => x.trim());
  const keys = need(values, `${name}-key`).split(',').map((x) => x.trim());
  if (ids.length !== keys.length) throw new UsageError(`--${name} names ${ids.length} id(s) but --${name}-key ${keys.length} key(s): give one key per id, in the same order`);
  return ids.map((id, i) => {
    const key = keys[i] as string;
    if (id === '') throw new UsageError(`--${name}: an empty id`);
    if (!HEX32.test(key)) throw new UsageError(`--${name}-key must be 64 hex digits (the Ed25519 public key "livematrix keygen" printed for ${id})`);
    return { id, publicKey: fromHex(key) };
  });
}

/**
 * Connects `identity` to the broker as `role` and subscribes to its service inbox
 * ([LM-SVC-7]); refusals, drops and retries go to stderr, at most 10 lines per 10 s.
 */
export async function serviceEndpoint(values: Values, identity: IdentityFile, role: RoleName, label: string = role): Promise<{ ep: ServiceEndpoint; log: RateLimitedLog }> {
  const conn = connection(values);
  const fleet = opt(values, 'fleet', 'default');
  const log = new RateLimitedLog((l) => console.error(`${label}: ${l}`), 'service messages');
  const ep = await connectAs(conn, identity, role, fleet, () => ServiceEndpoint.connect({
    url: conn.url, fleet, id: identity.id, role, identity, auth: conn.auth, log: (l) => log.line(l), ...(conn.tls ? { tls: conn.tls } : {}),
  }));
  ep.link.onError((e) => console.error(`${label}: broker connection: ${errorMessage(e)}; reconnecting`));
  return { ep, log };
}

/** Resolves with the first SIGINT or SIGTERM. */
export function untilSignal(): Promise<NodeJS.Signals> {
  return new Promise((r) => {
    const on = (s: NodeJS.Signals) => {
      process.off('SIGINT', on);
      process.off('SIGTERM', on);
      r(s);
    };
    process.on('SIGINT', on);
    process.on('SIGTERM', on);
  });
}
