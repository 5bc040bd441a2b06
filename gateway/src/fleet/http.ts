/**
 * @module fleet/http
 * The fleet service's HTTP API (fastify), its live events (server-sent), Prometheus metrics and
 * the dashboard's static files. Shapes: api.ts; schemas: views.ts, from which /openapi.json is
 * generated. Every /api route but /api/health needs an operator's credentials ([LM-FLEET-5]).
 */
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import swagger from '@fastify/swagger';
import { Metrics } from '@livematrix/spec/metrics';
import { LmError } from '@livematrix/spec';
import type { SubmitJob } from './api.js';
import { type Principal, authenticate } from './auth.js';
import { BadRequestError, JobTransitionError, NotFoundError, TooLargeError } from './errors.js';
import { recentLedger } from './ledger-view.js';
import type { FleetService } from './service.js';
import { JOB_STATES, type JobState } from './types.js';
import { DEVICE_STATES, REPORTED_STATES, SCHEMAS, alarmView, deviceState, deviceView, eventView, jobView, machineState } from './views.js';
import { EventHub } from './events.js';

export interface HttpOptions {
  /** default 127.0.0.1 */
  host?: string;
  /** default 8080; 0 picks a free port */
  port?: number;
  /** largest job file accepted by PUT /api/files, bytes; default 512 MiB */
  maxUpload?: number;
}

declare module 'fastify' {
  interface FastifyRequest {
    principal?: Principal;
  }
}

/** The dashboard's files: gateway/dashboard, beside dist/ once built. */
function dashboardDir(): string {
  return resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'dashboard');
}

const STATIC: Record<string, string> = { '/': 'index.html', '/app.js': 'app.js', '/view.js': 'view.js', '/style.css': 'style.css' };
const TYPES: Record<string, string> = { html: 'text/html; charset=utf-8', js: 'text/javascript; charset=utf-8', css: 'text/css; charset=utf-8' };

function statusOf(e: unknown): { status: number; error: string; message: string } {
  if (e instanceof TooLargeError) return { status: 413, error: 'too-large', message: e.message };
  if (e instanceof BadRequestError || e instanceof LmError || e instanceof RangeError) return { status: 400, error: 'bad-request', message: e.message };
  if (e instanceof NotFoundError) return { status: 404, error: 'not-found', message: e.message };
  if (e instanceof JobTransitionError) return { status: 409, error: 'conflict', message: e.message };
  const v = e as { validation?: unknown; statusCode?: number; message?: string; code?: string };
  if (v.validation || (v.statusCode !== undefined && v.statusCode >= 400 && v.statusCode < 500)) return { status: v.statusCode ?? 400, error: v.code ?? 'bad-request', message: v.message ?? 'bad request' };
  return { status: 500, error: 'internal', message: 'internal error (see the service log)' };
}

/** Service metrics in the Prometheus text format. */
function serviceMetrics(s: FleetService, hub: EventHub): { m: Metrics; refresh: () => Promise<void> } {
  const m = new Metrics();
  const counts: Record<JobState, number> = Object.fromEntries(JOB_STATES.map((k) => [k, 0])) as Record<JobState, number>;
  const refresh = async () => void Object.assign(counts, await s.o.db.counts());
  s.on('ledger', (l) => {
    m.inc('livematrix_fleet_jobs_succeeded_total', 'jobs whose receipt reached the ledger');
    m.inc('livematrix_fleet_bytes_streamed_total', 'plaintext bytes of jobs that succeeded', {}, l.bytes);
  });
  s.on('alarm', (a) => m.inc('livematrix_fleet_alarms_total', 'alarms seen, by reason and origin', { reason: alarmView(a).reason, origin: a.origin }));
  s.on('started', () => m.inc('livematrix_fleet_streams_total', 'streams started'));
  s.on('report', (r) => {
    m.inc('livematrix_fleet_resends_total', 'HINTS frames sent again, in streams that completed', {}, r.resends);
    m.inc('livematrix_fleet_wire_bytes_total', 'bytes on the wire of streams that completed', {}, r.wireBytes);
  });
  m.gauge('livematrix_fleet_jobs', 'jobs by state', () => JOB_STATES.map((k) => [{ state: k }, counts[k]] as [Record<string, string>, number]));
  m.gauge('livematrix_fleet_queue_depth', 'jobs QUEUED', () => counts.QUEUED);
  m.gauge('livematrix_fleet_streams_running', 'streams running on this instance', () => s.running());
  m.gauge('livematrix_fleet_sse_clients', 'dashboards and other clients following events', () => hub.clients);
  m.gauge('livematrix_fleet_device_state', 'each device\'s state (1 for its current one)', () => s.knownDevices().map((id) => [{ device: id, state: deviceState(s, id) }, 1] as [Record<string, string>, number]));
  m.gauge('livematrix_fleet_device_progress_bytes', 'plaintext bytes the device acknowledged of its open job', () => s.knownDevices().flatMap((id) => {
    const j = s.openJob(id);
    return j ? [[{ device: id, job: j.id }, j.progress] as [Record<string, string>, number]] : [];
  }));
  m.gauge('livematrix_fleet_devices', 'devices by state', () => {
    const by = new Map<string, number>();
    for (const id of s.knownDevices()) {
      const st = deviceState(s, id);
      by.set(st, (by.get(st) ?? 0) + 1);
    }
    return DEVICE_STATES.map((k) => [{ state: k }, by.get(k) ?? 0] as [Record<string, string>, number]);
  });
  // what the devices say of themselves in their signed status (SPEC §10.2)
  m.gauge('livematrix_fleet_devices_reported', 'devices by the state of their latest signed status; offline once their Last Will came, unknown before any status', () => {
    const by = new Map<string, number>();
    for (const id of s.knownDevices()) {
      const st = machineState(s, id);
      by.set(st, (by.get(st) ?? 0) + 1);
    }
    return [...REPORTED_STATES, 'unknown'].map((k) => [{ state: k }, by.get(k) ?? 0] as [Record<string, string>, number]);
  });
  m.gauge('livematrix_fleet_device_reading', 'integer readings of each device\'s latest signed status, in the unit their names state (nozzle_mC: thousandths of a degree Celsius)', () => s.knownDevices().flatMap((id) => {
    const st = s.presence.get(id).status;
    return [...(st?.body.tel ?? [])].filter((e): e is [string, number] => typeof e[1] === 'number').map(([k, v]) => [{ device: id, reading: k }, v] as [Record<string, string>, number]);
  }));
  return { m, refresh };
}

/** Builds the API on a service (not listening yet). */
export async function buildApi(s: FleetService, o: HttpOptions = {}): Promise<{ app: FastifyInstance; hub: EventHub }> {
  // extra properties are refused, not silently dropped: a misspelt field is an error the operator sees
  const app = Fastify({ logger: false, bodyLimit: 1 << 20, ajv: { customOptions: { removeAdditional: false } } });
  const hub = new EventHub(s);
  const metrics = serviceMetrics(s, hub);
  await app.register(swagger, {
    openapi: {
      info: { title: 'Live Matrix fleet service', version: '1.0.0', description: 'Job queues, devices, alarms and the receipt ledger of a Live Matrix fleet (SPEC section 17).' },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'an API key (lmk_...) or an operator token (lmt....)' } } },
      security: [{ bearer: [] }],
    },
    // components named by their $id (JobView, DeviceView, ...), not def-0, def-1
    refResolver: { buildLocalReference: (json, _base, _fragment, i) => (typeof json['$id'] === 'string' ? json['$id'] : `def-${i}`) },
  });
  for (const sc of SCHEMAS) app.addSchema(sc);
  app.addContentTypeParser('application/octet-stream', (_req, payload, done) => done(null, payload));
  app.setErrorHandler((e, _req, reply) => {
    const r = statusOf(e);
    if (r.status === 500) s.emit('log', `API: ${e instanceof Error ? e.stack ?? e.message : String(e)}`);
    void reply.code(r.status).send({ error: r.error, message: r.message });
  });
  // [LM-FLEET-5]: every /api route but health needs credentials; nothing runs before they check out
  app.addHook('onRequest', async (req: FastifyRequest, reply: FastifyReply) => {
    const path = req.url.split('?')[0]!;
    if (!path.startsWith('/api/') || path === '/api/health') return;
    const p = await authenticate(req.headers.authorization, s.o.db, s.o.trustedOperators, s.clock.now());
    if (!p) return reply.code(401).header('www-authenticate', 'Bearer').send({ error: 'unauthorized', message: 'an API key or an operator token is needed (Authorization: Bearer ...)' });
    req.principal = p;
  });
  const who = (req: FastifyRequest) => `api:${req.principal?.who ?? '?'}`;
  const err = { 400: { $ref: 'Error#' }, 401: { $ref: 'Error#' }, 404: { $ref: 'Error#' }, 409: { $ref: 'Error#' } };
  const idParam = { type: 'object', properties: { id: { type: 'string', maxLength: 64 } }, required: ['id'] } as const;

  app.get('/api/health', { schema: { security: [], response: { 200: { type: 'object', properties: { ok: { type: 'boolean' }, id: { type: 'string' } } } } } }, async () => ({ ok: true, id: s.id }));
  app.get('/api/devices', { schema: { summary: 'devices with presence, state, open job, telemetry and their signed status (SPEC section 10.2)', response: { 200: { type: 'array', items: { $ref: 'DeviceView#' } } } } }, async () => s.knownDevices().map((id) => deviceView(s, id)));
  app.post<{ Params: { id: string } }>('/api/devices/:id/clear', { schema: { summary: 'lift a device\'s quarantine', params: idParam, response: { 200: { $ref: 'DeviceView#' }, ...err } } }, async (req) => {
    await s.clear(req.params.id, who(req));
    return deviceView(s, req.params.id);
  });
  app.get<{ Querystring: { state?: JobState; device?: string; limit?: number } }>('/api/jobs', {
    schema: { summary: 'jobs, newest first', querystring: { type: 'object', properties: { state: { type: 'string', enum: JOB_STATES }, device: { type: 'string' }, limit: { type: 'integer', minimum: 1, maximum: 1000 } } }, response: { 200: { type: 'array', items: { $ref: 'JobView#' } } } },
  }, async (req) => (await s.o.db.jobs({ ...(req.query.device ? { device: req.query.device } : {}), ...(req.query.state ? { states: [req.query.state] } : {}), limit: req.query.limit ?? 200 })).map(jobView));
  app.post<{ Body: SubmitJob }>('/api/jobs', { schema: { summary: 'queue a job', body: { $ref: 'SubmitJob#' }, response: { 201: { $ref: 'JobView#' }, ...err } } }, async (req, reply) => {
    const j = await s.submit(req.body, who(req));
    return reply.code(201).send(jobView(j));
  });
  app.get<{ Params: { id: string } }>('/api/jobs/:id', { schema: { summary: 'a job and its transitions', params: idParam, response: { 200: { $ref: 'JobDetail#' }, ...err } } }, async (req) => {
    const j = await s.o.db.job(req.params.id);
    if (!j) throw new NotFoundError(`no job ${req.params.id}`);
    return { ...jobView(j), events: (await s.o.db.events(j.id)).map(eventView) };
  });
  for (const action of ['cancel', 'pause', 'resume'] as const) {
    app.post<{ Params: { id: string } }>(`/api/jobs/:id/${action}`, { schema: { summary: `${action} a job`, params: idParam, response: { 200: { $ref: 'JobView#' }, ...err } } }, async (req) => jobView(await s[action](req.params.id, who(req))));
  }
  app.get('/api/files', { schema: { summary: 'job files the service holds', response: { 200: { type: 'array', items: { $ref: 'FileView#' } } } } }, async () => s.o.files.list());
  app.put<{ Params: { name: string } }>('/api/files/:name', {
    bodyLimit: o.maxUpload ?? 512 * 2 ** 20,
    schema: { summary: 'upload a job file (application/octet-stream)', params: { type: 'object', properties: { name: { type: 'string', maxLength: 128 } }, required: ['name'] }, response: { 201: { $ref: 'FileView#' }, ...err } },
  }, async (req, reply) => {
    if (req.headers['content-type'] !== 'application/octet-stream') throw new BadRequestError('upload the file as application/octet-stream');
    const f = await s.o.files.put(req.params.name, req.body as NodeJS.ReadableStream as import('node:stream').Readable);
    hub.files();
    return reply.code(201).send(f);
  });
  app.get('/api/alarms', { schema: { summary: 'alarms, newest first', response: { 200: { type: 'array', items: { $ref: 'AlarmView#' } } } } }, async () => (await s.o.db.alarms(100)).map(alarmView));
  app.get<{ Querystring: { limit?: number } }>('/api/ledger', {
    schema: { summary: 'receipt ledger, newest first', querystring: { type: 'object', properties: { limit: { type: 'integer', minimum: 1, maximum: 1000 } } }, response: { 200: { type: 'array', items: { $ref: 'LedgerView#' } } } },
  }, async (req) => recentLedger(s.o.gateway.db, req.query.limit ?? 50));
  app.get('/api/events', { schema: { summary: 'live events (text/event-stream): snapshot, device, job, alarm, ledger' } }, (req, reply) => {
    reply.hijack();
    void hub.follow(req.raw, reply.raw);
  });
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
  app.get('/metrics', { schema: { hide: true } }, async (_req, reply) => {
    await metrics.refresh(); // job counts as the database has them now (several instances may share it)
    return reply.type('text/plain; version=0.0.4').send(metrics.m.render());
  });
  const dir = dashboardDir();
  for (const [route, file] of Object.entries(STATIC)) {
    app.get(route, { schema: { hide: true } }, async (_req, reply) => {
      const body = readFileSync(join(dir, file));
      return reply.type(TYPES[file.split('.').pop()!]!).header('cache-control', 'no-cache').header('content-security-policy', "default-src 'self'; img-src 'self' data:; style-src 'self'").send(body);
    });
  }
  app.addHook('onClose', async () => hub.close());
  return { app, hub };
}

/** Builds the API and listens; resolves with its URL. */
export async function serveApi(s: FleetService, o: HttpOptions = {}): Promise<{ app: FastifyInstance; url: string }> {
  const { app } = await buildApi(s, o);
  await app.listen({ host: o.host ?? '127.0.0.1', port: o.port ?? 8080 });
  const a = app.server.address();
  const port = typeof a === 'object' && a ? a.port : o.port ?? 8080;
  return { app, url: `http://${o.host ?? '127.0.0.1'}:${port}/` };
}
