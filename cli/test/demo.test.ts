/**
 * `npm start` (`livematrix demo`) as the README's first command runs it: the whole chain in one
 * process, jobs through the fleet service (SPEC §17), the dashboard's URL printed and served
 * while it runs (--keep), both printers' output equal to the file, the ledger verified, and a
 * clean exit on Ctrl-C.
 */
import { describe, expect, it } from 'vitest';
import type { JobView } from '@livematrix/gateway/fleet';
import { cli } from './cli-harness.js';
import { Api } from './fleet-kit.js';

describe('livematrix demo', () => {
  it('streams through the fleet service, prints the dashboard URL, serves it until SIGINT, and says both printers got the file', async () => {
    const demo = cli(['demo', '--keep', '--port', '0']);
    const url = await demo.waitFor(/dashboard: (http:\/\/[^#\s]+)#token=(\S+)/, 'out');
    await demo.waitFor(/Ctrl-C ends the demo/, 'out');
    expect(demo.out).toContain('Both printers received exactly the file');
    expect(demo.out).toMatch(/receipt ledger: 2 records, chain and every device signature verified/);
    expect(demo.out).toMatch(/\| fleet service \|/);
    const api = new Api(url[1]!, url[2]!);
    const jobs = (await api.call<JobView[]>('GET', '/api/jobs')).body;
    expect(jobs.map((j) => `${j.device} ${j.state} ${j.kind} ${j.progress === j.size}`).sort()).toEqual(['printer-a SUCCEEDED stored true', 'printer-b SUCCEEDED stored true']);
    const page = await fetch(url[1]!);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('<title>');
    demo.kill('SIGINT');
    const r = await demo;
    expect(r.code, r.err).toBe(0);
  }, 90_000);
});
