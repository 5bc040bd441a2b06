/**
 * @module @livematrix/conformance
 * The Live Matrix conformance suite: device profile scenarios, the vectors profile, reports per
 * requirement ID, and the coverage lint. The command is `livematrix-conformance`.
 */
export { R, REQUIREMENTS, type RequirementId } from './generated/requirements.js';
export { DEVICE_SCENARIOS, type Scenario, type Ctx } from './scenarios/index.js';
export { runDeviceProfile, sampleGcode, type DeviceTarget } from './runner.js';
export { runVectors } from './vectors-profile.js';
export { buildReport, renderText, renderJunit, type Report, type TestResult, type IdStatus } from './report.js';
export { lint, vectorCoverage } from './lint.js';
export { NOT_TESTABLE } from './not-testable.js';
export { Tester } from './tester.js';
export { Session } from './session.js';
