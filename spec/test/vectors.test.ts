/**
 * The checked-in vectors (SPEC.md §14): current with the generator, and each one checked
 * against the reference code and, where one exists here, an independent implementation.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { createCipheriv, createHash, createPublicKey, hkdfSync, verify as cryptoVerify } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { keccak_256 } from '@noble/hashes/sha3.js';
import { describe, expect, it } from 'vitest';
import {
  LmError, Ratchet, ReferenceTable, decodeFrame, deriveSessionKeys, ecdh, fromHex, hint, openChunk, openLicence, openTelemetry,
  pack, reasonName, shiftedSymbol, splitShifted, toHex, transcriptHash, unpack, unwrapChunkKey, verifyFrame, verifyTx, sealChunk, wrapChunkKey, type SuiteId,
  FRAME_TYPE_NAMES, FrameType, Revocations, decodeTx, verifyRevocation, verifyTicket, acceptFault, hintsFault, validateParams, type SessionParams,
  type CborValue, ContentKeys, NO_LICENCE, contentChain, decodeCbor, encodeCbor, openProtectedChunk, sealProtectedChunk, verifyUpload, jobDigestKey, keyedJobDigest,
} from '../src/index.js';
import { buildVectors, jsonOf, renderVectorFile, type TicketContextJson, type VectorFile, type VectorTest } from '../scripts/vectors.js';

const dir = join(import.meta.dirname, '..', 'vectors', 'v1');
const load = (name: string): VectorFile => JSON.parse(readFileSync(join(dir, name), 'utf8')) as VectorFile;
const tests = (f: VectorFile, type?: string): VectorTest[] => f.testGroups.filter((g) => !type || g['type'] === type).flatMap((g) => g.tests);
const errName = (f: () => unknown): string | null => {
  try {
    f();
    return null;
  } catch (e) {
    if (e instanceof LmError) return reasonName(e.code);
    throw e;
  }
};
const s = (t: VectorTest, k: string): string => t[k] as string;
const n = (t: VectorTest, k: string): number => t[k] as number;

describe('vectors are current (SPEC.md §14)', () => {
  const built = buildVectors();
  for (const [name, v] of Object.entries(built)) {
    it(`${name} equals what npm run spec:vectors writes`, () => {
      expect(readFileSync(join(dir, name), 'utf8')).toBe(renderVectorFile(v));
    });
  }
  it('every test has a unique tcId, a result and requirement IDs', () => {
    const ids = new Set((JSON.parse(readFileSync(join(import.meta.dirname, '..', 'requirements.json'), 'utf8')) as { requirements: { id: string }[] }).requirements.map((r) => r.id));
    for (const name of Object.keys(built)) {
      const f = load(name);
      const all = tests(f);
      expect(all.length).toBe(f.numberOfTests);
      expect(new Set(all.map((t) => t.tcId)).size).toBe(all.length);
      for (const t of all) {
        expect(['valid', 'invalid']).toContain(t.result);
        expect(t.requirements.length).toBeGreaterThan(0);
        for (const r of t.requirements) expect(ids.has(r), `${name} #${t.tcId} cites ${r}`).toBe(true);
        if (t.result === 'invalid') expect(typeof t['error']).toBe('string');
      }
    }
  });
});

describe('hint vectors [LM-HINT-1]', () => {
  const f = load('hint.json');
  it('match the reference hint function', () => {
    for (const g of f.testGroups.filter((x) => x['type'] === 'HintTest')) {
      for (const t of g.tests) {
        const run = () => hint(g['suite'] as SuiteId, fromHex(s(t, 'hk')), n(t, 'w'), n(t, 'L'), n(t, 'g'));
        if (t.result === 'valid') expect(toHex(run())).toBe(s(t, 'hint'));
        else expect(errName(run)).toBe(t['error']);
      }
    }
  });
  it('sha3-256 vectors match node:crypto', () => {
    const g = f.testGroups.find((x) => x['suite'] === 2 && x['type'] === 'HintTest')!;
    for (const t of g.tests.filter((x) => x.result === 'valid')) {
      expect(createHash('sha3-256').update(fromHex(s(t, 'input'))).digest('hex')).toBe(s(t, 'digest'));
    }
  });
  it('keccak-256 vectors match a plain Keccak-256 over the input bytes', () => {
    const g = f.testGroups.find((x) => x['suite'] === 1 && x['type'] === 'HintTest')!;
    for (const t of g.tests.filter((x) => x.result === 'valid')) {
      expect(toHex(keccak_256(fromHex(s(t, 'input'))))).toBe(s(t, 'digest'));
      expect(s(t, 'input').slice(0, 64)).toBe(s(t, 'hk'));
    }
  });
  const b3 = spawnSync('b3sum', ['--version']).status === 0;
  if (!b3) console.warn('b3sum is not installed: the keyed BLAKE3 vectors are checked against the reference only (apt-get install b3sum; .ci/run installs it)');
  it.runIf(b3 || process.env['CI'] === 'true')('blake3 vectors match b3sum --keyed', () => {
    const g = f.testGroups.find((x) => x['suite'] === 3 && x['type'] === 'HintTest')!;
    const tmp = mkdtempSync(join(tmpdir(), 'lm-b3-'));
    for (const t of g.tests.filter((x) => x.result === 'valid')) {
      const msg = join(tmp, `m${t.tcId}`);
      writeFileSync(msg, fromHex(s(t, 'input')));
      const out = execFileSync('b3sum', ['--keyed', '--no-names', '--length', String(n(t, 'L')), msg], { input: fromHex(s(t, 'hk')) }).toString().trim();
      expect(out).toBe(s(t, 'hint'));
    }
  });
  it('table vectors: lookup results and ambiguity [LM-HINT-2] [LM-HINT-3] [LM-HINT-4]', () => {
    for (const g of f.testGroups.filter((x) => x['type'] === 'TableTest')) {
      const t = g.tests[0]!;
      const table = new ReferenceTable(g['suite'] as SuiteId, fromHex(s(t, 'hk')), 8, 1);
      const got = Array.from({ length: 256 }, (_, h) => {
        const r = table.lookup(Uint8Array.of(h));
        return r.kind === 'symbol' ? r.symbol : r.kind;
      });
      expect(got).toEqual(t['lookup']);
      expect(got.filter((x) => x === 'ambiguous').length).toBe(t['ambiguousValues']);
      expect(n(t, 'ambiguousValues')).toBeGreaterThan(0);
    }
  });
});

describe('pack vectors [LM-PACK-1] [LM-PACK-2] [LM-PACK-3]', () => {
  it('pack and unpack as the vectors say', () => {
    for (const t of tests(load('pack.json'), 'PackTest')) {
      if (t.result === 'valid') {
        expect([...pack(fromHex(s(t, 'bytes')), n(t, 'w'))]).toEqual(t['symbols']);
        expect(toHex(unpack(t['symbols'] as number[], n(t, 'w'), n(t, 'n')))).toBe(s(t, 'bytes'));
      } else {
        expect(errName(() => unpack(t['symbols'] as number[], n(t, 'w'), n(t, 'n')))).toBe(t['error']);
      }
    }
  });
});

describe('shifted symbol vectors [LM-DLV-11]', () => {
  it('gives the low sh bits of the symbol before and the high w - sh bits of the symbol at each position', () => {
    const ts = tests(load('pack.json'), 'ShiftTest');
    expect(ts.length).toBeGreaterThanOrEqual(14);
    for (const t of ts) {
      const w = n(t, 'w');
      const sh = n(t, 'sh');
      const syms = t['symbols'] as number[];
      const got = (t['shifted'] as number[]);
      expect(got.length).toBe(syms.length + 1);
      got.forEach((v, j) => {
        expect(v).toBe(shiftedSymbol(syms, w, sh, j));
        // independent bit-string reading: the w bits starting sh bits before symbol j
        const bits = [0, ...syms, 0].map((g) => g.toString(2).padStart(w, '0')).join('');
        expect(v).toBe(parseInt(bits.slice(w + j * w - sh, w + j * w - sh + w), 2));
        const { prevLow, curHigh } = splitShifted(v, w, sh);
        if (j > 0) expect(prevLow).toBe((syms[j - 1] as number) % 2 ** sh);
        if (j < syms.length) expect(curHigh).toBe((syms[j] as number) - ((syms[j] as number) % 2 ** sh));
      });
    }
  });
});

describe('key schedule vectors [LM-KEY-1] [LM-KEY-2] [LM-KEY-3] [LM-KEY-7]', () => {
  const [valid, lowOrder, beforeR0] = tests(load('keys.json')) as [VectorTest, VectorTest, VectorTest];
  it('derives the same keys from the fixed inputs, on both sides', () => {
    const zG = ecdh(fromHex(s(valid, 'gatewayEphemeralSecret')), fromHex(s(valid, 'deviceEphemeralPublic')));
    const zD = ecdh(fromHex(s(valid, 'deviceEphemeralSecret')), fromHex(s(valid, 'gatewayEphemeralPublic')));
    expect(toHex(zG)).toBe(s(valid, 'z'));
    expect(toHex(zD)).toBe(s(valid, 'z'));
    const th = transcriptHash(fromHex(s(valid, 'offer')), fromHex(s(valid, 'accept')));
    expect(toHex(th)).toBe(s(valid, 'th'));
    const k = deriveSessionKeys(zG, fromHex(s(valid, 'licence')), th);
    expect([toHex(k.ckG2d), toHex(k.ckD2g), toHex(k.fkG2d), toHex(k.fkD2g)]).toEqual([s(valid, 'ckG2d0'), s(valid, 'ckD2g0'), s(valid, 'fkG2d'), s(valid, 'fkD2g')]);
    for (const [dirKey, ck] of [['g2d', k.ckG2d], ['d2g', k.ckD2g]] as const) {
      const rc = new Ratchet(ck, n(valid, 'r0'));
      for (const r of valid[dirKey] as { revision: number; hk: string; wk: string }[]) {
        const got = rc.keysFor(r.revision);
        expect({ revision: r.revision, hk: toHex(got.hk), wk: toHex(got.wk) }).toEqual(r);
      }
    }
  });
  it('refuses a low-order peer key', () => {
    expect(errName(() => ecdh(fromHex(s(lowOrder, 'secret')), fromHex(s(lowOrder, 'peerPublic'))))).toBe(lowOrder['error']);
  });
  it('the reference chain cannot go back to an erased revision [LM-KEY-4] (no vector: erasure is not observable through an adapter)', () => {
    const r0 = n(valid, 'r0');
    const rc = new Ratchet(fromHex(s(valid, 'ckG2d0')), r0);
    rc.keysFor(r0 + 2);
    expect(errName(() => rc.keysFor(r0 + 1))).toBe('rev-expired');
  });
  it('a revision below r0 has no keys [LM-KEY-7]', () => {
    const rc = new Ratchet(fromHex(s(beforeR0, 'ckG2d0')), n(beforeR0, 'r0'));
    expect(errName(() => rc.keysFor(n(beforeR0, 'asked')))).toBe('rev-expired');
    expect(beforeR0['error']).toBe('rev-expired');
  });
});

describe('AEAD vectors [LM-AEAD-1] [LM-AEAD-2] [LM-AEAD-4] [LM-TEL-1]', () => {
  it('seal and open as the vectors say', () => {
    for (const t of tests(load('aead.json'))) {
      const sid = fromHex(s(t, 'sid'));
      if (t['kind'] === 'chunk') {
        const key = fromHex(s(t, 'key'));
        const j = n(t, 'index');
        if (t.result === 'valid') {
          expect(toHex(sealChunk(key, sid, j, fromHex(s(t, 'plaintext'))))).toBe(s(t, 'ciphertext'));
          expect(toHex(openChunk(key, sid, j, fromHex(s(t, 'ciphertext'))))).toBe(s(t, 'plaintext'));
        } else expect(errName(() => openChunk(key, sid, j, fromHex(s(t, 'ciphertext'))))).toBe(t['error']);
      } else if (t['kind'] === 'wrap') {
        const wk = fromHex(s(t, 'wrapKey'));
        expect(toHex(wrapChunkKey(wk, sid, n(t, 'index'), fromHex(s(t, 'chunkKey'))))).toBe(s(t, 'wrapped'));
        expect(toHex(unwrapChunkKey(wk, sid, n(t, 'index'), fromHex(s(t, 'wrapped'))))).toBe(s(t, 'chunkKey'));
      } else {
        expect(toHex(openTelemetry(fromHex(s(t, 'wrapKey')), sid, n(t, 'seq'), fromHex(s(t, 'ciphertext'))))).toBe(s(t, 'plaintext'));
      }
    }
  });
});

describe('frame vectors [LM-FRAME-1] [LM-FRAME-2] [LM-FRAME-3] [LM-FRAME-4] [LM-CBOR-3]', () => {
  const f = load('frames.json');
  it('every frame type has a valid vector', () => {
    const types = new Set(tests(f, 'FrameTest').map((t) => t['type']));
    for (const t of Object.values(FrameType)) expect(types.has(t), FRAME_TYPE_NAMES[t]).toBe(true);
  });
  it('valid frames decode to the given form and verify', () => {
    for (const t of tests(f, 'FrameTest')) {
      const fr = decodeFrame(fromHex(s(t, 'hex')));
      expect(fr.type).toBe(t['type']);
      expect(jsonOf(fr.body)).toEqual(t['decoded']);
      const keys = { ...(t['macKey'] ? { mac: fromHex(s(t, 'macKey')) } : {}), ...(t['signerPublic'] ? { signer: fromHex(s(t, 'signerPublic')) } : {}) };
      expect(verifyFrame(fr, keys)).toBe(t['authKind'] !== 'none');
    }
  });
  it('invalid frames fail with the given reason', () => {
    for (const t of tests(f, 'InvalidFrameTest')) {
      const got = errName(() => {
        const fr = decodeFrame(fromHex(s(t, 'hex')));
        verifyFrame(fr, { ...(t['macKey'] ? { mac: fromHex(s(t, 'macKey')) } : {}), ...(t['signerPublic'] ? { signer: fromHex(s(t, 'signerPublic')) } : {}) });
      });
      expect(got, `#${t.tcId} ${t.comment}`).toBe(t['error']);
    }
  });
});

describe('session vectors [LM-FRAME-15] .. [LM-FRAME-19] [LM-PARAM-1] [LM-PARAM-6]', () => {
  const f = load('session.json');
  it('frames fit their session or fail with the given reason', () => {
    for (const t of tests(f, 'SessionFrameTest')) {
      const keys = { ...(t['macKey'] ? { macKey: s(t, 'macKey') } : {}), ...(t['signerPublic'] ? { signerPublic: s(t, 'signerPublic') } : {}) };
      const fr = decodeFrame(fromHex(s(t, 'hex')));
      verifyFrame(fr, { ...(keys.macKey ? { mac: fromHex(keys.macKey) } : {}), ...(keys.signerPublic ? { signer: fromHex(keys.signerPublic) } : {}) });
      const p = t['params'] as SessionParams;
      const e = fr.type === FrameType.HINTS ? hintsFault(fr.body, p) : fr.type === FrameType.ACCEPT ? acceptFault(fr.body, p, n(t, 'size')) : undefined;
      expect(e ? reasonName(e.code) : undefined, `#${t.tcId} ${t.comment}`).toBe(t.result === 'valid' ? undefined : t['error']);
    }
  });
  it('offer parameters are in range or refused as params', () => {
    for (const t of tests(f, 'OfferParamsTest')) {
      expect(errName(() => validateParams(t['params'] as SessionParams)), `#${t.tcId} ${t.comment}`).toBe(t.result === 'valid' ? null : t['error']);
    }
  });
});

describe('transaction vectors [LM-TX-1] .. [LM-TX-10]', () => {
  it('verify or fail as the vectors say', () => {
    for (const t of tests(load('tx.json'))) {
      const c = t['context'] as { now: number; trustedOperators: string[]; device: { id: string; publicKey: string }; gatewayPublic: string; printsUsed: number };
      const run = () => verifyTx(fromHex(s(t, 'tx')), { now: c.now, trustedOperators: c.trustedOperators.map(fromHex), device: { id: c.device.id, publicKey: fromHex(c.device.publicKey) }, gatewayPublic: fromHex(c.gatewayPublic), printsUsed: c.printsUsed });
      if (t.result === 'valid') {
        const tx = run();
        expect(toHex(tx.hash)).toBe(t['txh']);
        expect(jsonOf(tx.body)).toEqual(t['decoded']);
        expect(toHex(openLicence(tx.body.lic, fromHex(s(t, 'deviceSecret')), tx.body.dpk, tx.body.jd))).toBe(t['licence']);
      } else expect(errName(run), t.comment).toBe(t['error']);
    }
  });
});

/**
 * Each invalid test names its valid twin (`twin`): the test it differs from in exactly one thing,
 * the bytes under test or the context. The twin must pass, so the failure is the change's.
 */
function checkTwins(ts: VectorTest[], subject: string, context: string[], pass: (t: VectorTest) => void): void {
  const invalid = ts.filter((t) => t.result === 'invalid');
  expect(invalid.length).toBeGreaterThan(0);
  for (const t of invalid) {
    const twin = ts.find((x) => x.tcId === t['twin']);
    expect(twin, `#${t.tcId} ${t.comment}: twin`).toBeDefined();
    expect(twin!.result, `#${t.tcId}: twin #${twin!.tcId} is valid`).toBe('valid');
    pass(twin!);
    const sameSubject = JSON.stringify(t[subject]) === JSON.stringify(twin![subject]);
    const sameContext = context.every((k) => JSON.stringify(t[k]) === JSON.stringify(twin![k]));
    expect(sameSubject !== sameContext, `#${t.tcId} ${t.comment} differs from its twin #${twin!.tcId} in exactly one of ${subject}, context`).toBe(true);
  }
}

describe('resume ticket vectors [LM-LIC-3] [LM-LIC-4]', () => {
  const ts = tests(load('ticket.json'), 'TicketTest');
  const run = (t: VectorTest) => {
    const c = t['context'] as TicketContextJson;
    return verifyTicket(fromHex(s(t, 'ticket')), { device: c.device, devicePublic: fromHex(c.devicePublic), txh: fromHex(c.txh), now: c.now });
  };
  it('cover a valid ticket, a tampered one, another device, an expired one and another transaction', () => {
    const flags = new Set(ts.flatMap((t) => t.flags));
    for (const f of ['Tampered', 'WrongDevice', 'Expired', 'WrongTx']) expect(flags.has(f), f).toBe(true);
  });
  it('valid tickets verify to the given body; invalid ones fail with tx-resume', () => {
    for (const t of ts) {
      if (t.result === 'valid') {
        const got = run(t);
        expect(jsonOf(got.body)).toEqual(t['decoded']);
        expect(toHex(got.body.id)).toBe(t['id']);
      } else {
        expect(errName(() => run(t)), `#${t.tcId} ${t.comment}`).toBe(t['error']);
        expect(t['error']).toBe('tx-resume');
      }
    }
  });
  it('each invalid ticket fails for its one change: its valid twin passes', () => {
    checkTwins(ts, 'ticket', ['context'], (twin) => void run(twin));
  });
});

describe('revocation list vectors [LM-REVOKE-1] [LM-REVOKE-2] [LM-REVOKE-3]', () => {
  const f = load('revocation.json');
  const keys = (t: VectorTest) => (t['trustedOperators'] as string[]).map(fromHex);
  const lists = tests(f, 'RevocationListTest');
  const verifyList = (t: VectorTest) => verifyRevocation(fromHex(s(t, 'list')), keys(t));
  it('lists verify, or fail as the vectors say: untrusted or forged signer, self-revoking operator, next not after time', () => {
    const flags = new Set(lists.flatMap((t) => t.flags));
    for (const x of ['Untrusted', 'BadSignature', 'SelfRevoking', 'BadNext']) expect(flags.has(x), x).toBe(true);
    for (const t of lists) {
      if (t.result === 'valid') {
        const b = verifyList(t);
        expect(jsonOf(b)).toEqual(t['decoded']);
        expect(b.next).toBeGreaterThan(b.time);
        expect(decodeFrame(fromHex(s(t, 'list'))).type).toBe(FrameType.REVOKE);
      } else expect(errName(() => verifyList(t)), `#${t.tcId} ${t.comment}`).toBe(t['error']);
    }
    checkTwins(lists, 'list', ['trustedOperators'], (twin) => void verifyList(twin));
  });

  const refusals = tests(f, 'RevocationRefusalTest');
  const refusal = (t: VectorTest): string | null => {
    const r = new Revocations();
    expect(r.offer(fromHex(s(t, 'list')), keys(t))).toBeDefined();
    const tx = decodeTx(fromHex(s(t, 'tx')));
    const e = r.refusal(tx.body, tx.hash, n(t, 'now'));
    return e ? reasonName(e.code) : null;
  };
  it('a verifier refuses a revoked transaction, device or operator key, and everything once its list is stale', () => {
    const flags = new Set(refusals.flatMap((t) => t.flags));
    for (const x of ['Stale', 'RevokedTx', 'RevokedDevice', 'RevokedOperator']) expect(flags.has(x), x).toBe(true);
    for (const t of refusals) expect(refusal(t), `#${t.tcId} ${t.comment}`).toBe(t.result === 'valid' ? null : t['error']);
    checkTwins(refusals, 'list', ['trustedOperators', 'tx', 'now'], (twin) => expect(refusal(twin)).toBeNull());
  });
  it('a verifier that holds no list refuses nothing on its account', () => {
    const tx = decodeTx(fromHex(s(refusals[0]!, 'tx')));
    expect(new Revocations().refusal(tx.body, tx.hash, Number.MAX_SAFE_INTEGER)).toBeUndefined();
  });

  const sequences = tests(f, 'RevocationSequenceTest');
  const held = (t: VectorTest): number[] => {
    const r = new Revocations();
    const offered = t['lists'] as string[];
    return offered.map((hex) => {
      r.offer(fromHex(hex), keys(t));
      return offered.indexOf(r.current ? toHex(r.current) : '');
    });
  };
  it('keeps the newest list by seq: an older or equal seq is ignored (no rollback)', () => {
    expect(sequences.some((t) => t.result === 'invalid')).toBe(true);
    for (const t of sequences) {
      expect(held(t), `#${t.tcId} ${t.comment}`).toEqual(t['held']);
      // a rollback vector shows the list offered last was not taken
      expect((t['held'] as number[]).every((h, i) => h === i), `#${t.tcId}`).toBe(t.result === 'valid');
    }
    checkTwins(sequences, 'lists', ['trustedOperators'], (twin) => expect(held(twin)).toEqual(twin['held']));
  });
});

describe('protected job vectors [LM-PROT-1] [LM-PROT-2]', () => {
  const f = load('protected.json');
  const u64 = (j: number) => {
    const b = Buffer.alloc(8);
    b.writeBigUInt64BE(BigInt(j));
    return b;
  };

  describe('chunks [LM-PROT-1]', () => {
    const ts = tests(f, 'ProtectedChunkTest');
    const open = (t: VectorTest) => openProtectedChunk(fromHex(s(t, 'key')), fromHex(s(t, 'jid')), n(t, 'index'), fromHex(s(t, 'ciphertext')));
    it('seal to the given ciphertext and open back; the invalid ones fail with auth', () => {
      for (const t of ts) {
        if (t.result === 'valid') {
          expect(toHex(sealProtectedChunk(fromHex(s(t, 'key')), fromHex(s(t, 'jid')), n(t, 'index'), fromHex(s(t, 'plaintext'))))).toBe(s(t, 'ciphertext'));
          expect(toHex(open(t))).toBe(s(t, 'plaintext'));
        } else {
          expect(errName(() => open(t)), `#${t.tcId} ${t.comment}`).toBe(t['error']);
          expect(t['error']).toBe('auth');
        }
      }
    });
    it('match node:crypto ChaCha20-Poly1305 with nonce 0^12 and aad "lm2 chunk" || jid || u64be(j)', () => {
      for (const t of ts.filter((x) => x.result === 'valid')) {
        const c = createCipheriv('chacha20-poly1305', fromHex(s(t, 'key')), Buffer.alloc(12), { authTagLength: 16 });
        const pt = fromHex(s(t, 'plaintext'));
        c.setAAD(Buffer.concat([Buffer.from('lm2 chunk'), fromHex(s(t, 'jid')), u64(n(t, 'index'))]), { plaintextLength: pt.length });
        expect(Buffer.concat([c.update(pt), c.final(), c.getAuthTag()]).toString('hex')).toBe(s(t, 'ciphertext'));
      }
    });
    it('cover a tampered ciphertext, another j and another jid; each invalid one\'s valid twin opens', () => {
      const flags = new Set(ts.flatMap((t) => t.flags));
      for (const x of ['Tampered', 'WrongIndex', 'WrongJob', 'V1Chunk']) expect(flags.has(x), x).toBe(true);
      checkTwins(ts, 'ciphertext', ['key', 'jid', 'index'], (twin) => expect(toHex(open(twin))).toBe(s(twin, 'plaintext')));
    });
  });

  describe('upload transactions [LM-PROT-1]', () => {
    const ts = tests(f, 'UploadTest');
    const run = (t: VectorTest) => verifyUpload(fromHex(s(t, 'upload')), (t['trustedOwners'] as string[]).map(fromHex));
    it('verify to the given uh and body, or fail as the vectors say', () => {
      for (const t of ts) {
        if (t.result === 'valid') {
          const u = run(t);
          expect(toHex(u.hash)).toBe(t['uh']);
          expect(jsonOf(u.body)).toEqual(t['decoded']);
        } else expect(errName(() => run(t)), `#${t.tcId} ${t.comment}`).toBe(t['error']);
      }
    });
    it('the valid upload\'s signature verifies with node:crypto Ed25519 over "livematrix/2 upload" || 0x00 || enc(body), and uh is its SHA-256', () => {
      for (const t of ts.filter((x) => x.result === 'valid')) {
        const bytes = fromHex(s(t, 'upload'));
        const [body, sig] = decodeCbor(bytes) as [Map<number, CborValue>, Uint8Array];
        const okp = body.get(8) as Uint8Array;
        const key = createPublicKey({ key: Buffer.concat([Buffer.from('302a300506032b6570032100', 'hex'), okp]), format: 'der', type: 'spki' });
        expect(cryptoVerify(null, Buffer.concat([Buffer.from('livematrix/2 upload'), Buffer.of(0), encodeCbor(body)]), key, sig)).toBe(true);
        expect(createHash('sha256').update(bytes).digest('hex')).toBe(t['uh']);
      }
    });
    it('cover a tampered field, another signing key and an untrusted owner; each invalid one\'s valid twin verifies', () => {
      const flags = new Set(ts.flatMap((t) => t.flags));
      for (const x of ['Tampered', 'WrongOwnerKey', 'Untrusted', 'BadSignature']) expect(flags.has(x), x).toBe(true);
      checkTwins(ts, 'upload', ['trustedOwners'], (twin) => void run(twin));
    });
  });

  it('the hint layer derives from the ECDH alone: K_lic is 32 zero bytes [LM-PROT-2]', () => {
    const [t] = tests(f, 'HintLayerTest') as [VectorTest];
    expect(s(t, 'licence')).toBe(toHex(NO_LICENCE));
    const z = ecdh(fromHex(s(t, 'gatewayEphemeralSecret')), fromHex(s(t, 'deviceEphemeralPublic')));
    expect(toHex(z)).toBe(s(t, 'z'));
    const k = deriveSessionKeys(z, new Uint8Array(32), transcriptHash(fromHex(s(t, 'offer')), fromHex(s(t, 'accept'))));
    expect([toHex(k.ckG2d), toHex(k.ckD2g), toHex(k.fkG2d), toHex(k.fkD2g)]).toEqual([s(t, 'ckG2d0'), s(t, 'ckD2g0'), s(t, 'fkG2d'), s(t, 'fkD2g')]);
    for (const [dirKey, ck] of [['g2d', k.ckG2d], ['d2g', k.ckD2g]] as const) {
      const rc = new Ratchet(ck, n(t, 'r0'));
      for (const r of t[dirKey] as { revision: number; hk: string; wk: string }[]) {
        const got = rc.keysFor(r.revision);
        expect({ revision: r.revision, hk: toHex(got.hk), wk: toHex(got.wk) }).toEqual(r);
      }
    }
    // the same session with the licence (keys.json) has other keys: K_lic is not in this layer
    const v1 = tests(load('keys.json'))[0]!;
    expect(s(v1, 'offer')).toBe(s(t, 'offer'));
    expect(s(v1, 'ckG2d0')).not.toBe(s(t, 'ckG2d0'));
  });

  it('content chain: ckc = HKDF(salt = th, ikm = K_lic, "lm2 content chain") (node:crypto), W_r from its ratchet [LM-PROT-2]', () => {
    const ts = tests(f, 'ContentChainTest');
    expect(ts.length).toBeGreaterThan(0);
    for (const t of ts) {
      const ckc = contentChain(fromHex(s(t, 'licence')), fromHex(s(t, 'th')));
      expect(toHex(ckc)).toBe(s(t, 'ckc'));
      expect(Buffer.from(hkdfSync('sha256', fromHex(s(t, 'licence')), fromHex(s(t, 'th')), Buffer.from('lm2 content chain'), 32)).toString('hex')).toBe(s(t, 'ckc'));
      const rc = new Ratchet(ckc, n(t, 'r0'));
      const ck = new ContentKeys(fromHex(s(t, 'ckc')), n(t, 'r0'));
      for (const w of t['wrapKeys'] as { revision: number; wk: string }[]) {
        expect(toHex(rc.keysFor(w.revision).wk)).toBe(w.wk);
        expect(toHex(ck.keysFor(w.revision)!.wk), 'ContentKeys, as the device and the keys service hold W_r').toBe(w.wk);
      }
    }
  });

  describe('chunk keys wrapped under W_r [LM-PROT-2]', () => {
    const ts = tests(f, 'ContentWrapTest');
    const wrapKey = (t: VectorTest) => new Ratchet(contentChain(fromHex(s(t, 'licence')), fromHex(s(t, 'th'))), n(t, 'r0')).keysFor(n(t, 'revision')).wk;
    const unwrap = (t: VectorTest) => unwrapChunkKey(wrapKey(t), fromHex(s(t, 'sid')), n(t, 'index'), fromHex(s(t, 'wrapped')));
    it('wrap and unwrap as the vectors say; a wrap under the v1 or the hint layer\'s wrap key does not open', () => {
      for (const t of ts) {
        if (t.result === 'valid') {
          expect(toHex(wrapKey(t))).toBe(s(t, 'wrapKey'));
          expect(toHex(wrapChunkKey(wrapKey(t), fromHex(s(t, 'sid')), n(t, 'index'), fromHex(s(t, 'chunkKey'))))).toBe(s(t, 'wrapped'));
          expect(toHex(unwrap(t))).toBe(s(t, 'chunkKey'));
        } else expect(errName(() => unwrap(t)), `#${t.tcId} ${t.comment}`).toBe(t['error']);
      }
      const flags = new Set(ts.flatMap((t) => t.flags));
      for (const x of ['V1WrapKey', 'HintLayerWrapKey', 'WrongRevision', 'WrongIndex']) expect(flags.has(x), x).toBe(true);
      checkTwins(ts, 'wrapped', ['licence', 'th', 'r0', 'revision', 'sid', 'index'], (twin) => expect(toHex(unwrap(twin))).toBe(s(twin, 'chunkKey')));
    });
    it('the wrapped keys are the upload\'s chunk keys, which open its chunks', () => {
      const chunks = tests(f, 'ProtectedChunkTest').filter((t) => t.result === 'valid');
      for (const t of ts.filter((x) => x.result === 'valid')) {
        const c = chunks.find((x) => x.index === t['index'] && x['key'] === t['chunkKey']);
        expect(c, `#${t.tcId}: chunk ${n(t, 'index')} of the upload`).toBeDefined();
      }
    });
  });

  it('transactions naming a protected job (keys 16 jid, 17 uh) verify, or fail as the vectors say [LM-PROT-2]', () => {
    const ts = tests(f, 'ProtectedTxTest');
    const upload = tests(f, 'UploadTest')[0]!;
    const run = (t: VectorTest) => {
      const c = t['context'] as { now: number; trustedOperators: string[]; device: { id: string; publicKey: string }; gatewayPublic: string; printsUsed: number };
      return verifyTx(fromHex(s(t, 'tx')), { now: c.now, trustedOperators: c.trustedOperators.map(fromHex), device: { id: c.device.id, publicKey: fromHex(c.device.publicKey) }, gatewayPublic: fromHex(c.gatewayPublic), printsUsed: c.printsUsed });
    };
    for (const t of ts) {
      if (t.result === 'valid') {
        const tx = run(t);
        expect(toHex(tx.hash)).toBe(t['txh']);
        expect(jsonOf(tx.body)).toEqual(t['decoded']);
        // the upload's job: its jid, its hash, its size and digest
        const d = upload['decoded'] as { jid: string; size: number; jd: string };
        // its digest is the upload's, keyed by the licence ([LM-PROT-4]): not the plain SHA-256
        const keyed = toHex(keyedJobDigest(jobDigestKey(fromHex(s(t, 'licence'))), fromHex(d.jd)));
        expect([toHex(tx.body.jid!), toHex(tx.body.uh!), tx.body.size, toHex(tx.body.jd)]).toEqual([d.jid, upload['uh'], d.size, keyed]);
        expect(toHex(tx.body.jd)).not.toBe(d.jd);
      } else expect(errName(() => run(t)), `#${t.tcId} ${t.comment}`).toBe(t['error']);
    }
    checkTwins(ts, 'tx', ['context'], (twin) => void run(twin));
  });
});
