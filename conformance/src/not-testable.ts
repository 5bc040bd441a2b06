/**
 * @module not-testable
 * Requirements of the device and vectors profiles that a black-box suite cannot observe, with
 * the reason. The lint accepts an ID as covered when it is tested or listed here.
 */
import { R, type RequirementId } from './generated/requirements.js';

export const NOT_TESTABLE: Readonly<Partial<Record<RequirementId, string>>> = {
  [R.LM_ROLE_1]: 'a statement about claiming profiles, not a behaviour',
  [R.LM_KEY_4]: 'erasure of chain keys and secrets happens inside the device\'s memory',
  [R.LM_KEY_5]: 'erasure of frame keys happens inside the device\'s memory',
  [R.LM_SEC_1]: 'a deployment recommendation (TLS)',
  [R.LM_SEC_2]: 'constant-time comparison cannot be observed through the broker with any confidence',
  [R.LM_SEC_3]: 'randomness quality cannot be judged from a few samples',
  [R.LM_MQTT_3]: 'covered by running the whole suite over MQTT 3.1.1 and MQTT 5 (run option --mqtt)',
  [R.LM_MQTT_5]: 'a deployment recommendation (TLS)',
  [R.LM_REV_4]: 'when a device builds its tables is internal; lateness shows only as busy NACKs',
  [R.LM_PARAM_4]: 'a gateway\'s choice',
  [R.LM_PARAM_5]: 'a constraint on parameters the gateway offers',
  [R.LM_REV_1]: 'how a gateway stamps revisions',
  [R.LM_DLV_3]: 'a gateway\'s re-send rule',
  [R.LM_DLV_12]: 'a gateway\'s congestion window',
  [R.LM_AEAD_3]: 'a gateway\'s key release rule',
  [R.LM_AEAD_5]: 'a gateway\'s key generation',
  [R.LM_TIME_4]: 'a gateway\'s answer',
  [R.LM_FRAME_7]: 'a gateway\'s check of ACCEPT',
  [R.LM_MQTT_6]: 'a gateway\'s check of HELLO (tested with the gateway: gateway/test/hostile.test.ts)',
  [R.LM_FRAME_5]: 'which authentication a sender uses is checked by every decoding (vectors profile)',
  [R.LM_TX_6]: 'a gateway\'s job check',
  [R.LM_CAP_2]: 'a gateway\'s choice of parameters',
  [R.LM_CAP_3]: 'a gateway\'s preference',
  [R.LM_ALARM_1]: 'a gateway\'s rate check (the device side is LM-ALARM-2, a SHOULD)',
  [R.LM_TEL_2]: 'a gateway\'s decoding of telemetry',
  [R.LM_DLV_10]: 'the suite cannot restart the device under test\'s process (the gateway side is tested with the device SDK)',
  [R.LM_HINT_5]: 'whether a device scans or builds tables is internal; the results are tested through its NACKs and deliveries',
};
