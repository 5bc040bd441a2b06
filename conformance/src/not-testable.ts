/**
 * @module not-testable
 * Requirements of the device and vectors profiles that a black-box suite cannot observe, with
 * the reason. The lint accepts an ID as covered when it is tested or listed here.
 */
import type { RequirementId } from './generated/requirements.js';

export const NOT_TESTABLE: Readonly<Partial<Record<RequirementId, string>>> = {
  'LM-ROLE-1': 'a statement about claiming profiles, not a behaviour',
  'LM-KEY-4': 'erasure of chain keys and secrets happens inside the device\'s memory',
  'LM-KEY-5': 'erasure of frame keys happens inside the device\'s memory',
  'LM-SEC-1': 'a deployment recommendation (TLS)',
  'LM-SEC-2': 'constant-time comparison cannot be observed through the broker with any confidence',
  'LM-SEC-3': 'randomness quality cannot be judged from a few samples',
  'LM-MQTT-3': 'covered by running the whole suite over MQTT 3.1.1 and MQTT 5 (run option --mqtt)',
  'LM-MQTT-5': 'a deployment recommendation (TLS)',
  'LM-REV-4': 'when a device builds its tables is internal; lateness shows only as busy NACKs',
  'LM-PARAM-4': 'a gateway\'s choice',
  'LM-PARAM-5': 'a constraint on parameters the gateway offers',
  'LM-REV-1': 'how a gateway stamps revisions',
  'LM-DLV-3': 'a gateway\'s re-send rule',
  'LM-DLV-12': 'a gateway\'s congestion window',
  'LM-AEAD-3': 'a gateway\'s key release rule',
  'LM-AEAD-5': 'a gateway\'s key generation',
  'LM-TIME-4': 'a gateway\'s answer',
  'LM-FRAME-7': 'a gateway\'s check of ACCEPT',
  'LM-MQTT-6': 'a gateway\'s check of HELLO (tested with the gateway: gateway/test/hostile.test.ts)',
  'LM-FRAME-5': 'which authentication a sender uses is checked by every decoding (vectors profile)',
  'LM-TX-6': 'a gateway\'s job check',
  'LM-CAP-2': 'a gateway\'s choice of parameters',
  'LM-ALARM-6': 'what gateways and brokers publish on the fleet\'s alarm topic (tested with them: cli/test/fleet.test.ts, broker/test)',
  'LM-CAP-3': 'a gateway\'s preference',
  'LM-ALARM-1': 'a gateway\'s rate check (the device side is LM-ALARM-2, a SHOULD)',
  'LM-TEL-2': 'a gateway\'s decoding of telemetry',
  'LM-DLV-10': 'the suite cannot restart the device under test\'s process (the gateway side is tested with the device SDK)',
  'LM-HINT-5': 'whether a device scans or builds tables is internal; the results are tested through its NACKs and deliveries',
  'LM-LIC-2': 'the suite cannot crash or restart the device under test\'s process, so whether its licence state survives one is not observable (the device SDK\'s store is crash-tested: device-sdk/test/licences.test.ts)',
  'LM-REVOKE-4': 'a broker rule (profile B), tested with the broker plugin (broker/test/revocation.test.ts) and Mosquitto\'s generated ACL (broker/test/mosquitto-acl.test.ts)',
};
