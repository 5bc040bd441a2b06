/**
 * @module @livematrix/testkit
 * What the project's tests share and the product never ships: a Mosquitto 2 broker started on a
 * loopback port with a config of its own, a throw-away PostgreSQL cluster, free ports and waiting
 * for a listener.
 */
export { startMosquitto, mosquittoPath, freePort, waitForPort, type RunningMosquitto } from './mosquitto.js';
export { testEngine } from './engine.js';
export { ManualClock } from './manual-clock.js';
export { startPostgres, postgresBinDir, type RunningPostgres } from './postgres.js';
