/**
 * The suite itself: its coverage lint, its generated IDs, its reports, and the vectors profile
 * through the example adapter.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { type Checks, DEVICE_SCENARIOS, PROFILES, REQUIREMENTS, buildReport, levelsOf, lint, renderJunit, renderText, runTest, runVectors, vectorCoverage } from '../src/index.js';
import { renderRequirementsModule } from '../scripts/gen-requirements.js';

const root = join(import.meta.dirname, '..', '..');

describe('conformance suite', () => {
  it('src/generated/requirements.ts is current with spec/requirements.json', () => {
    const want = renderRequirementsModule(readFileSync(join(root, 'spec', 'requirements.json'), 'utf8'));
    expect(readFileSync(join(root, 'conformance', 'src', 'generated', 'requirements.ts'), 'utf8')).toBe(want);
  });

  it('lint: every testable requirement of the V, D, G and B profiles has a test, every cited ID exists, one level per requirement', () => {
    expect(lint(PROFILES.flatMap((p) => p.tests()))).toEqual([]);
  });

  it('protected jobs are tested in both profiles they belong to: vectors and a device scenario [LM-PROT-1] [LM-PROT-2]', () => {
    const vectors = vectorCoverage();
    const scenarios = new Set(DEVICE_SCENARIOS.flatMap((s) => s.covers));
    for (const id of ['LM-PROT-1', 'LM-PROT-2'] as const) {
      expect(REQUIREMENTS[id].profiles).toEqual(expect.arrayContaining(['V', 'D']));
      expect(vectors.has(id), `${id}: a vector`).toBe(true);
      expect(scenarios.has(id), `${id}: a device scenario`).toBe(true);
    }
  });

  it('lint catches a test that cites an unknown ID, a requirement left uncovered, and a requirement with two levels', () => {
    const all = PROFILES.flatMap((p) => p.tests());
    const bogus = { id: 'x', title: 'x', covers: ['LM-NOPE-1'] };
    expect(lint([...all, bogus]).some((p) => p.includes('LM-NOPE-1'))).toBe(true);
    // LM-BRK-5 (a broker's metrics) is declared by broker/metrics alone, and by no vector
    expect(all.filter((s) => s.covers.includes('LM-BRK-5')).map((s) => s.id)).toEqual(['broker/metrics']);
    expect(lint(all.filter((s) => s.id !== 'broker/metrics')).some((p) => p.includes('LM-BRK-5'))).toBe(true);
    const texts = [{ id: 'LM-TX-2', text: 'A gateway MUST refuse X and SHOULD log it.' }, { id: 'LM-TX-3', text: 'A device MUST NOT accept Y.' }];
    const problems = lint(all, vectorCoverage(), texts);
    expect(problems.filter((p) => p.includes('more than one level'))).toEqual(['LM-TX-2 states more than one level (MUST, SHOULD): one normative statement per ID']);
    expect(levelsOf('MUST NOT x, MUST NOT y')).toEqual(['MUST NOT']);
  });

  it('reports every ID with PASS, FAIL, NOT EXECUTED or NOT TESTABLE from the checks that ran, as text, JSON and JUnit', () => {
    const r = buildReport('device', 'unit', [
      { id: 'a', title: 'a', covers: ['LM-TX-2'], status: 'pass', ms: 1, checks: [{ id: 'LM-TX-2', status: 'pass' }] },
      { id: 'b', title: 'b <&>', covers: ['LM-TX-4', 'LM-TX-5'], status: 'fail', message: 'bad "x"', ms: 2, checks: [{ id: 'LM-TX-4', status: 'fail', message: 'bad "x"' }] },
    ]);
    expect(r.requirements.length).toBe(Object.keys(REQUIREMENTS).length);
    const st = (id: string) => r.requirements.find((q) => q.id === id)?.status;
    expect(st('LM-TX-2')).toBe('PASS');
    expect(st('LM-TX-4')).toBe('FAIL');
    // declared by the failing test, never checked: not executed, with the reason
    expect(st('LM-TX-5')).toBe('NOT EXECUTED');
    expect(r.requirements.find((q) => q.id === 'LM-TX-5')?.reason).toMatch(/not reached: b stopped/);
    expect(st('LM-SEC-3')).toBe('NOT TESTABLE');
    expect(st('LM-BRK-1')).toBe('NOT EXECUTED');
    expect(r.passed).toBe(false);
    expect(renderText(r)).toMatch(/1 passed, 1 failed/);
    const junit = renderJunit(r);
    expect(junit).toMatch(/<testsuites name="livematrix-conformance" tests="2" failures="1"/);
    expect(junit).toContain('<failure message="bad &quot;x&quot;"/>');
    expect(junit).toContain('<property name="failed-requirement" value="LM-TX-4"/>');
  });

  it('an ID is PASS only when a check of it ran and passed; a failing check fails only its own ID', async () => {
    // one test checks two IDs and fails at the second: the first stays PASS, a third it declares is NOT EXECUTED
    const t = await runTest({ id: 't', title: 't', covers: ['LM-LIC-1', 'LM-LIC-3', 'LM-LIC-4'] }, async (c: Checks) => {
      c.check('LM-LIC-1', true, 'counted');
      c.check('LM-LIC-3', false, 'no ticket');
      c.check('LM-LIC-4', true, 'never reached');
    });
    expect(t.status).toBe('fail');
    expect(t.checks).toEqual([{ id: 'LM-LIC-1', status: 'pass' }, { id: 'LM-LIC-3', status: 'fail', message: 'no ticket' }]);
    const r = buildReport('device', 'unit', [t]);
    const st = (id: string) => r.requirements.find((q) => q.id === id)?.status;
    expect(['LM-LIC-1', 'LM-LIC-3', 'LM-LIC-4', 'LM-LIC-5'].map(st)).toEqual(['PASS', 'FAIL', 'NOT EXECUTED', 'NOT EXECUTED']);
    // a test that declares IDs but runs no check passes nothing
    const empty = await runTest({ id: 'e', title: 'e', covers: ['LM-LIC-5'] }, async () => undefined);
    expect(empty.status).toBe('fail');
    expect(buildReport('device', 'unit', [empty]).requirements.find((q) => q.id === 'LM-LIC-5')?.status).toBe('NOT EXECUTED');
    // an error outside a check stops the test: what it checked before stays PASS
    const thrown = await runTest({ id: 'x', title: 'x', covers: ['LM-TX-2', 'LM-TX-3'] }, async (c: Checks) => {
      c.check('LM-TX-2', true, '');
      throw new Error('broker gone');
    });
    expect(thrown).toMatchObject({ status: 'fail', message: 'broker gone' });
    const rx = buildReport('device', 'unit', [thrown]);
    expect(rx.requirements.find((q) => q.id === 'LM-TX-2')?.status).toBe('PASS');
    expect(rx.requirements.find((q) => q.id === 'LM-TX-3')?.status).toBe('NOT EXECUTED');
  });

  it('vectors profile: the example adapter passes every vector, probe and garbage input; every ID a vector cites is PASS', async () => {
    const adapter = `node ${join(root, 'conformance', 'dist', 'src', 'adapter-example.js')}`;
    const results = await runVectors(adapter);
    expect(results.length).toBeGreaterThan(500);
    expect(results.filter((x) => x.status === 'fail')).toEqual([]);
    const r = buildReport('vectors', adapter, results);
    expect(r.passed).toBe(true);
    const st = (id: string) => r.requirements.find((q) => q.id === id)?.status;
    for (const id of vectorCoverage()) expect(st(id), id).toBe('PASS');
    // [LM-CBOR-1] is checked where the adapter encodes, [LM-TX-1] where it opens a licence with the device's secret
    const checking = (id: string) => results.filter((t) => t.checks.some((c) => c.id === id)).map((t) => t.id.replace(/^vectors\/[^/]+\/\d+\//, ''));
    // (a decoder's refusal of unsorted keys is [LM-CBOR-3], not the encoder's rule)
    expect(new Set(checking('LM-CBOR-1'))).toEqual(new Set(['encode_frame', 'encode_payload']));
    expect(new Set(checking('LM-TX-1'))).toEqual(new Set(['tx', 'licence']));
    expect(results.filter((t) => t.id.startsWith('vectors/protocol/')).length).toBeGreaterThan(5);
    expect(results.filter((t) => t.id.startsWith('vectors/garbage/')).every((t) => t.checks.every((c) => c.id === 'LM-CBOR-6'))).toBe(true);
  }, 60_000);

  it('vectors profile: its tests, as list and the lint see them, declare every ID its vector files cite, one test per file', async () => {
    const { VECTOR_FILES, vectorTests } = await import('../src/vectors-profile.js');
    const tests = vectorTests();
    // and the garbage frames [LM-CBOR-6]
    expect(new Set(tests.flatMap((t) => t.covers))).toEqual(new Set([...vectorCoverage(), 'LM-CBOR-6']));
    expect(tests.map((t) => t.id)).toEqual([...VECTOR_FILES.map((f) => `vectors/${f.replace('.json', '')}`), 'vectors/protocol', 'vectors/garbage']);
    // a verifier's finding is not a running gateway's behaviour: one record per RECEIPT, serialised appends
    for (const id of ['LM-LEDGER-3', 'LM-LEDGER-4']) expect(tests.some((t) => t.covers.includes(id)), id).toBe(false);
  });

  it('vectors profile: every ID a vector cites is checked by one of that vector\'s requests (a citation without a request would count for the lint and check nothing)', async () => {
    const { uncheckedCitations, vectorTests } = await import('../src/vectors-profile.js');
    expect(uncheckedCitations()).toEqual([]);
    // rules the vectors exercise no behaviour of (review of the vector citations): decoding a frame
    // is not a device's refusal, a service's trust check, a receiver's advisory handling or tamper
    // count; a validator's verdict is not a gateway's offer; erasure is not observable
    const covered = new Set(vectorTests().flatMap((t) => t.covers));
    for (const id of ['LM-SVC-6', 'LM-FRAME-9', 'LM-LIC-6', 'LM-FRAME-5', 'LM-ALARM-3', 'LM-TIME-3', 'LM-PARAM-7', 'LM-KEY-4']) expect(covered.has(id), id).toBe(false);
    // ... and what they do: the sender's authentication kinds, best of N samples, the keyed job digest, the telemetry AEAD
    for (const id of ['LM-FRAME-21', 'LM-TIME-6', 'LM-PROT-4', 'LM-TEL-1', 'LM-CBOR-1', 'LM-CBOR-3']) expect(covered.has(id), id).toBe(true);
  });

  it('vectors profile: an adapter that answers wrongly fails', async () => {
    // an adapter that claims every unpack succeeds: the invalid packing vectors must fail
    const adapter = `node -e "require('readline').createInterface({input:process.stdin}).on('line',l=>{const r=JSON.parse(l);console.log(JSON.stringify({id:r.id,ok:true,bytes:'',hint:'00',symbols:[]}))})"`;
    const results = await runVectors(adapter);
    // only the empty-input packing vectors happen to match its empty answers
    const passed = results.filter((x) => x.status === 'pass');
    expect(passed.every((x) => x.id.startsWith('vectors/pack') && x.title.startsWith('empty'))).toBe(true);
    expect(results.filter((x) => x.id.startsWith('vectors/pack') && x.title.includes('padding')).every((x) => x.status === 'fail')).toBe(true);
    expect(results.length - passed.length).toBeGreaterThan(200);
  }, 60_000);
});
