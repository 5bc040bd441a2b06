/**
 * Identity keys behind a key store (`@livematrix/spec/keystore`), without a broker: the device's
 * OFFER desk and licence state on a store that signs and agrees on keys by itself, so that the
 * SDK never holds the secret: ACCEPT, the sealed licence ([LM-TX-1]), the resume ticket at the
 * counting point and when cut off ([LM-LIC-1], [LM-LIC-3]) and signed refusals ([LM-FRAME-9])
 * all go through it and verify under its public key. A store that fails, or answers wrongly,
 * fails with its name; the file-backed store signs as the key file does and shows no secret. A
 * store (or a key pair) whose signing key is not its public key fails when the device starts.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  type Caps, FrameType, type FrameTypeId, type IdentityKeyStore, LmError, type OfferBody, Reason, Revocations, type SessionParams, type SignedTx,
  createTx, decodeFrame, digest, ecdh, edPublicToX25519, encodeFrame, equalBytes, identityKeyPair, randomBytes, sign, signWith, toHex, verify, verifyFrame, verifyTicket, x25519KeyPair,
} from '@livematrix/spec';
import { createIdentityFile, fileKeyStore } from '@livematrix/spec/keyfile';
import { KeyStoreMismatchError, keyStoreOf } from '@livematrix/spec/keystore';
import { Device } from '../src/device.js';
import { type CountingKeyStore, countingKeyStore } from '@livematrix/testkit';
import { Licences, memoryLicenceStore } from '../src/licences.js';
import { OfferDesk, type OfferHost, type RunningSession, type SessionInit, offerChecks } from '../src/offer.js';
import type { RejectEvent } from '../src/stream.js';

const DEVICE = 'printer-1';
const caps: Caps = { suites: [[3, 40_000_000]], mem: 2 ** 30, wmax: 20, workers: 2 };
const params: SessionParams = { suite: 3, w: 16, L: 3, period: 1000, epoch: 0, grace: 250, r0: 0, chunk: 1024, symbolsPerFrame: 4096, wt: 16 };

/** A device's OFFER desk whose identity is a key store. */
class Host implements OfferHost {
  now = 1_800_000_000_000;
  readonly clock = () => this.now;
  readonly deviceId = DEVICE;
  readonly window = 1 << 20;
  readonly revocations = new Revocations();
  readonly resume = undefined;
  readonly licences: Licences;
  readonly sent: { type: FrameTypeId; frame: Uint8Array }[] = [];
  readonly rejected: RejectEvent[] = [];
  readonly opened: { init: SessionInit; accept: Uint8Array }[] = [];

  constructor(readonly identity: IdentityKeyStore, readonly trustedOperators: readonly Uint8Array[]) {
    this.licences = new Licences(memoryLicenceStore(), identity, DEVICE, this.clock);
  }
  caps(): Caps {
    return caps;
  }
  running(): RunningSession | undefined {
    return undefined;
  }
  async send(frame: Uint8Array, type: FrameTypeId): Promise<void> {
    this.sent.push({ type, frame });
  }
  reject(ev: RejectEvent): void {
    this.rejected.push(ev);
  }
  async open(init: SessionInit, accept: Uint8Array): Promise<void> {
    this.opened.push({ init, accept });
  }
}

const operator = identityKeyPair();
const gateway = identityKeyPair();

function tx(devicePublic: Uint8Array, now: number): SignedTx {
  const job = randomBytes(3000);
  return createTx({
    job: 'part', plaintext: { digest: digest(job), size: job.length }, device: DEVICE, devicePublic,
    operatorSecret: operator.secretKey, operatorPublic: operator.publicKey, notBefore: now - 60_000, notAfter: now + 3600_000, rate: 1e6, burst: 1e6, gatewayPublic: gateway.publicKey,
  }).tx;
}

function offer(t: SignedTx, now: number) {
  const body: OfferBody = { sid: randomBytes(16), tx: t.bytes, epk: x25519KeyPair().publicKey, params, gwpk: gateway.publicKey, time: now };
  const bytes = encodeFrame(FrameType.OFFER, body, { kind: 'sig', secretKey: gateway.secretKey });
  const f = decodeFrame(bytes);
  if (f.type !== FrameType.OFFER) throw new Error('not an OFFER');
  return { f, bytes };
}

function desk(store: CountingKeyStore): { host: Host; desk: OfferDesk } {
  const host = new Host(store, [operator.publicKey]);
  return { host, desk: new OfferDesk(host, offerChecks(), 1000) };
}

describe('a device on a key store never needs its secret key', () => {
  it('ACCEPT, the sealed licence, the ticket at the counting point and when cut off, and a refusal all go through the store and verify under its key', async () => {
    const store = countingKeyStore();
    const { host, desk: d } = desk(store);
    const t = tx(store.publicKey, host.now);
    const o = offer(t, host.now);
    await d.onOffer(o.f, o.bytes);
    expect(host.rejected).toEqual([]);
    const [s] = host.opened;
    // [LM-TX-1]: the licence was opened by the store's X25519, once
    expect(store.agreements).toBe(1);
    const accept = decodeFrame(s!.accept);
    expect(accept.type).toBe(FrameType.ACCEPT);
    expect(verifyFrame(accept, { signer: store.publicKey })).toBe(true);
    // [LM-LIC-1]: the counting point issues the session's ticket, signed by the store
    s!.init.licence.start();
    s!.init.licence.hold(2048); // [LM-LIC-3]: cut off, re-signed with its offset
    const held = host.licences.held(toHex(t.hash));
    const ticket = verifyTicket(held!.bytes, { device: DEVICE, devicePublic: store.publicKey, txh: t.hash, now: host.now });
    expect(ticket.body.off).toBe(2048);
    // the same OFFER again is a replay: refused with ERROR signed by the store ([LM-FRAME-9])
    await d.onOffer(o.f, o.bytes);
    const err = host.sent.find((x) => x.type === FrameType.ERROR);
    const ef = decodeFrame(err!.frame);
    expect(ef.type === FrameType.ERROR && ef.body.code).toBe(Reason.replay);
    expect(verifyFrame(ef, { signer: store.publicKey })).toBe(true);
    expect(() => verifyFrame(ef, { signer: identityKeyPair().publicKey })).toThrow(/signature does not verify/);
    expect(store.signed).toEqual(['ACCEPT', 'ticket', 'ticket', 'ERROR']);
  });

  it('a store that fails: the OFFER is refused as internal, naming the store, and no session opens; the same store working again is accepted', async () => {
    const store = countingKeyStore();
    const { host, desk: d } = desk(store);
    const t = tx(store.publicKey, host.now);
    store.failWith(new Error('secure element not responding'));
    const o1 = offer(t, host.now);
    await d.onOffer(o1.f, o1.bytes).catch((e: unknown) => host.rejected.push({ code: Reason.internal, reason: 'thrown', type: FrameType.OFFER, detail: String(e) }));
    expect(host.opened).toHaveLength(0);
    expect(host.rejected.map((r) => r.detail).join('\n')).toMatch(/identity key store failed the X25519 agreement: secure element not responding/);
    store.failWith(undefined);
    const o2 = offer(t, host.now);
    await d.onOffer(o2.f, o2.bytes);
    expect(host.opened).toHaveLength(1);
  });

  it('signWith checks what a store answers: a Promise, a short signature and a throw are named errors; a good one verifies', () => {
    const m = new TextEncoder().encode('livematrix/1 frame\0test');
    const pair = identityKeyPair();
    const async = { sign: () => Promise.resolve(new Uint8Array(64)) as unknown as Uint8Array };
    expect(() => signWith(async, m)).toThrow(TypeError);
    expect(() => signWith(async, m)).toThrow(/got a Promise \(key stores sign synchronously\)/);
    expect(() => signWith({ sign: () => new Uint8Array(63) }, m)).toThrow(RangeError);
    expect(() => signWith({ sign: () => new Uint8Array(63) }, m)).toThrow(/length 64 .*got length=63/);
    const thrown = (() => {
      try {
        signWith({ sign: () => { throw new Error('PIN locked'); } }, m);
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    expect(thrown).toBeInstanceOf(LmError);
    expect((thrown as LmError).code).toBe(Reason.internal);
    expect((thrown as LmError).message).toMatch(/identity key store failed to sign: PIN locked/);
    expect(verify(pair.publicKey, m, signWith({ sign: (x) => sign(pair.secretKey, x) }, m))).toBe(true);
  });

  it('the file-backed store signs as the identity file\'s key does and holds no secret in its properties', () => {
    const dir = mkdtempSync(join(tmpdir(), 'lm-keystore-'));
    const pair = identityKeyPair();
    createIdentityFile(join(dir, 'dev.json'), DEVICE, { secretKey: pair.secretKey.slice(), publicKey: pair.publicKey });
    const store = fileKeyStore(join(dir, 'dev.json'));
    expect(store.id).toBe(DEVICE);
    expect(equalBytes(store.publicKey, pair.publicKey)).toBe(true);
    const m = randomBytes(100);
    expect(equalBytes(store.sign(m), sign(pair.secretKey, m))).toBe(true); // Ed25519 is deterministic (RFC 8032)
    // [LM-TX-1]: the store's X25519 is the agreement a sealer makes with the X25519 form of the public key
    const peer = x25519KeyPair();
    expect(equalBytes(store.x25519(peer.publicKey), ecdh(peer.secretKey, edPublicToX25519(pair.publicKey)))).toBe(true);
    const shown = JSON.stringify(store, (_k, v: unknown) => (v instanceof Uint8Array ? toHex(v) : v));
    expect(shown).not.toContain(toHex(pair.secretKey));
    expect(Object.keys(store).sort()).toEqual(['id', 'publicKey', 'sign', 'x25519']);
  });

  it('a store whose signing key is not its publicKey, and such a key pair, fail with KeyStoreMismatchError when taken (at Device.start, before connecting); matching ones are taken', async () => {
    const a = countingKeyStore();
    const b = countingKeyStore();
    const crossed: IdentityKeyStore = { publicKey: b.publicKey, sign: (m) => a.sign(m), x25519: (p) => a.x25519(p) };
    expect(() => keyStoreOf(crossed)).toThrow(KeyStoreMismatchError);
    expect(() => keyStoreOf(crossed)).toThrow(new RegExp(`signs with another key than its publicKey ${toHex(b.publicKey)}: every frame it signed would be refused by its peers`));
    const [p1, p2] = [identityKeyPair(), identityKeyPair()];
    expect(() => keyStoreOf({ secretKey: p1.secretKey, publicKey: p2.publicKey })).toThrow(KeyStoreMismatchError);
    expect(() => keyStoreOf({ ...a, publicKey: new Uint8Array(31) } as IdentityKeyStore)).toThrow(/publicKey must be a 32-byte Ed25519 public key, got 31 bytes/);
    // a store that cannot sign is named as before (signWith), not as a mismatch
    const broken = countingKeyStore();
    broken.failWith(new Error('token removed'));
    expect(() => keyStoreOf(broken)).toThrow(/the identity key store failed to sign: token removed/);
    // the device refuses to start with it: nothing connects (no broker listens at this URL)
    const start = Device.start({ url: 'mqtt://127.0.0.1:1', fleet: 'default', id: DEVICE, identity: crossed, trustedOperators: [operator.publicKey] });
    await expect(start).rejects.toBeInstanceOf(KeyStoreMismatchError);
    // accepted: the store itself, and a key pair wrapped, each signing what verifies under its key
    const good = countingKeyStore();
    expect(keyStoreOf(good)).toBe(good);
    expect(good.signed).toEqual(['self-test']); // the self-test's one signature
    const wrapped = keyStoreOf(p1);
    const m = randomBytes(40);
    expect(verify(p1.publicKey, m, wrapped.sign(m))).toBe(true);
  });
});
