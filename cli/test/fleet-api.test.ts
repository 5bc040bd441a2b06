/**
 * The fleet service's HTTP API in one process (fastify's inject, a real gateway on aedes, SQLite):
 * every /api route refuses a request without credentials and changes nothing ([LM-FLEET-5]);
 * bad bodies get 400 with a message, unknown jobs 404, forbidden moves 409 ([LM-FLEET-1]); the
 * OpenAPI description lists every route with named schemas; the metrics are Prometheus text;
 * uploads are checked and kept whole; a device's signed status (SPEC §10.2), paused with its
 * detail and readings, shows in its view and the metrics, and a STATUS signed by another key does
 * not ([LM-STATE-6]).
 */
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import mqtt from 'mqtt';
import { DeviceState, FrameType, type StatusBody, encodeFrame, frameSigner, identityKeyPair, topics } from '@livematrix/spec';
import { Device } from '@livematrix/device-sdk';
import { testEngine } from '@livematrix/testkit';
import { Gateway } from '@livematrix/gateway';
import { type DeviceView, FileStore, FleetService, buildApi, createApiKey, openFleetDb, type JobView } from '@livematrix/gateway/fleet';
import type { FastifyInstance } from 'fastify';
import { CAPS, aedes } from './harness.js';

const dir = mkdtempSync(join(tmpdir(), 'lm-fleet-api-'));
let broker: Awaited<ReturnType<typeof aedes>>;
let gw: Gateway;
let service: FleetService;
let app: FastifyInstance;
let auth: { authorization: string };
const op = identityKeyPair();
const dev = identityKeyPair();
const engine = testEngine(0); // the device here only reports its status: no hashing workers

beforeAll(async () => {
  broker = await aedes();
  gw = await Gateway.start({ url: broker.url, fleet: 'f', id: 'gw', identity: identityKeyPair(), trustedOperators: [op.publicKey], workers: 1 });
  const db = await openFleetDb(':memory:');
  service = await FleetService.start({ id: 'api-test', gateway: gw, db, files: new FileStore(join(dir, 'files'), 1024), trustedOperators: [op.publicKey], operator: op, deviceKeys: new Map([['p1', dev.publicKey]]) });
  ({ app } = await buildApi(service, { maxUpload: 1024 }));
  auth = { authorization: `Bearer ${(await createApiKey(db, 'test', Date.now())).key}` };
});
afterAll(async () => {
  await app?.close();
  await service?.stop();
  await service?.o.db.close();
  await broker?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('fleet API', () => {
  it('refuses every /api route without valid credentials, and changes nothing [LM-FLEET-5]', async () => {
    const routes: [string, string][] = [['GET', '/api/devices'], ['POST', '/api/devices/p1/clear'], ['GET', '/api/jobs'], ['POST', '/api/jobs'], ['GET', '/api/jobs/x'],
      ['POST', '/api/jobs/x/cancel'], ['POST', '/api/jobs/x/pause'], ['POST', '/api/jobs/x/resume'], ['GET', '/api/files'], ['PUT', '/api/files/a.gcode'],
      ['GET', '/api/alarms'], ['GET', '/api/ledger'], ['GET', '/api/events']];
    for (const [method, url] of routes) {
      for (const headers of [{}, { authorization: 'Bearer lmk_' + 'a'.repeat(64) }, { authorization: 'Basic eDp5' }]) {
        const r = await app.inject({ method: method as 'GET', url, headers: { ...headers, 'content-type': 'application/json' }, payload: method === 'GET' ? undefined : '{"device":"p1","file":"a.gcode"}' });
        expect(r.statusCode, `${method} ${url}`).toBe(401);
        expect(r.json()).toMatchObject({ error: 'unauthorized' });
      }
    }
    expect((await app.inject({ url: '/api/jobs', headers: auth })).json()).toEqual([]);
    expect(readdirSync(join(dir, 'files')).filter((f) => !f.startsWith('.'))).toEqual([]);
    // the open routes
    expect((await app.inject({ url: '/api/health' })).json()).toEqual({ ok: true, id: 'api-test' });
    expect((await app.inject({ url: '/' })).headers['content-type']).toMatch(/text\/html/);
  });

  it('says what is wrong: 400 for a bad body, 404 for an unknown job, 409 for a move the state machine forbids [LM-FLEET-1]', async () => {
    const post = (url: string, payload?: object) => app.inject({ method: 'POST', url, headers: auth, ...(payload ? { payload } : {}) });
    for (const bad of [{}, { device: 'p1', file: 'x', extra: 1 }, { device: 'p1', prints: 'many' }, { device: '../x', file: 'a' }]) {
      const r = await post('/api/jobs', bad);
      expect(r.statusCode, JSON.stringify(bad)).toBe(400);
      expect(r.json<{ message: string }>().message.length).toBeGreaterThan(5);
    }
    expect((await post('/api/jobs', { device: 'p1', file: 'missing.gcode' })).statusCode).toBe(404);
    expect((await app.inject({ url: '/api/jobs/j-none', headers: auth })).statusCode).toBe(404);
    const up = await app.inject({ method: 'PUT', url: '/api/files/part.gcode', headers: { ...auth, 'content-type': 'application/octet-stream' }, payload: Buffer.from('G28\nG1 X1\n') });
    expect(up.statusCode).toBe(201);
    const job = (await post('/api/jobs', { device: 'p1', file: 'part.gcode', prints: 2 })).json<JobView>();
    expect(job).toMatchObject({ device: 'p1', state: 'QUEUED', name: 'part.gcode', size: 10, attempts: 0 });
    expect((await post(`/api/jobs/${job.id}/resume`)).statusCode).toBe(409); // QUEUED -> IN_PROGRESS is the scheduler's, not an operator's
    expect((await post(`/api/jobs/${job.id}/cancel`)).json<JobView>().state).toBe('CANCELED');
    const again = await post(`/api/jobs/${job.id}/pause`);
    expect(again.statusCode).toBe(409);
    expect(again.json<{ message: string }>().message).toMatch(/CANCELED -> PAUSED/);
    const detail = (await app.inject({ url: `/api/jobs/${job.id}`, headers: auth })).json<{ events: { to: string; by: string }[] }>();
    expect(detail.events.map((e) => e.to)).toEqual(['QUEUED', 'CANCELED']);
    expect(detail.events[1]!.by).toBe('api:key:test');
  });

  it('keeps uploads whole or not at all, under names without paths', async () => {
    const put = (name: string, body: Buffer, type = 'application/octet-stream') => app.inject({ method: 'PUT', url: `/api/files/${encodeURIComponent(name)}`, headers: { ...auth, 'content-type': type }, payload: body });
    expect((await put('big.gcode', Buffer.alloc(2048))).statusCode).toBe(413);
    expect((await put('..%2Fescape.gcode', Buffer.from('x'))).statusCode).toBe(400);
    expect((await put('.hidden', Buffer.from('x'))).statusCode).toBe(400);
    expect((await put('t.gcode', Buffer.from('x'), 'text/plain')).statusCode).not.toBe(201);
    const names = readdirSync(join(dir, 'files'));
    expect(names.filter((f) => f !== '.jobs').sort()).toEqual(['part.gcode']);
    expect(readdirSync(join(dir, 'files', '.jobs')).every((f) => /^[0-9a-f]{64}$/.test(f))).toBe(true); // no partial upload left
  });

  it('describes itself: OpenAPI from the route schemas, metrics in the Prometheus format', async () => {
    const o = (await app.inject({ url: '/openapi.json' })).json<{ openapi: string; paths: Record<string, object>; components: { schemas: Record<string, object> } }>();
    expect(o.openapi).toMatch(/^3\./);
    for (const p of ['/api/devices', '/api/jobs', '/api/jobs/{id}', '/api/jobs/{id}/cancel', '/api/files/{name}', '/api/alarms', '/api/ledger', '/api/events']) expect(Object.keys(o.paths)).toContain(p);
    expect(Object.keys(o.components.schemas)).toEqual(expect.arrayContaining(['JobView', 'DeviceView', 'DeviceStatus', 'SubmitJob', 'AlarmView', 'LedgerView']));
    const m = (await app.inject({ url: '/metrics' })).body;
    expect(m).toMatch(/^# TYPE livematrix_fleet_jobs gauge$/m);
    expect(m).toMatch(/^livematrix_fleet_jobs\{state="CANCELED"\} 1$/m);
    expect(m).toMatch(/^livematrix_fleet_queue_depth 0$/m);
  });

  it('shows a device\'s signed status: paused, why, when and its readings, in GET /api/devices and the metrics; a STATUS signed by another key is not shown [LM-STATE-6]', async () => {
    const devices = async () => (await app.inject({ url: '/api/devices', headers: auth })).json<DeviceView[]>().find((d) => d.id === 'p1');
    /** Resolves once the service's view of p1 has a status that `pred` accepts (on its 'device' events, no polling). */
    const status = (pred: (s: StatusBody) => boolean) => new Promise<void>((resolve) => {
      const check = () => {
        const st = service.presence.get('p1').status?.body;
        if (!st || !pred(st)) return;
        service.off('device', check);
        resolve();
      };
      service.on('device', check);
      check();
    });
    const before = await devices();
    expect(before?.status ?? null, 'no status before the device reported one').toBeNull();
    const d = await Device.start({ url: broker.url, fleet: 'f', id: 'p1', identity: dev, trustedOperators: [op.publicKey], caps: CAPS, statusInterval: 60_000 }, engine());
    try {
      await status((s) => s.state === DeviceState.idle); // [LM-STATE-1]: one after the HELLO
      const t0 = Date.now();
      await d.setStatus({ machine: 'paused', detail: 'filament runout', readings: { nozzle_mC: 180_500, bed_mC: 60_000, progress_ppm: 420_000, filament: 'out' } });
      await status((s) => s.state === DeviceState.paused);
      const v = await devices();
      expect(v?.online).toBe(true);
      expect(v?.status).toMatchObject({ state: 'paused', detail: 'filament runout', readings: { nozzle_mC: 180_500, bed_mC: 60_000, progress_ppm: 420_000, filament: 'out' } });
      expect(v!.status!.seq).toBeGreaterThan(0);
      expect(v!.status!.time).toBeGreaterThanOrEqual(t0 - 1000);
      expect(v!.status!.received).toBeGreaterThanOrEqual(v!.status!.time - 1000);
      const m = (await app.inject({ url: '/metrics' })).body;
      expect(m).toMatch(/^livematrix_fleet_devices_reported\{state="paused"\} 1$/m);
      expect(m).toMatch(/^livematrix_fleet_devices_reported\{state="error"\} 0$/m);
      expect(m).toMatch(/^livematrix_fleet_device_reading\{device="p1",reading="nozzle_mC"\} 180500$/m);

      // [LM-STATE-6]: a later STATUS in error, of the device's current connection, but signed by another key: the gateway drops it, the view does not change
      const forged = encodeFrame(FrameType.STATUS, { device: 'p1', state: DeviceState.error, seq: v!.status!.seq + 1, time: Date.now(), bd: v!.status!.bd, detail: 'forged' }, frameSigner(identityKeyPair()));
      const dropped = new Promise<string>((resolve) => gw.on('reject', (r) => void (/STATUS of "p1" ignored/.test(r.detail) && resolve(r.detail))));
      const c = await mqtt.connectAsync(broker.url, { protocolVersion: 4, reconnectPeriod: 0 });
      try {
        await c.publishAsync(topics.deviceStatus('f', 'p1'), Buffer.from(forged), { qos: 1 });
        expect(await dropped).toMatch(/LM-STATE-6/);
      } finally {
        await c.endAsync();
      }
      expect((await devices())?.status).toMatchObject({ state: 'paused', detail: 'filament runout', seq: v!.status!.seq });
    } finally {
      await d.stop();
    }
  });
});
