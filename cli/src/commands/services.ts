/**
 * @module commands/services
 * The services of protected jobs as processes of their own (SPEC §16.1): `livematrix
 * keys-service` (chunk keys, playbooks, licences, the epoch chain) and `livematrix store`
 * (segments under the epoch layer), each on the broker with its own identity ([LM-SVC-7]),
 * answering only the keys it is told to trust, op by op ([LM-SVC-6]), until SIGINT or SIGTERM.
 */
import { toHex, edPublicToX25519, errorMessage } from '@livematrix/spec';
import { readIdentityFile } from '@livematrix/spec/keyfile';
import { openKeysService } from '@livematrix/gateway/keys-service';
import { type ProtectedStore, openStore } from '@livematrix/gateway/store';
import { type RemoteEpochs, keysClient, remoteEpochs, serveKeys, serveStore } from '@livematrix/gateway/services';
import { EXIT, UsageError, duration, need, parse } from '../args.js';
import { help } from '../help.js';
import { CONNECT_OPTIONS, hexKeys, peerOption, serviceEndpoint, untilSignal } from '../services.js';

export async function keysService(argv: string[]): Promise<number> {
  const { values } = parse(argv, {
    identity: { type: 'string' }, dir: { type: 'string' }, 'trust-gateway': { type: 'string', multiple: true }, 'trust-store': { type: 'string', multiple: true },
    'trust-owner': { type: 'string', multiple: true }, 'operator-key': { type: 'string', multiple: true }, ...CONNECT_OPTIONS,
  });
  if (values['help']) return help('keys-service');
  const identity = readIdentityFile(need(values, 'identity'));
  const trust = { gateways: hexKeys(values, 'trust-gateway'), stores: hexKeys(values, 'trust-store'), owners: hexKeys(values, 'trust-owner'), operators: hexKeys(values, 'operator-key') };
  if (trust.gateways.length + trust.stores.length + trust.owners.length === 0) throw new UsageError('trust someone: --trust-gateway, --trust-store or --trust-owner (a keys service trusts no key it is not told to)');
  const ks = openKeysService({
    dir: need(values, 'dir'), identity, name: identity.id,
    ...(trust.owners.length ? { trustedOwners: trust.owners } : {}), ...(trust.operators.length ? { trustedOperators: trust.operators } : {}),
  });
  try {
    const { ep, log } = await serviceEndpoint(values, identity, 'keys', `keys service ${identity.id}`);
    serveKeys(ep, ks, trust);
    console.log(`keys service ${identity.id} online on ${ep.inbox}: epoch ${ks.current().e}; owners seal uploads to X25519 key ${toHex(edPublicToX25519(identity.publicKey))}; `
      + `trusts ${trust.gateways.length} gateway(s), ${trust.stores.length} store(s), ${trust.owners.length} owner(s), ${trust.operators.length} operator(s). Ctrl-C stops it.`);
    const sig = await untilSignal();
    console.error(`${sig}: stopping the keys service`);
    log.flush();
    await ep.close();
  } finally {
    await ks.close();
  }
  console.error('keys service stopped');
  return EXIT.ok;
}

export async function storeCmd(argv: string[]): Promise<number> {
  const { values } = parse(argv, {
    identity: { type: 'string' }, dir: { type: 'string' }, db: { type: 'string' }, 'keys-service': { type: 'string' }, 'keys-service-key': { type: 'string' }, epoch: { type: 'string' },
    'trust-gateway': { type: 'string', multiple: true }, 'trust-owner': { type: 'string', multiple: true }, ...CONNECT_OPTIONS,
  });
  if (values['help']) return help('store');
  const identity = readIdentityFile(need(values, 'identity'));
  // SQLite in --dir, or PostgreSQL at --db: instances on one database serve the same segments
  const dir = values['dir'] as string | undefined;
  const db = values['db'] as string | undefined;
  if ((dir === undefined) === (db === undefined)) throw new UsageError('give one of --dir DIR (SQLite) and --db postgres://... (PostgreSQL, which several store instances may share)');
  if (db !== undefined && !/^postgres(ql)?:\/\//.test(db)) throw new UsageError(`--db must be a postgres:// URL (for SQLite give --dir), got "${db.replace(/:[^:@/]*@/, ':***@')}"`);
  const ksPeer = peerOption(values, 'keys-service');
  const epochMs = duration(values, 'epoch', 120_000, 1000, 86_400_000);
  const trust = { gateways: hexKeys(values, 'trust-gateway'), owners: hexKeys(values, 'trust-owner') };
  if (trust.gateways.length + trust.owners.length === 0) throw new UsageError('trust someone: --trust-gateway (who may read segments) and --trust-owner (who may upload and delete)');
  const { ep, log } = await serviceEndpoint(values, identity, 'store', `store ${identity.id}`);
  let epochs: RemoteEpochs | undefined;
  let store: ProtectedStore | undefined;
  let timer: NodeJS.Timeout | undefined;
  const stopping = untilSignal();
  try {
    epochs = remoteEpochs(keysClient(ep, ksPeer), (l) => log.line(l));
    // the epoch keys come from the keys service: wait for it (it may start after the store)
    for (;;) {
      const ready = epochs.prepare().then(() => true, (e: unknown) => {
        console.error(`store ${identity.id}: no epoch keys from keys service ${ksPeer.id} yet (${errorMessage(e)}); asking again`);
        return false;
      });
      const got = await Promise.race([ready, stopping.then(() => undefined)]);
      if (got === undefined) return EXIT.ok;
      if (got) break;
    }
    store = await openStore({ ...(db !== undefined ? { url: db } : { dir: dir as string }), epochs, epochMs: 0 });
    await epochs.flush(); // an interrupted rotation finished at open is confirmed now
    serveStore(ep, store, trust, { keysService: ksPeer.publicKey, name: identity.id });
    const st = await store.stats();
    console.log(`store ${identity.id} online on ${ep.inbox} (${store.location}): ${st.segments} segments, epoch ${st.epoch}, a new epoch every ${epochMs / 1000} s from keys service ${ksPeer.id}. Ctrl-C stops it.`);
    // [LM-SVC-3]: the next epoch's key fetched ahead, every segment re-encrypted, the epoch confirmed
    const s = store;
    const e = epochs;
    let rotating = false;
    timer = setInterval(() => {
      if (rotating) return;
      rotating = true;
      void (async () => {
        try {
          await e.prepare();
          await s.rotate();
          await e.flush();
          const now = await s.stats();
          console.error(`store ${identity.id}: epoch ${now.epoch}, ${now.segments} segments re-encrypted; keys service ${ksPeer.id} confirmed`);
        } catch (err) {
          console.error(`store ${identity.id}: rotation: ${errorMessage(err)} (the next one finishes it)`);
        } finally {
          rotating = false;
        }
      })();
    }, epochMs);
    const sig = await stopping;
    console.error(`${sig}: stopping the store`);
  } finally {
    clearInterval(timer);
    log.flush();
    await store?.close();
    await ep.close();
    epochs?.destroy();
  }
  console.error('store stopped');
  return EXIT.ok;
}
