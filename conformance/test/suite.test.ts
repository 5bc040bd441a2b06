/**
 * The suite itself: its coverage lint, its generated IDs, its reports, and the vectors profile
 * through the example adapter.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DEVICE_SCENARIOS, REQUIREMENTS, buildReport, lint, renderJunit, renderText, runVectors, vectorCoverage } from '../src/index.js';
import { renderRequirementsModule } from '../scripts/gen-requirements.js';

const root = join(import.meta.dirname, '..', '..');

describe('conformance suite', () => {
  it('src/generated/requirements.ts is current with spec/requirements.json', () => {
    const want = renderRequirementsModule(readFileSync(join(root, 'spec', 'requirements.json'), 'utf8'));
    expect(readFileSync(join(root, 'conformance', 'src', 'generated', 'requirements.ts'), 'utf8')).toBe(want);
  });

  it('lint: every testable device/vectors requirement has a test, every cited ID exists', () => {
    expect(lint(DEVICE_SCENARIOS)).toEqual([]);
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

  it('lint catches a test that cites an unknown ID and a requirement left uncovered', () => {
    const bogus = { id: 'x', title: 'x', covers: ['LM-NOPE-1'] as never[], run: async () => undefined };
    const withoutHello = DEVICE_SCENARIOS.filter((s) => s.id !== 'device/hello');
    expect(lint([...DEVICE_SCENARIOS, bogus]).some((p) => p.includes('LM-NOPE-1'))).toBe(true);
    expect(lint(withoutHello).some((p) => p.includes('LM-MQTT-2'))).toBe(true);
  });

  it('reports every ID with PASS, FAIL, NOT EXECUTED or NOT TESTABLE, as text, JSON and JUnit', () => {
    const r = buildReport('device', 'unit', [
      { id: 'a', title: 'a', covers: ['LM-TX-2'], status: 'pass', ms: 1 },
      { id: 'b', title: 'b <&>', covers: ['LM-TX-4'], status: 'fail', message: 'bad "x"', ms: 2 },
    ]);
    expect(r.requirements.length).toBe(Object.keys(REQUIREMENTS).length);
    const st = (id: string) => r.requirements.find((q) => q.id === id)?.status;
    expect(st('LM-TX-2')).toBe('PASS');
    expect(st('LM-TX-4')).toBe('FAIL');
    expect(st('LM-SEC-3')).toBe('NOT TESTABLE');
    expect(st('LM-BRK-1')).toBe('NOT EXECUTED');
    expect(r.passed).toBe(false);
    expect(renderText(r)).toMatch(/1 passed, 1 failed/);
    const junit = renderJunit(r);
    expect(junit).toMatch(/<testsuites name="livematrix-conformance" tests="2" failures="1"/);
    expect(junit).toContain('<failure message="bad &quot;x&quot;"/>');
    expect(junit).toContain('<property name="requirement" value="LM-TX-4"/>');
  });

  it('a licence ID is PASS only when a scenario that covers it ran and passed', () => {
    const result = (id: string, status: 'pass' | 'fail') => {
      const s = DEVICE_SCENARIOS.find((x) => x.id === id)!;
      return { id: s.id, title: s.title, covers: s.covers, status, ms: 1 };
    };
    const st = (r: ReturnType<typeof buildReport>, id: string) => r.requirements.find((q) => q.id === id)?.status;
    // only device/offer-replay ran: LM-LIC-5 is PASS, the IDs of the scenarios left out are not
    const one = buildReport('device', 'unit', [result('device/offer-replay', 'pass')]);
    expect(['LM-LIC-5', 'LM-LIC-1', 'LM-LIC-4', 'LM-REVOKE-3'].map((id) => st(one, id))).toEqual(['PASS', 'NOT EXECUTED', 'NOT EXECUTED', 'NOT EXECUTED']);
    // LM-LIC-1 is covered twice: one failing scenario fails it
    const two = buildReport('device', 'unit', [result('device/setup-counts-nothing', 'pass'), result('device/ticket-resumes-once', 'fail')]);
    expect(['LM-LIC-1', 'LM-LIC-3', 'LM-LIC-4', 'LM-LIC-5'].map((id) => st(two, id))).toEqual(['FAIL', 'FAIL', 'FAIL', 'NOT EXECUTED']);
    expect(st(two, 'LM-LIC-2')).toBe('NOT TESTABLE');
  });

  it('vectors profile: the example adapter passes every vector', async () => {
    const adapter = `node ${join(root, 'conformance', 'dist', 'src', 'adapter-example.js')}`;
    const results = await runVectors(adapter);
    expect(results.length).toBeGreaterThan(200);
    expect(results.filter((x) => x.status === 'fail')).toEqual([]);
    const r = buildReport('vectors', adapter, results);
    expect(r.requirements.find((q) => q.id === 'LM-PACK-3')?.status).toBe('PASS');
  }, 60_000);

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
