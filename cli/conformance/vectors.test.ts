/**
 * The vectors profile as a vendor runs it: `livematrix-conformance vectors --adapter CMD --report
 * DIR` as a process, against the example adapter around @livematrix/spec. Every requirement ID
 * the profile's vector files cite must come out PASS, with the adapter encoding (frames, CBOR,
 * hints, MACs, signatures) and decoding (field values) and opening licences; an adapter that
 * answers wrongly makes the run fail (exit 1).
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { Report } from '@livematrix/conformance';
import { runProfile } from './kit.js';

const root = join(import.meta.dirname, '..', '..');
const example = join(root, 'conformance', 'dist', 'src', 'adapter-example.js');
const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

type ReportJson = Report;

/** Runs the vectors profile against `adapter`; resolves with its exit code and report.json. */
async function runVectorsProfile(adapter: string): Promise<{ code: number | null; report: ReportJson; ms: number; err: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'lm-vectors-profile-'));
  dirs.push(dir);
  const r = await runProfile(['vectors', '--adapter', adapter, '--report', dir], true, { cwd: root });
  return { code: r.code, report: r.report, ms: r.ms, err: r.stderr };
}

/** The requirement IDs the profile's vector files cite. */
async function citedIds(): Promise<string[]> {
  const { VECTOR_FILES } = (await import(join(root, 'conformance', 'dist', 'src', 'vectors-profile.js'))) as { VECTOR_FILES: readonly string[] };
  const ids = new Set<string>();
  for (const f of VECTOR_FILES) {
    const v = JSON.parse(readFileSync(join(root, 'spec', 'vectors', 'v1', f), 'utf8')) as { testGroups: { tests: { requirements: string[] }[] }[] };
    for (const g of v.testGroups) for (const t of g.tests) for (const id of t.requirements) ids.add(id);
  }
  return [...ids].sort();
}

describe('livematrix-conformance vectors, as a process', () => {
  it('the example adapter: exit 0, every ID a vector file cites PASS, the protocol probes and garbage frames answered', async () => {
    const { code, report, ms, err } = await runVectorsProfile(`${JSON.stringify(process.execPath)} ${JSON.stringify(example)}`);
    expect(code, err).toBe(0);
    expect(report.passed).toBe(true);
    expect(report.tests.filter((t) => t.status !== 'pass')).toEqual([]);
    const status = new Map(report.requirements.map((q) => [q.id, q]));
    const ids = await citedIds();
    expect(ids).toEqual(expect.arrayContaining([
      'LM-TX-1', 'LM-CBOR-1', 'LM-HINT-3', 'LM-REV-2', 'LM-TIME-2', 'LM-PARAM-5', 'LM-TEL-2',
      'LM-FRAME-15', 'LM-FRAME-16', 'LM-FRAME-17', 'LM-FRAME-18', 'LM-FRAME-19', 'LM-PARAM-6', 'LM-PROT-4', 'LM-FRAME-21', 'LM-TIME-6',
      'LM-LEDGER-1', 'LM-LEDGER-2', 'LM-LEDGER-5', 'LM-LEDGER-6', 'LM-LEDGER-7', 'LM-SVC-1', 'LM-SVC-2', 'LM-SVC-3', 'LM-SVC-5',
    ]));
    for (const id of ids) expect(status.get(id)?.status, `${id}: ${status.get(id)?.reason ?? ''}`).toBe('PASS');
    // the encoder is driven, and the adapter protocol probed
    for (const prefix of [
      'vectors/encode/', 'vectors/licence/', 'vectors/table/', 'vectors/clock/', 'vectors/params/', 'vectors/telemetry/', 'vectors/session/', 'vectors/ledger/', 'vectors/ledger-append/',
      'vectors/protocol/', 'vectors/garbage/',
    ]) {
      expect(report.tests.some((t) => t.id.startsWith(prefix)), prefix).toBe(true);
    }
    expect(ms).toBeLessThan(120_000);
  });

  it('an adapter that answers every request "ok" with nothing in it: exit 1, the IDs FAIL, in seconds (an answer without an id fails its probe at once)', async () => {
    const liar = `${JSON.stringify(process.execPath)} -e ${JSON.stringify("require('readline').createInterface({input:process.stdin}).on('line',(l)=>{let id=null;try{id=JSON.parse(l).id}catch{}console.log(JSON.stringify({id,ok:true}))})")}`;
    const { code, report, ms } = await runVectorsProfile(liar);
    expect(code).toBe(1);
    // the lines it cannot read get {"ok": true} without an id: a protocol failure of that probe, not a 10 s timeout
    for (const probe of ['no-id', 'not-an-object']) expect(report.tests.find((t) => t.id === `vectors/protocol/${probe}`)?.message ?? '', probe).toMatch(/without a usable id/);
    expect(ms).toBeLessThan(8_000);
    expect(report.passed).toBe(false);
    const st = (id: string) => report.requirements.find((q) => q.id === id)?.status;
    for (const id of ['LM-TX-1', 'LM-CBOR-1', 'LM-HINT-3', 'LM-TIME-2', 'LM-CBOR-6', 'LM-FRAME-15', 'LM-LEDGER-6', 'LM-LEDGER-7', 'LM-SVC-2', 'LM-SVC-3', 'LM-SVC-5']) expect(st(id), id).toBe('FAIL');
    expect(report.tests.find((t) => t.id === 'vectors/protocol/unknown-op')?.status).toBe('fail');
  });
});
