/**
 * @module @livematrix/broker
 * Broker-side pieces of Live Matrix: the frame check a broker applies to every publish on a
 * protocol topic ([LM-MQTT-4]) and an embedded aedes broker.
 */
export { checkPublish, type FrameCheck } from './frame-check.js';
export { startBroker, type BrokerOptions, type RunningBroker } from './server.js';
