/**
 * @module @livematrix/conformance
 * The Live Matrix conformance suite: device profile scenarios, the vectors profile, reports per
 * requirement ID, and the coverage lint. The command is `livematrix-conformance`.
 */
export { R, REQUIREMENTS, type RequirementId } from './generated/requirements.js';
export { DEVICE_SCENARIOS, type Scenario, type Ctx } from './scenarios/index.js';
export { runDeviceProfile, sampleGcode, type DeviceTarget } from './runner.js';
export { runVectors } from './vectors-profile.js';
export { BROKER_TESTS, brokerCommand, brokerTarget, runBrokerProfile, type BrokerTarget, type BrokerIdentity, type BrokerTest, type Credentials } from './broker-profile/index.js';
export { buildReport, renderText, renderJunit, type Report, type TestResult, type IdStatus } from './report.js';
export { Checks, CheckFailed, runTest, type CheckRecord } from './checks.js';
export { PROFILES, type ProfileCommand } from './commands.js';
export { lint, levelsOf, vectorCoverage } from './lint.js';
export { NOT_TESTABLE } from './not-testable.js';
export { Tester } from './tester.js';
export { Session } from './session.js';
export { GATEWAY_TESTS, runGatewayProfile, shellLauncher, fillTemplate, PLACEHOLDERS, SuiteDevice, DeviceSession, GwCtx, DEFAULT_CAPS, type GatewayTarget, type GatewayTest, type StreamJob, type StreamLauncher, type StreamRun, type StreamExit, type Behaviour, shellLedgerReader, parseLedgerOutput, LEDGER_PLACEHOLDERS, type LedgerReader, type LedgerWhere } from './gateway-profile/index.js';
