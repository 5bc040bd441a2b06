/**
 * @module @livematrix/broker
 * Broker-side pieces of Live Matrix: the frame check a broker applies to every publish on a
 * protocol topic ([LM-MQTT-4]), the aedes plugin of the broker profile ([LM-BRK-1] to [LM-BRK-16],
 * [LM-REVOKE-4]), and embedded and standalone aedes brokers.
 */
export { checkFrame, checkPublish, topicClass, type FrameCheck, type TopicClass } from './frame-check.js';
export { startBroker, type BrokerOptions, type RunningBroker } from './server.js';
export { livematrixPlugin, type LivematrixPlugin, type PluginOptions } from './plugin.js';
export { Registry, DEFAULT_LIMITS, aclFor, clientIdPrefix, mosquittoAcl, topicMatches, filterWithin, type RegistryEntry, type Limits, type RoleName } from './registry.js';
export { DEFAULT_MAX_PACKET_SIZE, MQTT_MAX_PACKET_SIZE, PacketSizeScanner, limitPacketSize, type PacketViolation } from './packet-limit.js';
export { checkWill, type WillCheck, type WillMessage } from './wills.js';
export { Metrics } from '@livematrix/spec/metrics';
export { runBroker, readBrokerConfig, redisBackends, type BrokerConfig, type StandaloneBroker } from './standalone.js';
export { ClientCertificates, tlsServerOptions, type TlsListenerConfig } from './tls-listener.js';
