/**
 * The vectors profile's adapter protocol and its semantic vectors: the example adapter answers
 * every request, however wrong, with a typed answer (fuzzed with fast-check); the vector files of
 * spec/scripts/semantic-vectors.ts are current; and adapters that break one rule (an unsorted
 * CBOR map, a licence opened with the wrong X25519 secret, an ambiguous hint resolved to a
 * candidate, a crash on bad input) fail exactly the IDs of that rule.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { answer } from '../src/adapter-example.js';
import { buildReport } from '../src/report.js';
import { runVectors } from '../src/vectors-profile.js';
import { buildSemanticVectors } from '../../spec/scripts/semantic-vectors.js';
import { renderVectorFile } from '../../spec/scripts/vectors.js';

const root = join(import.meta.dirname, '..', '..');
const example = join(root, 'conformance', 'dist', 'src', 'adapter-example.js');
const tmp = mkdtempSync(join(tmpdir(), 'lm-adapter-vectors-'));
afterAll(() => { if (!process.env['KEEP_TMP']) rmSync(tmp, { recursive: true, force: true }); });

const OPS = [
  'session_frame', 'ledger_verify', 'ledger_append', 'segments', 'envelope_open', 'epoch_keys', 'epoch_open', 'delete_sign', 'delete_verify', 'deletion_receipt_sign', 'deletion_receipt',
  'hint', 'hints', 'table', 'pack', 'unpack', 'shift', 'ecdh', 'keys', 'ratchet', 'chunk_seal', 'chunk_open', 'wrap', 'encode_frame', 'frame', 'encode_payload', 'tx', 'licence', 'ticket', 'revocation',
  'revocation_refusal', 'revocation_sequence', 'protected_seal', 'protected_open', 'upload', 'content_keys', 'content_unwrap', 'sender_revision', 'accept_revision', 'timesync', 'params',
  'telemetry_seal', 'telemetry_open',
] as const;
const FIELDS = [
  'chainKey', 'suite', 'hk', 'w', 'L', 'g', 'bytes', 'hints', 'n', 'symbols', 'sh', 'secret', 'peerPublic', 'licence', 'offer', 'accept', 'r0', 'revisions', 'key', 'sid', 'index', 'plaintext', 'ciphertext',
  'wrapKey', 'chunkKey', 'type', 'body', 'auth', 'hex', 'macKey', 'signerPublic', 'fields', 'tx', 'context', 'deviceSecret', 'ticket', 'list', 'trustedOperators', 'now', 'lists', 'jid',
  'upload', 'trustedOwners', 'th', 'revision', 'wrapped', 'g', 'epoch', 'period', 'grace', 'r', 'd', 'samples', 'params', 'wk', 'seq', 'wt', 'ctlen', 'payload',
  'size', 'records', 'after', 'time', 'receipt', 'gateway', 'chunks', 'density', 'C', 'envelope', 'keysServiceSecret', 'chain', 'count', 'stored', 'segmentId', 'ownerSecret',
  'delete', 'ownerPublic', 'service', 'removed', 'dh', 'serviceSecret', 'servicePublic',
] as const;

/** Values a field may get: mostly well-formed (so requests reach the implementation), some of every wrong kind. */
const value: fc.Arbitrary<unknown> = fc.letrec((tie) => ({
  v: fc.oneof(
    { weight: 3, arbitrary: fc.integer({ min: 0, max: 40 }) },
    { weight: 1, arbitrary: fc.constantFrom(-1, 1.5, 2 ** 53, 2 ** 32, 1e300, Number.MAX_SAFE_INTEGER) },
    { weight: 3, arbitrary: fc.uint8Array({ maxLength: 80 }).map((b) => Buffer.from(b).toString('hex')) },
    { weight: 2, arbitrary: fc.constantFrom(32, 16, 48, 64).chain((n) => fc.uint8Array({ minLength: n, maxLength: n }).map((b) => Buffer.from(b).toString('hex'))) },
    { weight: 1, arbitrary: fc.string({ maxLength: 12 }) },
    { weight: 1, arbitrary: fc.constantFrom(null, true, false, 'sig', 'mac', 'none', 'zz', '0') },
    { weight: 1, arbitrary: fc.array(tie('v'), { maxLength: 4 }) },
    { weight: 1, arbitrary: fc.dictionary(fc.oneof(fc.constantFrom('0', '1', '2', '3', '4', '5', '6', '7', 't1', 't2', 't3', 't4', 'id', 'now'), fc.string({ maxLength: 4 })), tie('v'), { maxKeys: 5 }) },
  ),
})).v;

/** A request: a known op (or not) with a random subset of the fields ops read. */
const request = fc.record({
  id: fc.oneof({ weight: 9, arbitrary: fc.integer({ min: 0, max: 1e9 }) }, { weight: 1, arbitrary: fc.constantFrom(undefined, 'x', 1.5, null) }),
  op: fc.oneof({ weight: 9, arbitrary: fc.constantFrom(...OPS) }, { weight: 1, arbitrary: fc.oneof(fc.string({ maxLength: 8 }), fc.constant(7)) }),
  fields: fc.dictionary(fc.constantFrom(...FIELDS), value, { maxKeys: 8 }),
}).map(({ id, op, fields }) => ({ ...fields, ...(id === undefined ? {} : { id }), op }));

const TYPED = /^(bad-request|unsupported|malformed|trailing|noncanonical|too-large|too-deep|version|unknown-type|schema|auth|unknown-session|rev-expired|rev-future|busy|unknown|ambiguous|padding|replay|tx-[a-z]+|skew|params|rate|tamper|digest|aborted|timeout|offline)$/;

describe('the example adapter answers every request with a typed answer', () => {
  it('fuzzed requests: an answer per line, its id, ok true or a typed error, never internal', async () => {
    await fc.assert(fc.asyncProperty(request, async (r) => {
      const a = await answer(JSON.stringify(r));
      const id = typeof r.id === 'number' && Number.isSafeInteger(r.id) ? r.id : null;
      expect(a['id']).toBe(id);
      if (a['ok'] !== true) {
        expect(a['ok']).toBe(false);
        expect(String(a['error']), `${JSON.stringify(r).slice(0, 300)} -> ${JSON.stringify(a)}`).toMatch(TYPED);
      }
      expect(() => JSON.stringify(a)).not.toThrow();
    }), { numRuns: 3000, seed: 20261128 });
  }, 60_000);

  it('lines that are not requests: id null, bad-request', async () => {
    await fc.assert(fc.asyncProperty(fc.oneof(fc.string(), fc.json().filter((j) => !/^\{/.test(j))), async (line) => {
      const a = await answer(line);
      expect(a).toMatchObject({ id: null, ok: false, error: 'bad-request' });
    }), { numRuns: 500, seed: 7 });
    expect(await answer('{"id": 3, "op": "nope"}')).toMatchObject({ id: 3, ok: false, error: 'unsupported' });
    expect(await answer('{"id": 4, "op": "hint", "suite": 3}')).toMatchObject({ id: 4, ok: false, error: 'bad-request' });
  });

  it('the process keeps answering after garbage, in order of the lines it read', async () => {
    const child = spawn(process.execPath, [example], { stdio: ['pipe', 'pipe', 'inherit'] });
    const answers: Record<string, unknown>[] = [];
    const done = new Promise<void>((res) => {
      createInterface({ input: child.stdout }).on('line', (l) => {
        answers.push(JSON.parse(l) as Record<string, unknown>);
        if (answers.length === 5) res();
      });
    });
    for (const l of ['\u0000\u00ff garbage', '{"id": 1', '{"id": 2, "op": "frame", "hex": "ff"}', '[]', '{"id": 5, "op": "pack", "w": 8, "bytes": "ab"}']) child.stdin.write(l + '\n');
    await done;
    child.kill();
    expect(answers.map((a) => [a['id'], a['error'] ?? a['symbols']])).toEqual([[null, 'bad-request'], [null, 'bad-request'], [2, 'malformed'], [null, 'bad-request'], [5, [0xab]]]);
  });
});

describe('semantic vectors (spec/scripts/semantic-vectors.ts)', () => {
  const built = buildSemanticVectors();
  for (const [name, v] of Object.entries(built)) {
    it(`${name} equals what npm run spec:vectors writes`, () => {
      expect(readFileSync(join(root, 'spec', 'vectors', 'v1', name), 'utf8')).toBe(renderVectorFile(v));
    });
  }
  it('every vector cites requirement IDs and every invalid one an error', () => {
    for (const v of Object.values(built)) {
      for (const t of v.testGroups.flatMap((g) => g.tests)) {
        expect(t.requirements.length).toBeGreaterThan(0);
        if (t.result === 'invalid') expect(typeof t['error']).toBe('string');
      }
    }
  });
});

/**
 * An adapter that is the example adapter except for `fault`: the body of a function
 * `(r, a) => a` that may change the answer `a` to the request `r`.
 */
function faulty(name: string, fault: string): string {
  const f = join(tmp, `${name}.mjs`);
  writeFileSync(f, `import { createInterface } from 'node:readline';
import { answer } from ${JSON.stringify(example)};
const fault = async (r, a) => { ${fault} };
let last = Promise.resolve();
createInterface({ input: process.stdin }).on('line', (l) => {
  let r = null;
  try { r = JSON.parse(l); } catch {}
  last = last.then(async () => { process.stdout.write(JSON.stringify(await fault(r, await answer(l))) + '\\n'); });
});
`);
  return `${JSON.stringify(process.execPath)} ${JSON.stringify(f)}`;
}

describe('adapters that break one rule fail its IDs', () => {
  const statusOf = async (adapter: string) => {
    const r = buildReport('vectors', adapter, await runVectors(adapter));
    return { r, st: (id: string) => r.requirements.find((q) => q.id === id)?.status };
  };

  it('map keys not sorted by their encoding: [LM-CBOR-1] FAIL, decoding still PASS', async () => {
    // encodes a payload's map with its text keys in string order instead of by their encoding (shorter first)
    const { r, st } = await statusOf(faulty('unsorted', `
      if (r && r.op === 'encode_payload' && a.ok) {
        const keys = Object.keys(r.fields).sort();
        const entry = async (k) => (await answer(JSON.stringify({ id: 0, op: 'encode_payload', fields: { [k]: r.fields[k] } }))).payload.slice(2);
        a.payload = (keys.length < 24 ? (0xa0 + keys.length).toString(16) : 'b8' + keys.length.toString(16).padStart(2, '0')) + (await Promise.all(keys.map(entry))).join('');
      }
      return a;`));
    expect(st('LM-CBOR-1')).toBe('FAIL');
    expect(st('LM-CBOR-3')).toBe('PASS');
    expect(st('LM-FRAME-2')).toBe('PASS');
    expect(r.tests.filter((t) => t.status === 'fail').every((t) => t.id.startsWith('vectors/encode/'))).toBe(true);
  }, 60_000);

  it('an adapter that cannot open sealed licences (refuses good ones, opens bad ones): [LM-TX-1] FAIL', async () => {
    const { r, st } = await statusOf(faulty('licence', `
      if (r && (r.op === 'licence' || (r.op === 'tx' && r.deviceSecret)) && a.ok) return { id: a.id, ok: false, error: 'tx-schema' };
      if (r && r.op === 'licence' && !a.ok) return { id: a.id, ok: true, licence: '00'.repeat(32) };
      return a;`));
    expect(st('LM-TX-1')).toBe('FAIL');
    expect(st('LM-TX-3')).toBe('PASS');
    expect(r.tests.filter((t) => t.status === 'fail').every((t) => t.covers.includes('LM-TX-1'))).toBe(true);
  }, 60_000);

  it('an ambiguous hint resolved to a candidate: [LM-HINT-3] FAIL', async () => {
    const { st } = await statusOf(faulty('ambiguous', `
      if (r && r.op === 'table' && a.ok) a.lookup = a.lookup.map((x) => (x === 'ambiguous' ? 0 : x));
      return a;`));
    expect(st('LM-HINT-3')).toBe('FAIL');
    expect(st('LM-HINT-1')).toBe('PASS');
  }, 60_000);

  it('telemetry decoded by a gateway that takes ambiguous hints: [LM-TEL-2] FAIL', async () => {
    const { st } = await statusOf(faulty('telemetry', `
      if (r && r.op === 'telemetry_open' && a.error === 'ambiguous') return { id: a.id, ok: true, payload: '', fields: {} };
      return a;`));
    expect(st('LM-TEL-2')).toBe('FAIL');
    expect(st('LM-TEL-1')).toBe('PASS');
  }, 60_000);

  it('a protected job\'s jd taken as the plaintext\'s SHA-256, unkeyed: [LM-PROT-4] FAIL, the transaction still PASS', async () => {
    const { r, st } = await statusOf(faulty('unkeyed-jd', `
      if (r && r.op === 'job_digest' && a.ok) a.jd = r.digest;
      return a;`));
    expect(st('LM-PROT-4')).toBe('FAIL');
    expect(st('LM-PROT-2')).toBe('PASS');
    expect(r.tests.filter((t) => t.status === 'fail').map((t) => t.id)).toEqual([expect.stringMatching(/^vectors\/protected\/\d+\/job_digest$/)]);
  }, 60_000);

  it('telemetry sealed into hints one bit off: [LM-TEL-1] FAIL (aead.json and telemetry.json)', async () => {
    const { r, st } = await statusOf(faulty('telemetry-aad', `
      if (r && r.op === 'telemetry_seal' && a.ok) a.hints = a.hints.slice(0, -2) + (parseInt(a.hints.slice(-2), 16) ^ 1).toString(16).padStart(2, '0');
      return a;`));
    expect(st('LM-TEL-1')).toBe('FAIL');
    expect(r.tests.some((t) => t.status === 'fail' && t.id.startsWith('vectors/aead/'))).toBe(true);
  }, 60_000);

  it('an adapter that answers bad input with internal, or dies on it, fails the run', async () => {
    const internal = await runVectors(faulty('internal', `if (a.error === 'bad-request' || a.error === 'unsupported') a.error = 'internal'; return a;`));
    expect(internal.filter((t) => t.status === 'fail').map((t) => t.id).sort()).toEqual(expect.arrayContaining(['vectors/protocol/bad-hex', 'vectors/protocol/not-json', 'vectors/protocol/unknown-op']));
    expect(buildReport('vectors', 'x', internal).passed).toBe(false);
    // dies on the first line it cannot parse: the probes after it fail at once, not after a timeout each
    const t0 = Date.now();
    const dying = await runVectors(faulty('dying', `if (r === null) process.exit(3); return a;`));
    expect(dying.find((t) => t.id === 'vectors/protocol/not-json')?.status).toBe('fail');
    expect(dying.filter((t) => t.id.startsWith('vectors/garbage/')).every((t) => t.status === 'fail' && /exited/.test(t.message ?? ''))).toBe(true);
    expect(Date.now() - t0).toBeLessThan(30_000);
  }, 60_000);
});
