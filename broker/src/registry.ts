/**
 * @module registry
 * The operator's registry of devices, gateways and the services of protected jobs (stores, keys
 * services, owners: [LM-SVC-7]): id, role, fleet, Ed25519 key, rate limits and, for a gateway,
 * the devices it serves. Kept in a JSON file the operator edits; reloaded without a
 * restart ([LM-BRK-5]).
 *
 * File format:
 * ```json
 * { "clients": [
 *   { "id": "printer-1", "role": "device", "fleet": "f1", "publicKey": "<64 hex>", "limits": { "framesPerSecond": 2000, "bytesPerSecond": 20000000 } },
 *   { "id": "gw-1", "role": "gateway", "fleet": "f1", "publicKey": "<64 hex>", "devices": ["printer-1"] } ] }
 * ```
 *
 * `devices` ([LM-BRK-9]): the ids of the devices of its fleet a gateway serves. It may publish to
 * those devices' `in` topics only, and read only their `state` and `out` topics. A gateway entry
 * without `devices` keeps the older, fleet-wide access (every device of its fleet): allowed for
 * compatibility, but the registry reports it in `warnings` (the broker logs them at load), since
 * any gateway of the fleet can then send frames to any device.
 *
 * Client ids ([LM-BRK-8]): a client id `lm-dev-{rest}` belongs to the registered device with the
 * longest id `i` for which `{rest}` begins with `i-`; `lm-gw-{rest}` likewise to a gateway. See
 * `clientIdOwner`.
 */
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { CLIENT_ID_PREFIX, ID_RE, LmError, Reason, Role, type RoleName, fromHex, toHex, ConfigError, errorMessage } from '@livematrix/spec';

export type { RoleName };
const ROLES = Object.keys(Role) as RoleName[];

export interface Limits {
  framesPerSecond: number;
  bytesPerSecond: number;
}

export const DEFAULT_LIMITS: Limits = { framesPerSecond: 5000, bytesPerSecond: 50_000_000 }; // [LM-BRK-4]

export interface RegistryEntry {
  id: string;
  role: RoleName;
  fleet: string;
  publicKey: Uint8Array;
  limits: Limits;
  /** gateways only: the devices it serves ([LM-BRK-9]); absent = every device of its fleet */
  devices?: readonly string[];
}

interface EntryJson {
  id?: unknown;
  role?: unknown;
  fleet?: unknown;
  publicKey?: unknown;
  limits?: { framesPerSecond?: unknown; bytesPerSecond?: unknown };
  devices?: unknown;
}

function parseEntry(e: EntryJson, i: number): RegistryEntry {
  const where = `clients[${i}]`;
  if (typeof e.id !== 'string' || !ID_RE.test(e.id)) throw new ConfigError(`${where}.id must be 1-64 of [A-Za-z0-9._-]`);
  if (typeof e.role !== 'string' || !(ROLES as string[]).includes(e.role)) throw new ConfigError(`${where}.role must be one of ${ROLES.map((r) => `"${r}"`).join(', ')}`);
  const role = e.role as RoleName;
  if (typeof e.fleet !== 'string' || !ID_RE.test(e.fleet)) throw new ConfigError(`${where}.fleet must be 1-64 of [A-Za-z0-9._-]`);
  if (typeof e.publicKey !== 'string' || !/^[0-9a-fA-F]{64}$/.test(e.publicKey)) throw new ConfigError(`${where}.publicKey must be 64 hex digits`);
  const lim = e.limits ?? {};
  const num = (x: unknown, d: number, name: string) => {
    if (x === undefined) return d;
    if (typeof x !== 'number' || !(x > 0)) throw new ConfigError(`${where}.limits.${name} must be a positive number`);
    return x;
  };
  let devices: string[] | undefined;
  if (e.devices !== undefined) {
    if (e.role !== 'gateway') throw new ConfigError(`${where}.devices is only for gateways`);
    if (!Array.isArray(e.devices) || !e.devices.every((d): d is string => typeof d === 'string' && ID_RE.test(d))) {
      throw new ConfigError(`${where}.devices must be an array of device ids (1-64 of [A-Za-z0-9._-])`);
    }
    devices = [...new Set(e.devices)];
  }
  return {
    id: e.id, role, fleet: e.fleet, publicKey: fromHex(e.publicKey),
    limits: { framesPerSecond: num(lim.framesPerSecond, DEFAULT_LIMITS.framesPerSecond, 'framesPerSecond'), bytesPerSecond: num(lim.bytesPerSecond, DEFAULT_LIMITS.bytesPerSecond, 'bytesPerSecond') },
    ...(devices ? { devices } : {}),
  };
}

/**
 * The client id prefix of an identity ([LM-BRK-8]): `lm-dev-{id}-`, `lm-gw-{id}-`, and for the
 * services of protected jobs ([LM-SVC-7]) `lm-st-{id}-` (a store), `lm-ks-{id}-` (a keys
 * service), `lm-own-{id}-` (an owner or operator).
 */
export function clientIdPrefix(e: Pick<RegistryEntry, 'id' | 'role'>): string {
  return `lm-${CLIENT_ID_PREFIX[e.role]}-${e.id}-`;
}

const PREFIX_ROLE = new Map<string, RoleName>(ROLES.map((r) => [CLIENT_ID_PREFIX[r], r]));

/** The registry, by id. */
export class Registry {
  private entries = new Map<string, RegistryEntry>();
  constructor(entries: Iterable<RegistryEntry> = [], readonly path?: string) {
    for (const e of entries) this.entries.set(e.id, e);
  }

  /** Parses registry JSON; throws LmError `schema` with the first problem. */
  static parse(text: string, path?: string): Registry {
    let j: { clients?: unknown };
    try {
      j = JSON.parse(text) as { clients?: unknown };
    } catch (e) {
      throw new ConfigError(`registry${path ? ` ${path}` : ''} is not JSON: ${errorMessage(e)}`);
    }
    if (!Array.isArray(j.clients)) throw new ConfigError('registry needs a "clients" array');
    const list = (j.clients as EntryJson[]).map(parseEntry);
    const ids = new Set<string>();
    for (const e of list) {
      if (ids.has(e.id)) throw new ConfigError(`registry lists "${e.id}" twice`);
      ids.add(e.id);
    }
    return new Registry(list, path);
  }

  static load(path: string): Registry {
    if (!existsSync(path)) throw new ConfigError(`registry file ${path} not found`);
    return Registry.parse(readFileSync(path, 'utf8'), path);
  }

  /** Re-reads the file; on a bad file keeps the current entries and throws. */
  reload(): void {
    if (!this.path) return;
    this.entries = Registry.load(this.path).entries;
  }

  get(id: string): RegistryEntry | undefined {
    return this.entries.get(id);
  }

  /**
   * The identity a client id belongs to ([LM-BRK-8]): for `lm-dev-{rest}` the registered device
   * with the longest id `i` such that `{rest}` begins with `i-` (so device `a` does not own
   * `lm-dev-a-b-1` while a device `a-b` is registered), for `lm-gw-{rest}` likewise a gateway;
   * undefined for any other client id.
   */
  clientIdOwner(clientId: string): RegistryEntry | undefined {
    const m = /^lm-([a-z]+)-/.exec(clientId);
    const role = m ? PREFIX_ROLE.get(m[1] as string) : undefined;
    if (!m || !role) return undefined;
    const rest = clientId.slice(m[0].length);
    for (let i = rest.lastIndexOf('-'); i > 0; i = rest.lastIndexOf('-', i - 1)) {
      const e = this.entries.get(rest.slice(0, i));
      if (e && e.role === role) return e;
    }
    return undefined;
  }

  /**
   * Problems worth a warning at load ([LM-BRK-9]): a gateway without `devices` reaches its whole
   * fleet; a listed id that is not a device of the gateway's fleet (yet) gives no access to one.
   */
  get warnings(): string[] {
    const out: string[] = [];
    for (const e of this.all()) {
      if (e.role !== 'gateway') continue;
      if (!e.devices) out.push(`gateway "${e.id}" has no "devices" list: it may send frames to every device of fleet "${e.fleet}" ([LM-BRK-9])`);
      for (const d of e.devices ?? []) {
        const dev = this.entries.get(d);
        if (dev?.role !== 'device' || dev.fleet !== e.fleet) out.push(`gateway "${e.id}" lists "${d}", which is not a registered device of fleet "${e.fleet}"`);
      }
    }
    return out;
  }

  upsert(e: RegistryEntry): void {
    this.entries.set(e.id, e);
  }

  remove(id: string): boolean {
    return this.entries.delete(id);
  }

  all(): RegistryEntry[] {
    return [...this.entries.values()];
  }

  toJSON(): string {
    return JSON.stringify({ clients: this.all().map((e) => ({ id: e.id, role: e.role, fleet: e.fleet, publicKey: toHex(e.publicKey), limits: e.limits, ...(e.devices ? { devices: e.devices } : {}) })) }, null, 2) + '\n';
  }

  /** Writes the registry to its file (atomically). */
  save(path = this.path): void {
    if (!path) throw new ConfigError('registry has no file');
    writeFileSync(path + '.tmp', this.toJSON());
    renameSync(path + '.tmp', path);
  }
}

/**
 * Topics a client may publish to and subscribe to ([LM-BRK-2]), as MQTT filters; a gateway with a
 * `devices` list only those devices' topics ([LM-BRK-9]). The fleet's revocation topic
 * ([LM-REVOKE-4]): gateways publish the operator's list there (any gateway of the fleet, whatever
 * its `devices`: the list is fleet-wide), devices and gateways subscribe to it, devices never
 * publish to it.
 */
export function aclFor(e: RegistryEntry): { publish: string[]; subscribe: string[] } {
  const f = `lm/1/${e.fleet}`;
  const revocation = `${f}/revocation`;
  // [LM-STATE-7]: a device's status topic is its own, read by the gateways that read its state topic
  if (e.role === 'device') return { publish: [`${f}/d/${e.id}/state`, `${f}/d/${e.id}/out`, `${f}/d/${e.id}/status`], subscribe: [`${f}/d/${e.id}/in`, revocation] };
  // [LM-SVC-7] gateways, stores, keys services and owners reach every service inbox of their
  // fleet and read only their own; devices reach none
  const services = { publish: `${f}/s/+/in`, subscribe: `${f}/s/${e.id}/in` };
  if (e.role !== 'gateway') return { publish: [services.publish], subscribe: [services.subscribe] };
  const served = e.devices ?? ['+'];
  return {
    publish: [...served.map((d) => `${f}/d/${d}/in`), `${f}/g/${e.id}/state`, `${f}/alarm`, revocation, services.publish],
    subscribe: [...served.flatMap((d) => [`${f}/d/${d}/state`, `${f}/d/${d}/out`, `${f}/d/${d}/status`]), `${f}/alarm`, revocation, services.subscribe],
  };
}

/** A Mosquitto ACL file (acl_file) with the same per-client isolation ([LM-BRK-2]). */
export function mosquittoAcl(reg: Registry): string {
  const lines = ['# Generated by "livematrix acl" from the Live Matrix registry: one block per client.', ''];
  for (const e of reg.all()) {
    const a = aclFor(e);
    lines.push(`user ${e.id}`);
    for (const t of a.publish) lines.push(`topic write ${t}`);
    for (const t of a.subscribe) lines.push(`topic read ${t}`);
    lines.push('');
  }
  return lines.join('\n');
}

/** MQTT topic filter match (+ and # wildcards). */
export function topicMatches(filter: string, topic: string): boolean {
  const f = filter.split('/');
  const t = topic.split('/');
  for (let i = 0; i < f.length; i++) {
    if (f[i] === '#') return true;
    if (i >= t.length) return false;
    if (f[i] !== '+' && f[i] !== t[i]) return false;
  }
  return f.length === t.length;
}

/** True when `sub` (a filter the client asks for) is within one of `allowed`. */
export function filterWithin(sub: string, allowed: readonly string[]): boolean {
  if (sub.includes('#')) return false;
  return allowed.some((a) => {
    const s = sub.split('/');
    const p = a.split('/');
    if (s.length !== p.length) return false;
    return s.every((x, i) => p[i] === '+' || p[i] === x);
  });
}
