/**
 * @module gateway-profile
 * The gateway profile: the suite plays devices against a gateway under test, through a broker,
 * and checks the gateway's side of the protocol requirement by requirement. The gateway streams
 * when the suite asks it to, through a {@link StreamLauncher} (on the command line, a command
 * template run through the shell for each stream).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes, toHex } from '@livematrix/spec';
import { MatrixEngine } from '@livematrix/spec/engine';
import { type TestResult, runTest } from '../checks.js';
import { type GatewayTarget, type GatewayTest, GwCtx, type RunShared } from './context.js';
import { deliver, negotiation, prints, resumePoint } from './tests/delivery.js';
import { congestion, control, keyBackoff, liveness, nackResend, rateAlarm } from './tests/flow.js';
import { advisory, tamper } from './tests/hostile.js';
import { ledger } from './tests/ledger.js';
import { acceptForged, helloRestart, refusals, reoffer } from './tests/setup.js';
import { lateWill } from './tests/state.js';

export { type GatewayTarget, type GatewayTest, GwCtx, DEFAULT_CAPS, REFERENCE_LIVENESS } from './context.js';
export { type LedgerReader, type LedgerWhere, type StreamExit, type StreamJob, type StreamLauncher, type StreamRun, LEDGER_PLACEHOLDERS, PLACEHOLDERS, fillTemplate, parseLedgerOutput, shellLauncher, shellLedgerReader, unknownPlaceholders } from './launcher.js';
export { SuiteDevice } from './device.js';
export { DeviceSession, type Behaviour } from './session.js';

/**
 * The tests, in the order they run: the first delivery also measures how long the gateway takes
 * to start; the ledger's test comes last, to read the ledger after every stream of the run.
 */
export const GATEWAY_TESTS: readonly GatewayTest[] = [
  deliver, negotiation, helloRestart, acceptForged, refusals, reoffer, resumePoint, prints, nackResend, rateAlarm, tamper, advisory, control, congestion, keyBackoff, liveness, lateWill, ledger,
];

/**
 * Runs the gateway tests (those `only` keeps) against the gateway `target` starts; every test
 * gets fresh devices, jobs and transactions, and closes what it opened.
 */
export async function runGatewayProfile(target: GatewayTarget, o: { only?: (t: GatewayTest) => boolean; log?: (l: string) => void; tests?: readonly GatewayTest[] } = {}): Promise<TestResult[]> {
  const log = o.log ?? (() => undefined);
  const engine = new MatrixEngine({ workers: 1 });
  await engine.start();
  const dir = mkdtempSync(join(tmpdir(), 'lm-conformance-gw-'));
  const shared: RunShared = { target, engine, keySeen: new Map(), dir, prefix: `lmc-${toHex(randomBytes(3))}`, log, streams: 0, devices: 0, startup: 0, receipts: new Map() };
  const results: TestResult[] = [];
  try {
    for (const t of (o.tests ?? GATEWAY_TESTS).filter(o.only ?? (() => true))) {
      if (t.needs === 'ledger' && !target.readLedger) {
        log(`SKIP ${t.id}: the suite cannot read the gateway's ledger (no --ledger-cmd); ${t.covers.join(', ')} not executed`);
        continue;
      }
      const r = await runTest(t, async (checks) => {
        const ctx = new GwCtx(shared, checks, t.id);
        try {
          await t.run(ctx);
        } finally {
          ctx.flush();
          await ctx.close();
        }
      });
      log(`${r.status === 'pass' ? 'PASS' : 'FAIL'} ${t.id} (${r.ms} ms)${r.message ? `: ${r.message}` : ''}`);
      results.push(r);
    }
  } finally {
    await engine.stop();
    rmSync(dir, { recursive: true, force: true });
  }
  return results;
}
