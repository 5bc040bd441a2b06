/**
 * @module not-testable
 * Requirements of the device and vectors profiles that a black-box suite cannot observe, with
 * the reason. The lint accepts an ID as covered when it is tested or listed here.
 */
import type { RequirementId } from './generated/requirements.js';

export const NOT_TESTABLE: Readonly<Partial<Record<RequirementId, string>>> = {
  'LM-ROLE-1': 'a statement about claiming profiles, not a behaviour',
  'LM-KEY-5': 'erasure of frame keys happens inside the device\'s memory',
  'LM-KEY-4': 'overwriting CK[i], PRK, z, K_lic and the ephemeral secrets with zeros happens inside the implementation\'s memory; refusing to derive an earlier revision again does not show it (an adapter is handed CK[0] with each request, and a device could refuse by policy and keep the key), so no vector cites it; the reference\'s chain is unit-tested in spec/test/vectors.test.ts',
  'LM-SEC-1': 'a deployment recommendation (TLS)',
  'LM-SEC-2': 'constant-time comparison cannot be observed through the broker with any confidence',
  'LM-SEC-3': 'randomness quality cannot be judged from a few samples',
  'LM-MQTT-3': 'covered by running the whole suite over MQTT 3.1.1 and MQTT 5 (run option --mqtt)',
  'LM-MQTT-5': 'a deployment recommendation (TLS)',
  'LM-MQTT-8': 'the suite reaches the broker under test with the connect tokens of its registry and holds no client certificate of the deployment\'s CA, so it cannot present one whose CN is another identity; the reference tests it in cli/test/tls-broker.test.ts (p1\'s token over a p2 certificate refused as not authorized, over a p1 certificate accepted)',
  'LM-REV-3': 'how many revisions\' tables and keys a device holds is internal; a KEY of an expired revision is refused under LM-REV-2\'s window, which is what a black box sees (device/expired-key)',
  'LM-REV-4': 'when a device builds its tables is internal; lateness shows only as busy NACKs',
  'LM-HINT-5': 'whether a device scans or builds tables is internal; the results are tested through its NACKs and deliveries',
  'LM-FRAME-22': 'a MAY about logging: what a device logs is internal',
  'LM-SEC-4': 'a deployment rule (TLS)',
  'LM-STATE-6': 'which STATUS a gateway takes as a device\'s state shows only in what it displays or does with it (a dashboard, a scheduler), not on the wire: the gateway profile sees the gateway through its stream command, which shows no status; the rule is the shared statusRefusal (spec/src/status.ts), tested in gateway/test/status.test.ts (a repeat, an older seq, another bd, key or device ignored) and cli/test/device-state.test.ts (the gateway takes idle, streaming, idle in order)',
  'LM-LIC-7': 'the suite cannot make the licence state of the device under test unreadable',
  'LM-BRK-12': 'a permission (MAY) about what an operator\'s registry may hold, not a behaviour on the wire; what a broker does with a gateway\'s list of devices is [LM-BRK-9], tested by broker/gateway-isolation',
  'LM-BRK-13': 'a warning to the broker\'s operator when it loads its registry (its log), which the suite, a client over MQTT, does not see; cli/conformance/broker.test.ts checks that livematrix broker gives it',
  'LM-SVC-4': 'what each service keeps at rest (the store no chunk key, playbook or licence; the keys service no segment) is inside their databases, which no client of the broker sees; the reference tests it in gateway/test/store.test.ts (the streaming gateway never loads the store; two store instances on one database) and cli/test/protected.test.ts',
  'LM-PROT-5': 'the gateway side needs a protected job the gateway under test can stream: an owner\'s upload in a store and a licence granted to a keys service, both trusting that gateway, which the gateway profile does not set up; a gateway that checked prot only after reaching them could not be told from one that failed for want of them. The device side is the device profile\'s ([LM-PROT-3]: a device without prot refuses the OFFER); the reference tests the gateway side in cli/test/protected.test.ts ("a device that does not announce protected jobs is not offered one") and gateway/src/gateway.ts refuses before any OFFER',
  'LM-SVC-6': 'a service\'s trust, freshness and replay checks act on SVC_REQ and SVC_RESP over its inbox, and the gateway profile drives no keys service or store of the gateway under test (as [LM-SVC-7]); decoding an SVC frame (frames.json, encode.json) checks none of them. The reference tests them in cli/test/services-rpc.test.ts (untrusted key auth, stale or replayed request replay, answers of another key ignored)',
  'LM-DLV-20': 'a MAY about what a device keeps in its own storage to resume; on the wire a resume from a kept point is a resume under [LM-DLV-10] (from a multiple of C, at most the job, the end digest over the whole job), which device/restart-keeps-licence checks; the reference tests the points in device-sdk/test/resume.test.ts and cli/test/resume-points.test.ts',
  'LM-DLV-21': 'the points a device erases are in its own storage, which no client of the broker sees; the reference tests it in device-sdk/test/resume.test.ts',
  'LM-DLV-22': 'how a device masks the points in its own storage is not visible on the wire; the reference tests it in device-sdk/test/resume.test.ts (no stored point equals the unmasked value; a tampered one fails with digest)',
  'LM-SVC-7': 'the inbox topics and roles of a deployment of services; its broker half (devices refused an inbox, only SVC_REQ and SVC_RESP on inboxes, a forged from dropped) is a broker behaviour the broker profile does not drive yet; the reference tests it in cli/test/services-rpc.test.ts and cli/test/services.test.ts',
};
