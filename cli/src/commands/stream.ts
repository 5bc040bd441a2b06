/**
 * @module commands/stream
 * The gateway side: `livematrix stream` (one file to one device) and `livematrix gateway`
 * (every job of a jobs file, in parallel). Both run one gateway for their jobs, then exit.
 */
import { createReadStream, existsSync, readFileSync } from 'node:fs';
import { readIdentityFile } from '@livematrix/spec/keyfile';
import { SUITE_NAMES, errorMessage } from '@livematrix/spec';
import { Gateway } from '@livematrix/gateway';
import { EXIT, UsageError, type Values, hexKey, need, num, opt, parse } from '../args.js';
import { TLS_OPTIONS, connectAs, connection } from '../connection.js';
import { help } from '../help.js';
import { gatewayDbPath } from '../state.js';
import { RateLimitedLog, describeRefusal } from '../log.js';
import { Progress } from '../progress.js';
import { readProtectedTx, readTx } from './keys.js';
import { keysClient, storeClient } from '@livematrix/gateway/services';
import { peerOption, peersOption, serviceEndpoint } from '../services.js';

/** One entry of a jobs file: what to stream, to which device, under which transaction file. */
interface Job {
  file: string;
  device: string;
  tx: string;
}

/** Streams one job; prints its progress, telemetry and report. False when it failed. */
async function runJob(gw: Gateway, values: Values, job: Job): Promise<boolean> {
  const { tx, licence } = readTx(job.tx);
  // read as a stream: the gateway checks size and digest against the transaction as the bytes
  // pass and fails the stream before END on a mismatch ([LM-TX-6])
  // a file can be opened again, so that a device that restarts and kept nothing is served from
  // byte 0 ([LM-DLV-10]); standard input cannot
  const input = job.file === '-' ? process.stdin : () => createReadStream(job.file);
  try {
    const s = await gw.stream(job.device, input, tx, licence, { policy: values['w'] !== undefined ? { w: num(values, 'w', 20, 8, 24) } : {} });
    let p: Progress | undefined;
    s.on('progress', (e) => (p ??= new Progress(job.device, e.total)).update(e.consumed));
    s.on('telemetry', (t) => console.error(`telemetry ${job.device}: ${JSON.stringify(t)}`));
    const r = await s.done;
    p?.done();
    console.log(JSON.stringify({ ...r, params: { ...r.params, suite: SUITE_NAMES[r.params.suite] } }));
    return true;
  } catch (e) {
    console.error(`${job.device}: ${errorMessage(e)}`);
    return false;
  }
}

async function runJobs(values: Values, jobs: Job[]): Promise<number> {
  const identity = readIdentityFile(need(values, 'identity'));
  const conn = connection(values);
  const trustedOperators = [hexKey(values, 'operator-key')];
  const fleet = opt(values, 'fleet', 'default');
  const gw = await connectAs(conn, identity, 'gateway', fleet, () => Gateway.start({
    url: conn.url, fleet, ...(conn.tls ? { tls: conn.tls } : {}),
    id: identity.id, identity, trustedOperators, brokerAuth: conn.auth,
    // print counts, sessions and the receipt ledger survive a restart ([LM-LIC-2], [LM-LEDGER-1])
    db: opt(values, 'db', gatewayDbPath()),
  }));
  gw.on('log', (l) => console.error(l));
  // frames the gateway drops (forged, replayed, malformed) are logged, never fatal
  const refusals = new RateLimitedLog((l) => console.error(`gateway: ${l}`), 'dropped frames');
  gw.on('reject', (r) => refusals.line(describeRefusal(r)));
  const results = await Promise.all(jobs.map((job) => runJob(gw, values, job)));
  refusals.flush();
  await gw.stop();
  return results.every(Boolean) ? EXIT.ok : EXIT.failure;
}

export async function stream(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, {
    device: { type: 'string' }, tx: { type: 'string' }, identity: { type: 'string' }, 'operator-key': { type: 'string' }, url: { type: 'string' }, ...TLS_OPTIONS,
    credentials: { type: 'string' }, fleet: { type: 'string' }, w: { type: 'string' }, db: { type: 'string' },
    protected: { type: 'boolean' }, 'keys-service': { type: 'string' }, 'keys-service-key': { type: 'string' }, store: { type: 'string' }, 'store-key': { type: 'string' },
  });
  if (values['help']) return help('stream');
  if (values['protected']) {
    if (positionals.length > 0) throw new UsageError('a protected job has no FILE here: its ciphertext comes from the store (--store) and its keys from the keys service (--keys-service)');
    return streamProtected(values);
  }
  const file = positionals[0];
  if (!file) throw new UsageError('the G-code FILE to stream is required');
  if (file !== '-' && !existsSync(file)) throw new UsageError(`no such file: ${file}`);
  return runJobs(values, [{ file, device: need(values, 'device'), tx: need(values, 'tx') }]);
}

/** The jobs of a jobs file (a JSON array of { file, device, tx }). */
function readJobs(path: string): Job[] {
  try {
    const jobs = JSON.parse(readFileSync(path, 'utf8')) as Job[];
    if (!Array.isArray(jobs) || !jobs.every((j) => typeof j.file === 'string' && typeof j.device === 'string' && typeof j.tx === 'string')) throw new Error('expected an array of { file, device, tx }');
    return jobs;
  } catch (e) {
    throw new UsageError(`jobs file ${path}: ${errorMessage(e)}`);
  }
}

export async function gateway(argv: string[]): Promise<number> {
  const { values } = parse(argv, {
    jobs: { type: 'string' }, identity: { type: 'string' }, 'operator-key': { type: 'string' }, url: { type: 'string' }, credentials: { type: 'string' }, ...TLS_OPTIONS,
    fleet: { type: 'string' }, w: { type: 'string' }, db: { type: 'string' },
  });
  if (values['help']) return help('gateway');
  return runJobs(values, readJobs(need(values, 'jobs')));
}

/**
 * `stream --protected` (SPEC §16): the gateway as a distribution node only. Its own identity
 * on the broker reaches the store and the keys service over their inboxes ([LM-SVC-7]), each
 * pinned to its key ([LM-SVC-6]); it fetches the owner's ciphertext in the playbook's order and
 * relays key wraps it cannot open. No FILE, no licence: the transaction file is the one without
 * it ([LM-PROT-2], [LM-SVC-4]).
 */
async function streamProtected(values: Values): Promise<number> {
  const identity = readIdentityFile(need(values, 'identity'));
  const device = need(values, 'device');
  const tx = readProtectedTx(need(values, 'tx'));
  const ksPeer = peerOption(values, 'keys-service');
  const storePeers = peersOption(values, 'store');
  const conn = connection(values);
  const fleet = opt(values, 'fleet', 'default');
  const { ep, log } = await serviceEndpoint(values, identity, 'gateway', 'gateway');
  try {
    const gw = await connectAs(conn, identity, 'gateway', fleet, () => Gateway.start({
      url: conn.url, fleet, id: identity.id, identity, trustedOperators: [hexKey(values, 'operator-key')], brokerAuth: conn.auth, ...(conn.tls ? { tls: conn.tls } : {}),
      db: opt(values, 'db', gatewayDbPath()),
      protected: { keys: keysClient(ep, ksPeer), store: storeClient(ep, storePeers) },
    }));
    gw.on('log', (l) => console.error(l));
    const refusals = new RateLimitedLog((l) => console.error(`gateway: ${l}`), 'dropped frames');
    gw.on('reject', (r) => refusals.line(describeRefusal(r)));
    try {
      const s = await gw.streamProtected(device, tx, { policy: values['w'] !== undefined ? { w: num(values, 'w', 20, 8, 24) } : {} });
      let p: Progress | undefined;
      s.on('progress', (e) => (p ??= new Progress(device, e.total)).update(e.consumed));
      s.on('telemetry', (t) => console.error(`telemetry ${device}: ${JSON.stringify(t)}`));
      const r = await s.done;
      p?.done();
      console.log(JSON.stringify({ ...r, params: { ...r.params, suite: SUITE_NAMES[r.params.suite] } }));
      return EXIT.ok;
    } catch (e) {
      console.error(`${device}: ${errorMessage(e)}`);
      return EXIT.failure;
    } finally {
      refusals.flush();
      await gw.stop();
    }
  } finally {
    log.flush();
    await ep.close();
  }
}
