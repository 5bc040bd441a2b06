/**
 * @module gateway-profile/command
 * `livematrix-conformance gateway`: its usage, options and run.
 */
import { readIdentityFile } from '@livematrix/spec/keyfile';
import { type ProfileCommand, UsageError, hexKey, need } from '../command-kit.js';
import { buildReport } from '../report.js';
import { GATEWAY_TESTS, REFERENCE_LIVENESS, runGatewayProfile } from './index.js';
import { LEDGER_PLACEHOLDERS, PLACEHOLDERS, shellLauncher, shellLedgerReader, unknownPlaceholders } from './launcher.js';

const placeholders = Object.entries(PLACEHOLDERS).map(([k, v]) => `        {${k}}`.padEnd(22) + v).join('\n');

export const gatewayProfile: ProfileCommand = {
  name: 'gateway',
  usage: `  livematrix-conformance gateway --url URL --operator FILE --stream-cmd "COMMAND"
                                [--ledger-cmd "COMMAND"] [--fleet default] [--gateway-key HEX]
                                [--telemetry-in-output] [--device-timeout MS] [--offline-grace MS]
                                [--mqtt 4|5] [--only REGEX] [--report DIR]
      Plays devices against the gateway under test through the broker at URL (one without a
      registry: the suite's devices draw fresh ids and keys) and checks the gateway's side of the
      protocol. For each stream it needs, the suite writes a job and a transaction signed with the
      operator identity in FILE (the gateway must trust its key) and runs COMMAND through the
      shell with these placeholders filled in:
${placeholders}
      The command must stream the job to the device as the gateway does (it learns the device's
      key from the transaction and its HELLO), keep its licence database in {state} (print counts
      last the run), exit 0 once it verified the device's RECEIPT and non-zero when the stream
      failed or was refused. The suite stops it (SIGTERM to its process group) when a test is done.
      For the reference gateway:
        --stream-cmd "livematrix stream {file} --device {device} --tx {tx} --identity gw.json
                      --operator-key HEX --url {url} --fleet {fleet} --db {state}/gw.db"
      --gateway-key names the gateway's Ed25519 key in the transactions (its OFFERs must carry it).
      --ledger-cmd prints the gateway's receipt ledger (SPEC.md section 11.6) as JSON: an array of
      records, or an object whose "records" is one, each record the hex of its bytes (or an
      object with that hex as "record"); run through the shell once, after every other test, with
      {state}, {url} and {fleet} filled in. The suite then checks that each RECEIPT of a stream
      the gateway reported delivered is recorded exactly once with its bytes, and that the chain
      has no gap or fork (LM-LEDGER-1..5). Without it those checks do not run. The reference:
        --ledger-cmd "livematrix ledger verify --json --db {state}/gw.db"
      --telemetry-in-output says the command prints each telemetry payload the gateway accepts,
      its numbers in decimal (the reference prints "telemetry DEVICE: {JSON}" on stderr): the
      suite then checks that good telemetry is decoded and broken telemetry dropped (LM-TEL-2).
      Nothing on the wire shows which telemetry a gateway took: without it LM-TEL-2 is not executed.
      --device-timeout and --offline-grace give the gateway's bounds of LM-DLV-13: a session whose
      device sent no authenticated frame for MS ends with timeout, one whose device's Last Will
      came and was not followed by a frame for MS ends with offline. Default: the reference's
      20000 and 10000. The suite waits each bound plus 2·P + 3 s.`,
  options: {
    'stream-cmd': { type: 'string' }, 'gateway-key': { type: 'string' }, 'ledger-cmd': { type: 'string' }, 'telemetry-in-output': { type: 'boolean' },
    'device-timeout': { type: 'string' }, 'offline-grace': { type: 'string' },
  },
  tests: () => GATEWAY_TESTS,
  async run(values, log) {
    const cmd = need(values, 'stream-cmd');
    const unknown = unknownPlaceholders(cmd);
    if (unknown.length) throw new UsageError(`--stream-cmd has placeholders the suite does not fill: ${unknown.map((k) => `{${k}}`).join(', ')} (known: ${Object.keys(PLACEHOLDERS).map((k) => `{${k}}`).join(' ')})`);
    if (!/\{(file|tx|tx-hex)\}/.test(cmd)) throw new UsageError('--stream-cmd must name the job and the transaction: {file} and {tx} (or {tx-hex} and {licence-hex})');
    const ledgerCmd = typeof values['ledger-cmd'] === 'string' ? values['ledger-cmd'] : undefined;
    const unknownLedger = ledgerCmd === undefined ? [] : unknownPlaceholders(ledgerCmd, LEDGER_PLACEHOLDERS);
    if (unknownLedger.length) throw new UsageError(`--ledger-cmd has placeholders the suite does not fill: ${unknownLedger.map((k) => `{${k}}`).join(', ')} (known: ${Object.keys(LEDGER_PLACEHOLDERS).map((k) => `{${k}}`).join(' ')})`);
    const ms = (k: string, dflt: number): number => {
      const v = values[k];
      if (typeof v !== 'string') return dflt;
      const n = Number(v);
      if (!/^[0-9]+$/.test(v) || n < 1 || n > 600_000) throw new UsageError(`--${k} expects milliseconds, 1 to 600000; got "${v}"`);
      return n;
    };
    const liveness = values['device-timeout'] !== undefined || values['offline-grace'] !== undefined
      ? { liveness: { silence: ms('device-timeout', REFERENCE_LIVENESS.silence), grace: ms('offline-grace', REFERENCE_LIVENESS.grace) } } : {};
    const mqtt = values['mqtt'] === '5' ? 5 : 4;
    const only = typeof values['only'] === 'string' ? new RegExp(values['only']) : undefined;
    const target = {
      url: need(values, 'url'), fleet: typeof values['fleet'] === 'string' ? values['fleet'] : 'default', operator: readIdentityFile(need(values, 'operator')),
      ...(typeof values['gateway-key'] === 'string' ? { gatewayKey: hexKey(values, 'gateway-key') } : {}), launch: shellLauncher(cmd, log), protocolVersion: mqtt as 4 | 5,
      ...(ledgerCmd !== undefined ? { readLedger: shellLedgerReader(ledgerCmd, log) } : {}),
      ...(values['telemetry-in-output'] === true ? { telemetryInOutput: true } : {}), ...liveness,
    };
    const tests = await runGatewayProfile(target, { log, ...(only ? { only: (t) => only.test(t.id) } : {}) });
    return buildReport('gateway', `the gateway of "${cmd}" at ${target.url} (MQTT ${mqtt === 5 ? '5' : '3.1.1'})`, tests);
  },
};
