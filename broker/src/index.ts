/**
 * @module @livematrix/broker
 * Broker-side pieces of Live Matrix: the frame check a broker applies to every publish on a
 * protocol topic ([LM-MQTT-4]) and an embedded aedes broker.
 */
export { checkPublish, type FrameCheck } from './frame-check.js';
export { startBroker, type BrokerOptions, type RunningBroker } from './server.js';
export { livematrixPlugin, type LivematrixPlugin, type PluginOptions } from './plugin.js';
export { Registry, DEFAULT_LIMITS, aclFor, mosquittoAcl, topicMatches, filterWithin, type RegistryEntry, type Limits, type RoleName } from './registry.js';
export { Metrics } from './metrics.js';
export { runBroker, readBrokerConfig, redisBackends, type BrokerConfig, type StandaloneBroker } from './standalone.js';
export { startMosquitto, mosquittoPath, freePort, waitForPort, type RunningMosquitto } from './mosquitto.js';
