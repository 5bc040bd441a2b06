/**
 * @module commands/revoke
 * `livematrix revoke`: signs the operator's revocation list, a REVOKE frame ([LM-REVOKE-1]), and
 * writes it to a file or publishes it retained on the fleet's revocation topic as a gateway
 * ([LM-REVOKE-2], [LM-REVOKE-4]). Devices and gateways keep the newest list by `seq` and refuse
 * what it revokes, and every transaction once it is stale ([LM-REVOKE-3]).
 */
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { readIdentityFile } from '@livematrix/spec/keyfile';
import { FrameLink, authOptions } from '@livematrix/spec/transport';
import {
  FrameType, ID_RE, REVOCATION_PERIOD_MS, Role, decodeTx, equalBytes, errorMessage, fromHex, signRevocation, toHex, topics, verifyRevocation, type RevokeBody,
} from '@livematrix/spec';
import { EXIT, Failure, UsageError, type Values, duration, list, need, num, opt, parse } from '../args.js';
import { TLS_OPTIONS, connectAs, connection } from '../connection.js';
import { help } from '../help.js';

/** The longest a list may hold before it is stale (`--valid`): 30 days. */
const MAX_VALID_MS = 30 * 86_400_000;
/** How long to wait for the broker to hand the retained list back. */
const READ_BACK_MS = 5000;

const HEX32 = /^[0-9a-fA-F]{64}$/;

/** SHA-256 of the transaction in a file written by `livematrix sign` (only its `tx` is read). */
function txHashOf(path: string): Uint8Array {
  if (!existsSync(path)) throw new UsageError(`no such transaction file: ${path}`);
  let j: { tx?: unknown; txh?: unknown };
  try {
    j = JSON.parse(readFileSync(path, 'utf8')) as typeof j;
  } catch (e) {
    throw new UsageError(`transaction file ${path} is not JSON: ${errorMessage(e)}`);
  }
  if (typeof j !== 'object' || j === null || typeof j.tx !== 'string' || !/^[0-9a-fA-F]*$/.test(j.tx)) throw new UsageError(`${path} is not a transaction file from "livematrix sign"`);
  const hash = decodeTx(fromHex(j.tx)).hash;
  if (typeof j.txh === 'string' && j.txh.toLowerCase() !== toHex(hash)) throw new UsageError(`${path}: its txh does not match the SHA-256 of its transaction`);
  return hash;
}

function hexList(values: Values, name: string): Uint8Array[] {
  return list(values, name).map((h) => {
    if (!HEX32.test(h)) throw new UsageError(`--${name} must be 64 hex digits, got "${h}"`);
    return fromHex(h);
  });
}

/** Distinct byte strings, in order. */
function distinct(xs: Uint8Array[]): Uint8Array[] {
  return xs.filter((x, i) => xs.findIndex((y) => equalBytes(x, y)) === i);
}

/** A promise that rejects with `error` when `ms` pass, and its cancel. */
function deadline(ms: number, error: () => Error): { promise: Promise<never>; cancel: () => void } {
  let timer: NodeJS.Timeout | undefined;
  const promise = new Promise<never>((_, rej) => {
    timer = setTimeout(() => rej(error()), ms);
  });
  return { promise, cancel: () => clearTimeout(timer) };
}

/**
 * Publishes the list retained at QoS 1 on the fleet's revocation topic as the gateway identity,
 * then reads the retained message back: a broker that refused or dropped it ([LM-REVOKE-4])
 * holds another list, or none.
 */
async function publish(values: Values, frame: Uint8Array): Promise<string> {
  const identity = readIdentityFile(need(values, 'identity'));
  const conn = connection(values);
  const fleet = opt(values, 'fleet', 'default');
  const topic = topics.revocation(fleet);
  const link = await connectAs(conn, identity, 'gateway', fleet, () => FrameLink.connect({
    url: conn.url, clientId: `lm-gw-${identity.id}-${Math.random().toString(16).slice(2, 8)}`, reconnectPeriod: 0,
    ...authOptions(conn.auth, identity.id, Role.gateway, identity.secretKey), ...(conn.tls ? { tls: conn.tls } : {}),
  }));
  const closed = new Promise<never>((_, rej) => link.client.once('close', () => rej(new Failure(
    `the broker at ${conn.url} closed the connection of "${identity.id}" on its list: only a gateway of fleet "${fleet}" may publish on ${topic} ([LM-REVOKE-4]); is "${identity.id}" registered as one?`,
  ))));
  closed.catch(() => undefined); // raced below; never unhandled
  const back = new Promise<Uint8Array>((res) => link.onPayload((t, p) => {
    if (t === topic) res(p.slice());
  }));
  const wait = deadline(READ_BACK_MS, () => new Failure(`published the list on ${topic}, but the broker at ${conn.url} did not hand a retained list back within ${READ_BACK_MS / 1000} s: it did not retain it ([LM-REVOKE-2])`));
  try {
    await Promise.race([link.send(topic, frame, FrameType.REVOKE, { retain: true }), closed]);
    await Promise.race([link.subscribe(topic), closed]).catch((e: unknown) => {
      throw e instanceof Failure ? e : new Failure(`published the list on ${topic}, but "${identity.id}" may not read it back (${errorMessage(e)}): gateways and devices must be allowed to subscribe to it ([LM-REVOKE-4])`);
    });
    const held = await Promise.race([back, closed, wait.promise]);
    if (!equalBytes(held, frame)) {
      throw new Failure(`the broker at ${conn.url} holds another message on ${topic}, not this list: it refused or dropped the publish of "${identity.id}" (a broker with an ACL, such as Mosquitto, drops it silently; see "livematrix acl") ([LM-REVOKE-4])`);
    }
    return `published retained on ${topic} at ${conn.url} as "${identity.id}" (read back from the broker)`;
  } finally {
    wait.cancel();
    // forced: a publish the broker never acknowledged (it closed the connection) would keep a
    // graceful end waiting for ever
    await link.close(true).catch(() => undefined);
  }
}

const plural = (n: number, what: string) => `${n} ${what}${n === 1 ? '' : 's'}`;

export async function revoke(argv: string[]): Promise<number> {
  const { values } = parse(argv, {
    operator: { type: 'string' }, tx: { type: 'string', multiple: true }, txh: { type: 'string', multiple: true }, device: { type: 'string', multiple: true },
    'operator-key': { type: 'string', multiple: true }, seq: { type: 'string' }, valid: { type: 'string' }, out: { type: 'string' },
    identity: { type: 'string' }, url: { type: 'string' }, credentials: { type: 'string' }, fleet: { type: 'string' }, ...TLS_OPTIONS,
  });
  if (values['help']) return help('revoke');
  const out = typeof values['out'] === 'string' ? values['out'] : undefined;
  if (!out && typeof values['identity'] !== 'string') throw new UsageError('say where the list goes: --out FILE, or --identity FILE (a gateway) with --url and --fleet to publish it');
  const op = readIdentityFile(need(values, 'operator'));
  const now = Date.now();
  const seq = num(values, 'seq', Math.floor(now / 1000), 0);
  if (!Number.isInteger(seq)) throw new UsageError(`--seq must be a whole number, got "${String(values['seq'])}"`);
  const valid = duration(values, 'valid', REVOCATION_PERIOD_MS, 1000, MAX_VALID_MS);
  const txs = distinct([...list(values, 'tx').map(txHashOf), ...hexList(values, 'txh')]);
  const devices = [...new Set(list(values, 'device'))];
  for (const d of devices) if (!ID_RE.test(d)) throw new UsageError(`--device must be a device id (1-64 of [A-Za-z0-9._-]), got "${d}"`);
  const operators = distinct(hexList(values, 'operator-key'));
  // [LM-REVOKE-1] a list that revokes its own signing key verifies nowhere
  if (operators.some((k) => equalBytes(k, op.publicKey))) throw new UsageError(`--operator-key ${toHex(op.publicKey)} is the key of --operator itself: a list cannot revoke the key that signs it; sign with another trusted operator key`);
  const frame = signRevocation({ seq, time: now, next: now + valid, txs, devices, operators, operatorSecret: op.secretKey, operatorPublic: op.publicKey });
  const body: RevokeBody = verifyRevocation(frame, [op.publicKey]);
  console.log(`revocation list seq ${body.seq}: ${plural(body.txs.length, 'transaction')}, ${plural(body.devices.length, 'device')}, ${plural(body.operators.length, 'operator key')}; signed by ${toHex(body.opk)}`);
  if (out) {
    writeFileSync(out + '.tmp', frame);
    renameSync(out + '.tmp', out);
    console.log(`wrote ${out} (${frame.length} bytes, the REVOKE frame)`);
  }
  if (typeof values['identity'] === 'string') console.log(await publish(values, frame));
  console.log(`next list due by ${new Date(body.next).toISOString()}: after it, devices and gateways that hold this list refuse every transaction until a newer one arrives ([LM-REVOKE-3])`);
  return EXIT.ok;
}
