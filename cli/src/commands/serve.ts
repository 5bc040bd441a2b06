/**
 * @module commands/serve
 * `livematrix serve`: the fleet service (SPEC §17) as operators run it: a gateway on the broker,
 * per-device job queues in the database (SQLite by default, PostgreSQL shared by several
 * instances), an HTTP API with a dashboard, live events and Prometheus metrics. Runs until SIGINT
 * or SIGTERM; then running jobs stay IN_PROGRESS for the next start (or another instance) to go
 * on with ([LM-FLEET-2]).
 */
import { join } from 'node:path';
import { hostname } from 'node:os';
import { readIdentityFile } from '@livematrix/spec/keyfile';
import { errorMessage } from '@livematrix/spec';
import { Registry } from '@livematrix/broker';
import { Gateway } from '@livematrix/gateway';
import { FileStore, FleetService, createApiKey, openFleetDb, operatorToken, serveApi } from '@livematrix/gateway/fleet';
import { keysClient, storeClient } from '@livematrix/gateway/services';
import { EXIT, UsageError, type Values, duration, need, num, opt, parse } from '../args.js';
import { connectAs, connection } from '../connection.js';
import { help } from '../help.js';
import { RateLimitedLog, describeRefusal } from '../log.js';
import { CONNECT_OPTIONS, hexKeys, peerOption, peersOption, serviceEndpoint, untilSignal } from '../services.js';
import { gatewayDbPath, stateDir } from '../state.js';

/** Device keys of the fleet from the broker's registry file. */
function registryDevices(path: string | undefined, fleet: string): Map<string, Uint8Array> {
  const out = new Map<string, Uint8Array>();
  if (path === undefined) return out;
  for (const e of Registry.load(path).all()) if (e.role === 'device' && e.fleet === fleet) out.set(e.id, e.publicKey);
  return out;
}

/** host:port of --http. */
function httpAddress(values: Values): { host: string; port: number } {
  const v = opt(values, 'http', '127.0.0.1:8080');
  const m = /^(.*):(\d{1,5})$/.exec(v);
  if (!m || Number(m[2]) > 65535) throw new UsageError(`--http must be HOST:PORT (e.g. 127.0.0.1:8080, or 0.0.0.0:8080 for every interface), got "${v}"`);
  return { host: m[1] || '127.0.0.1', port: Number(m[2]) };
}

export async function serve(argv: string[]): Promise<number> {
  const { values } = parse(argv, {
    identity: { type: 'string' }, operator: { type: 'string' }, 'operator-key': { type: 'string', multiple: true }, registry: { type: 'string' },
    db: { type: 'string' }, files: { type: 'string' }, http: { type: 'string' }, id: { type: 'string' }, w: { type: 'string' }, lease: { type: 'string' },
    'new-api-key': { type: 'string' }, 'keys-service': { type: 'string' }, 'keys-service-key': { type: 'string' }, store: { type: 'string' }, 'store-key': { type: 'string' },
    ...CONNECT_OPTIONS,
  });
  if (values['help']) return help('serve');
  const identity = readIdentityFile(need(values, 'identity'));
  const operator = typeof values['operator'] === 'string' ? readIdentityFile(values['operator']) : undefined;
  const trusted = [...hexKeys(values, 'operator-key'), ...(operator ? [operator.publicKey] : [])];
  if (trusted.length === 0) throw new UsageError('trust an operator: --operator-key HEX (whose transactions are honoured), or --operator FILE (the key the service signs with)');
  const fleet = opt(values, 'fleet', 'default');
  const deviceKeys = registryDevices(typeof values['registry'] === 'string' ? values['registry'] : undefined, fleet);
  const dbLocation = opt(values, 'db', gatewayDbPath());
  const filesDir = opt(values, 'files', join(stateDir(), 'files'));
  const id = opt(values, 'id', `serve-${identity.id}`);
  const http = httpAddress(values);
  const conn = connection(values);
  const prot = values['keys-service'] !== undefined;

  const db = await openFleetDb(dbLocation);
  if (typeof values['new-api-key'] === 'string') {
    const k = await createApiKey(db, values['new-api-key'], Date.now());
    console.log(`API key "${values['new-api-key']}" (${k.id}): ${k.key}\nOnly its SHA-256 is kept: store the key now; it is not shown again.`);
    await db.close();
    return EXIT.ok;
  }
  let firstKey: string | undefined;
  if ((await db.apiKeys()).length === 0 && !operator) {
    // a first start with nobody able to sign tokens: one API key, shown once
    firstKey = (await createApiKey(db, 'admin', Date.now())).key;
  }
  const svc = prot ? await serviceEndpoint(values, identity, 'gateway', 'gateway') : undefined;
  const log = new RateLimitedLog((l) => console.error(`gateway: ${l}`), 'dropped frames');
  try {
    const gw = await connectAs(conn, identity, 'gateway', fleet, () => Gateway.start({
      url: conn.url, fleet, id: identity.id, identity, trustedOperators: trusted, brokerAuth: conn.auth, db: dbLocation, ...(conn.tls ? { tls: conn.tls } : {}),
      ...(deviceKeys.size > 0 ? { deviceKeys } : {}),
      ...(svc ? { protected: { keys: keysClient(svc.ep, peerOption(values, 'keys-service')), store: storeClient(svc.ep, peersOption(values, 'store')) } } : {}),
    }));
    gw.on('log', (l) => console.error(l));
    gw.on('reject', (r) => log.line(describeRefusal(r)));
    const service = await FleetService.start({
      id, gateway: gw, db, files: new FileStore(filesDir), trustedOperators: trusted, ...(operator ? { operator } : {}), deviceKeys,
      leaseMs: duration(values, 'lease', 15_000, 2000, 600_000),
      ...(values['w'] !== undefined ? { stream: { policy: { w: num(values, 'w', 20, 8, 24) } } } : {}),
    });
    service.on('log', (l) => console.error(`serve: ${l}`));
    const api = await serveApi(service, http);
    const token = firstKey ?? (operator ? operatorToken(operator, Date.now(), 12 * 3600_000, 'dashboard') : undefined);
    console.log(`livematrix serve ${id} (${hostname()}): fleet ${fleet} on ${conn.url}, database ${db.kind}${db.kind === 'sqlite' ? ` ${dbLocation}` : ''}, job files in ${filesDir}`);
    console.log(`dashboard: ${api.url}${token ? `#token=${token}` : ''}`);
    if (firstKey) console.log(`API key "admin", created on this first start and shown once: ${firstKey}`);
    else if (operator) console.log('(the link carries an operator token valid for 12 hours)');
    else console.log('(sign in with an API key: "livematrix serve --new-api-key NAME" makes one)');
    console.log(`API: ${api.url}openapi.json; metrics: ${api.url}metrics. Ctrl-C stops it.`);
    const sig = await untilSignal();
    console.error(`${sig}: stopping; running jobs stay IN_PROGRESS for the next start`);
    await api.app.close();
    await service.stop();
  } catch (e) {
    console.error(`serve: ${errorMessage(e)}`);
    return EXIT.failure;
  } finally {
    log.flush();
    await svc?.ep.close();
    svc?.log.flush();
    await db.close();
  }
  return EXIT.ok;
}
