/**
 * @module @livematrix/testkit
 * What the project's tests share and the product never ships: a Mosquitto 2 broker started on a
 * loopback port with a config of its own (optionally with a TLS listener), a throw-away PostgreSQL
 * cluster, free ports and waiting for a listener, a test CA made with openssl, and an identity key
 * store that counts what it signs; a socat pty pair and a Marlin firmware simulator for the
 * machine link.
 */
export { startMosquitto, mosquittoPath, freePort, waitForPort, type RunningMosquitto } from './mosquitto.js';
export { testEngine } from './engine.js';
export { ManualClock } from './manual-clock.js';
export { startPostgres, postgresBinDir, type RunningPostgres } from './postgres.js';
export { makeTestCa, opensslPath, type CertFiles, type TestCa } from './tls-ca.js';
export { countingKeyStore, type CountingKeyStore } from './keystore.js';
export { socatPath, ptyPair, openPty, type PtyPair, type PtyEnd } from './pty.js';
export { MarlinSim, mulberry32, expectedProgram, programLineEnds, type MarlinSimOptions, type MarlinFaults, type MarlinSimStats, type MarlinSimEvents } from './marlin-sim.js';
