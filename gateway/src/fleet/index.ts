/**
 * @module fleet
 * `@livematrix/gateway/fleet`: the fleet service (SPEC §17): per-device job queues and their
 * state machine in a database (SQLite or PostgreSQL), run through a gateway with leases,
 * quarantine on alarms, an HTTP API with operator authentication, live events, Prometheus
 * metrics and a web dashboard.
 *
 * @example
 * const db = await openFleetDb('.livematrix/gateway.db');
 * const service = await FleetService.start({ id: 'serve-1', gateway, db, files: new FileStore('jobs'), trustedOperators: [opk], operator });
 * const { url } = await serveApi(service, { port: 8080 });
 */
export { FleetService, type FleetServiceEvents, type FleetServiceOptions } from './service.js';
export { openFleetDb } from './db/index.js';
export { FileStore, fileSha256 } from './files.js';
export { fleetEvents, type FleetEvent } from './client.js';
export { buildApi, serveApi, type HttpOptions } from './http.js';
export { authenticate, createApiKey, hashApiKey, operatorToken, type Principal } from './auth.js';
export { BadRequestError, JobTransitionError, NotFoundError } from './errors.js';
export { backoff, outcome } from './outcome.js';
export { DEFAULTS as SUBMIT_DEFAULTS } from './submit.js';
export {
  FINAL_STATES, JOB_STATES, TRANSITIONS, type AlarmRecord, type ApiKeyRecord, type DeviceRecord, type FleetDb, type JobEvent, type JobRecord, type JobSourceSpec,
  type JobState, type NewJob, type Transition,
} from './types.js';
export type { AlarmView, DeviceView, FileView, JobDetail, JobEventView, JobView, LedgerView, Snapshot, SubmitJob, TelemetrySample } from './api.js';
