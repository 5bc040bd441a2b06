/**
 * The fleet service's dashboard in a real browser (headless Chromium through playwright-core):
 * `livematrix broker` with a registry, two `livematrix device` processes and `livematrix serve`
 * as operators run them, and the page at the link `serve` prints.
 * - The link's operator token signs the page in (and leaves the address bar); a job submitted
 *   with the form shows up in the queue, goes IN_PROGRESS with its progress, then SUCCEEDED; the
 *   fleet table shows the device streaming it, the ledger gets its receipt, and the device's
 *   output equals the file byte for byte. No console error or warning, no uncaught page error.
 * - Each machine's signed status (SPEC §10.2) shows, outside sessions too: printer-2, a device of
 *   the SDK whose host reports it paused, shows `paused`, how long ago, why, and its readings in
 *   their units (°C from _mC, % from _ppm, the rest as it is), in the live events and GET
 *   /api/devices as in the page; printer-1 (`--simulate-telemetry`) shows `streaming` with its
 *   temperatures and progress while the job runs, `idle` after.
 * - On a phone (390x844) the page does not overflow sideways and the fleet table shows.
 * - Without a token the page asks to sign in and the API refuses it (401); a wrong token is
 *   refused with the service's message, a right one signs in.
 * Everything waits on the DOM or on the processes' output, never on fixed sleeps. Chromium is
 * Debian's (apt-get install chromium), or $LIVEMATRIX_CHROMIUM; it is never downloaded. Set
 * LIVEMATRIX_SCREENSHOT=PATH to save a 1280x800 full-page screenshot while the job streams.
 */
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { type Browser, type BrowserContext, type Page, chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fromHex } from '@livematrix/spec';
import { readIdentityFile } from '@livematrix/spec/keyfile';
import { Device } from '@livematrix/device-sdk';
import { testEngine } from '@livematrix/testkit';
import type { DeviceView, JobView } from '@livematrix/gateway/fleet';
import { type Running, STATE } from './cli-harness.js';
import { Api, type Fleet, dashboardLink, device, fleet, serve } from './fleet-kit.js';
import { CAPS, GCODE } from './harness.js';

const cylinder = readFileSync(join(GCODE, 'cylinder_annular.gcode'));
const step = (s: string) => console.log(`${new Date().toISOString().slice(11, 23)} ${s}`);
const WAIT = 30_000; // the longest any one DOM condition may take on a busy 2-core machine

/** The little of the DOM that the functions run in the page use (this package compiles without lib.dom). */
declare const document: { querySelector(sel: string): InPage | null; querySelectorAll(sel: string): Iterable<InPage>; documentElement: { scrollWidth: number } };
interface InPage { textContent: string | null; getAttribute(name: string): string | null }

/** The Chromium to drive: $LIVEMATRIX_CHROMIUM, else Debian's or Google's where they install it. */
const CHROMIUM = (process.env['LIVEMATRIX_CHROMIUM'] ? [process.env['LIVEMATRIX_CHROMIUM']] : ['/usr/bin/chromium', '/usr/bin/chromium-browser', '/usr/bin/google-chrome']).find((p) => existsSync(p));
const MISSING = `Chromium is not installed${process.env['LIVEMATRIX_CHROMIUM'] ? ` at LIVEMATRIX_CHROMIUM=${process.env['LIVEMATRIX_CHROMIUM']}` : ''}`;

/** Whether the browser tests run: Chromium is here, or CI requires it (and then they fail without it). */
function chromiumHere(): boolean {
  const inCI = process.env['CI'] === 'true';
  if (!CHROMIUM) console.warn(inCI ? `${MISSING}, and CI requires it: the dashboard browser tests will fail` : `${MISSING}: skipping the dashboard browser tests (apt-get install chromium; .ci/run installs it)`);
  return CHROMIUM !== undefined || inCI;
}

/** Every console error and warning and every uncaught error of the pages of `context`. */
function problems(context: BrowserContext): string[] {
  const seen: string[] = [];
  const watch = (page: Page) => {
    page.on('console', (m) => {
      if (m.type() === 'error' || m.type() === 'warning') seen.push(`console ${m.type()}: ${m.text()} (${m.location().url}:${m.location().lineNumber})`);
    });
    page.on('pageerror', (e) => seen.push(`page error: ${e.stack ?? e.message}`));
  };
  context.pages().forEach(watch);
  context.on('page', watch);
  return seen;
}

/** Resolves once the element with test id `id` has the text `text`. */
const text = (page: Page, id: string, want: string) =>
  page.waitForFunction(([id, want]) => document.querySelector(`[data-testid="${id}"]`)?.textContent === want, [id, want] as const, { timeout: WAIT });

/** What printer-2's host reports: paused, why, and its readings (SPEC §10.2). */
const PAUSED = { machine: 'paused', detail: 'filament runout', readings: { nozzle_mC: 180_500, bed_mC: 60_000, progress_ppm: 420_000, filament: 'out' } } as const;

/** Resolves once the element with test id `id` has text that contains every one of `parts`. */
const contains = (page: Page, id: string, parts: string[]) =>
  page.waitForFunction(([id, parts]) => parts.every((p) => document.querySelector(`[data-testid="${id}"]`)?.textContent?.includes(p)), [id, parts] as const, { timeout: WAIT });

describe.runIf(chromiumHere())('the dashboard in a real browser', () => {
  const engine = testEngine(0); // printer-2 only reports its status: no hashing workers
  let launching: Promise<Browser> | undefined;
  let browser: Browser | undefined;
  let f: Fleet | undefined;
  let paused: Device | undefined;
  const procs: Running[] = [];
  let link = '';
  let base = '';

  beforeAll(async () => {
    if (!CHROMIUM) throw new Error(`${MISSING}, and CI requires it (apt-get install chromium; .ci/run installs it)`);
    launching = chromium.launch({
      executablePath: CHROMIUM, headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
    launching.catch(() => undefined); // (awaited below: no unhandled rejection meanwhile)
    f = await fleet(['printer-1', 'printer-2']);
    procs.push(f.broker);
    // printer-1 consumes 600 kB/s: the 2 MB job streams for a few seconds, its progress visible,
    // and its readings in a STATUS every 2 s; printer-2 is a machine its host paused: a device of
    // the SDK as a vendor's host runs it, which says so in its signed status (SPEC §10.2)
    const p1 = device(f, 'printer-1', 600_000, ['--simulate-telemetry', '--status-interval', '2000']);
    procs.push(p1);
    paused = await Device.start({
      url: f.url, fleet: 'default', id: 'printer-2', identity: readIdentityFile(join(f.dir, 'printer-2.json')), trustedOperators: [fromHex(f.keys.get('operator')!)],
      brokerAuth: 'token', caps: CAPS,
    }, engine());
    await paused.setStatus(PAUSED);
    await p1.waitFor(/online/);
    const s = await serve(f);
    procs.push(s.proc);
    link = await dashboardLink(s.proc);
    base = s.http;
    expect(link.startsWith(`${base}#token=lmt.`), link).toBe(true);
    browser = await launching;
    step(`fleet up, ${browser.version()}`);
  });

  afterAll(async () => {
    await (await launching?.catch(() => undefined))?.close(); // launched even when the fleet did not start
    await paused?.stop();
    for (const p of procs) p.kill();
    await Promise.all(procs.map((p) => p.catch(() => undefined)));
    if (f) rmSync(f.dir, { recursive: true, force: true });
    rmSync(STATE, { recursive: true, force: true });
  });

  it('signs in from the link, follows a job submitted with the form to SUCCEEDED, and fits a phone', async () => {
    const context = await browser!.newContext({ viewport: { width: 1280, height: 800 } });
    try {
      const seen = problems(context);
      const page = await context.newPage();
      await page.goto(link);
      await text(page, 'conn-status', 'live');
      expect(new URL(page.url()).hash, 'the token leaves the address bar').toBe('');
      step('live');

      // printer-2's signed status: paused, reported just now, why, its readings in their units;
      // the same in the live events and in GET /api/devices
      const api = new Api(base, f!.token);
      const reported = await api.device('printer-2', (d) => d.status?.state === 'paused');
      expect(reported.status).toMatchObject({ detail: PAUSED.detail, readings: PAUSED.readings });
      const listed = (await api.call<DeviceView[]>('GET', '/api/devices')).body.find((d) => d.id === 'printer-2');
      expect(listed?.status).toMatchObject({ state: 'paused', detail: PAUSED.detail, readings: PAUSED.readings, seq: reported.status!.seq });
      await text(page, 'device-status-printer-2', 'paused');
      await text(page, 'device-status-detail-printer-2', 'filament runout');
      await contains(page, 'device-readings-printer-2', ['nozzle: 180.5 °C', 'bed: 60.0 °C', 'progress: 42.0 %', 'filament: out']);
      expect(await page.getByTestId('device-status-age-printer-2').textContent()).toMatch(/^(just now|\d+ s ago)$/);
      expect(await page.getByTestId('device-state-printer-2').textContent(), 'the fleet\'s own view: online, no job').toBe('idle');
      step('printer-2 paused');

      // submit with the form; the POST's answer names the job
      await page.getByTestId('submit-device').selectOption('printer-1', { timeout: WAIT });
      await page.getByTestId('submit-file').selectOption('cylinder_annular.gcode', { timeout: WAIT });
      const [answer] = await Promise.all([
        page.waitForResponse((r) => new URL(r.url()).pathname === '/api/jobs' && r.request().method() === 'POST', { timeout: WAIT }),
        page.getByTestId('submit-button').click({ timeout: WAIT }),
      ]);
      expect(answer.status()).toBe(201);
      const job = (await answer.json()) as JobView;
      expect(job).toMatchObject({ device: 'printer-1', name: 'cylinder_annular.gcode' });
      await page.getByTestId(`job-row-${job.id}`).waitFor({ timeout: WAIT });
      step(`job ${job.id} in the queue`);

      // streaming: the job IN_PROGRESS with part of its bytes acknowledged, printer-1 streaming it
      await text(page, `job-state-${job.id}`, 'IN_PROGRESS');
      await page.waitForFunction((id) => Number(document.querySelector(`[data-testid="job-progress-${id}"]`)?.getAttribute('aria-valuenow')) >= 10, job.id, { timeout: WAIT });
      await text(page, 'device-state-printer-1', 'streaming');
      // its telemetry drawn: nozzle and bed sparklines of at least two samples ([LM-FLEET-6])
      await page.waitForFunction(() => ['nozzle_mC', 'bed_mC'].every((f) => (document.querySelector(`[data-testid="device-row-printer-1"] svg.spark.${f} polyline`)?.getAttribute('points') ?? '').trim().split(/\s+/).length >= 2), undefined, { timeout: WAIT });
      // and its signed status: streaming, with the simulated readings in °C and %
      await text(page, 'device-status-printer-1', 'streaming');
      await page.waitForFunction(() => /nozzle: 2\d\d\.\d °C/.test(document.querySelector('[data-testid="device-readings-printer-1"]')?.textContent ?? '')
        && /progress: \d+\.\d %/.test(document.querySelector('[data-testid="device-readings-printer-1"]')?.textContent ?? ''), undefined, { timeout: WAIT });
      const shot = process.env['LIVEMATRIX_SCREENSHOT'];
      if (shot) {
        mkdirSync(dirname(shot), { recursive: true });
        await page.screenshot({ path: shot, fullPage: true });
        step(`screenshot ${shot}`);
      }
      const row = page.getByTestId('device-row-printer-1');
      expect(await row.textContent()).toContain('printer-1');
      expect(await row.textContent()).toContain('cylinder_annular.gcode'); // its job cell
      step('in progress');

      await text(page, `job-state-${job.id}`, 'SUCCEEDED');
      step('succeeded');
      await text(page, 'device-state-printer-1', 'idle'); // the ended job leaves the device row at once
      await text(page, 'device-status-printer-1', 'idle'); // and the device says so
      expect(await page.getByTestId(`job-progress-${job.id}`).getAttribute('aria-valuenow')).toBe('100');
      expect(await page.getByTestId('device-row-printer-1').textContent()).toContain('printer-1');
      // its receipt in the ledger table
      await page.waitForFunction(() => [...document.querySelectorAll('[data-testid="ledger-table"] tbody tr')]
        .some((tr) => tr.textContent?.includes('printer-1') && tr.textContent.includes('cylinder_annular.gcode')), undefined, { timeout: WAIT });
      expect(readFileSync(join(f!.dir, 'out-printer-1.gcode')).equals(cylinder), 'the device wrote the file byte for byte').toBe(true);
      expect(seen, `console errors or warnings, or page errors:\n${seen.join('\n')}`).toEqual([]);

      // a phone: reloaded (signed in from storage), no sideways overflow, the fleet table shows
      await page.setViewportSize({ width: 390, height: 844 });
      await page.reload();
      await text(page, 'conn-status', 'live');
      await page.getByTestId(`job-row-${job.id}`).waitFor({ timeout: WAIT });
      const width = await page.evaluate(() => document.documentElement.scrollWidth);
      expect(width, 'no horizontal overflow at 390 px').toBeLessThanOrEqual(390);
      expect(await page.getByTestId('fleet-table').isVisible()).toBe(true);
      expect(await page.getByTestId('device-row-printer-1').isVisible()).toBe(true);
      expect(seen, `console errors or warnings, or page errors:\n${seen.join('\n')}`).toEqual([]);
      step('phone');
    } finally {
      await context.close();
    }
  }, 90_000);

  it('without a token asks to sign in, and the API refuses the page (401); a wrong token is refused, a right one signs in', async () => {
    const context = await browser!.newContext({ viewport: { width: 1280, height: 800 } });
    try {
      const seen = problems(context);
      const page = await context.newPage();
      await page.goto(base);
      await page.getByTestId('signin-token').waitFor({ timeout: WAIT });
      expect(await page.getByTestId('fleet-table').isVisible()).toBe(false);
      expect(await page.getByTestId('conn-status').textContent()).toBe('signed out');
      expect(await page.evaluate(async () => (await fetch('/api/devices')).status)).toBe(401);

      await page.getByTestId('signin-token').fill('lmk_not-a-key');
      await page.getByTestId('signin-button').click();
      await page.locator('#signin-msg').waitFor({ timeout: WAIT }); // the service's reason, in the form
      expect(await page.getByTestId('fleet-table').isVisible()).toBe(false);

      await page.getByTestId('signin-token').fill(f!.token);
      await page.getByTestId('signin-button').click();
      await text(page, 'conn-status', 'live');
      await page.getByTestId('device-row-printer-1').waitFor({ timeout: WAIT });

      // Chromium logs every refused request as a console error: those are the 401s asked for above
      const refused = 'Failed to load resource: the server responded with a status of 401 (Unauthorized)';
      const others = seen.filter((s) => !s.startsWith(`console error: ${refused} `));
      expect(others, `console errors or warnings, or page errors:\n${others.join('\n')}`).toEqual([]);
      expect(seen.length, 'the two refusals').toBeGreaterThanOrEqual(2);
    } finally {
      await context.close();
    }
  }, 60_000);
});
