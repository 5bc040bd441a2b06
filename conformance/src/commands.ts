/**
 * @module commands
 * The profiles `livematrix-conformance` runs, one entry each: its usage text, its options and how
 * it runs. A profile's module adds itself to PROFILES; the command line, `--help` and `list` read
 * this table.
 */
import { readIdentityFile } from '@livematrix/spec/keyfile';
import { type ProfileCommand, UsageError, hexKey, need } from './command-kit.js';
import { buildReport } from './report.js';
import { runDeviceProfile } from './runner.js';
import { DEVICE_SCENARIOS } from './scenarios/index.js';
import { runVectors, vectorTests } from './vectors-profile.js';
import { gatewayProfile } from './gateway-profile/command.js';
import { brokerCommand } from './broker-profile/index.js';

export { type ProfileCommand, UsageError, type Values, hexKey, need } from './command-kit.js';

const device: ProfileCommand = {
  name: 'device',
  usage: `  livematrix-conformance device --url URL --device ID --device-key HEX --operator FILE
                                [--fleet default] [--consume-rate BYTES_PER_S] [--mqtt 4|5]
                                [--gateway FILE] [--restart-cmd "COMMAND"] [--long] [--only REGEX]
                                [--status-interval MS] [--report DIR]
      Acts as a gateway against the device under test through the broker at URL. The device must
      trust the operator key in FILE (an identity file from "livematrix keygen"), consume streams
      at most --consume-rate bytes/s (default 64000) and send telemetry while it streams.
      --gateway FILE: the identity file of a gateway the broker's registry holds; the suite
      connects as that gateway with a connect token signed by its key (without it the suite
      connects without credentials, as "conformance-gw", which only an open broker allows).
      --restart-cmd is run (through the shell) where a scenario restarts the device under test: it
      must stop the device (as a crash would, or gracefully) and start it again, and may return
      before the device is back (the suite waits for its HELLO). Without it the restart scenarios
      are NOT EXECUTED. --long also runs the scenarios that take over a minute (a clock that
      moves mid-session: the device may resync only every 60 s, [LM-TIME-3]). --status-interval is
      the device's status interval in ms (SPEC.md §10.2, default 30000): the suite waits that long,
      and a little more, for each STATUS and HELLO the device publishes when nothing changes.`,
  options: { url: { type: 'string' }, device: { type: 'string' }, 'device-key': { type: 'string' }, operator: { type: 'string' }, fleet: { type: 'string' }, 'consume-rate': { type: 'string' }, mqtt: { type: 'string' }, only: { type: 'string' }, 'restart-cmd': { type: 'string' }, gateway: { type: 'string' }, long: { type: 'boolean' }, 'status-interval': { type: 'string' } },
  tests: () => DEVICE_SCENARIOS,
  async run(values, log) {
    const mqttV = values['mqtt'] === '5' ? 5 : 4;
    const only = typeof values['only'] === 'string' ? new RegExp(values['only']) : undefined;
    const restartCmd = typeof values['restart-cmd'] === 'string' ? values['restart-cmd'] : undefined;
    const gw = typeof values['gateway'] === 'string' ? readIdentityFile(values['gateway']) : undefined;
    const target = {
      url: need(values, 'url'), fleet: typeof values['fleet'] === 'string' ? values['fleet'] : 'default', deviceId: need(values, 'device'), devicePublic: hexKey(values, 'device-key'),
      operator: readIdentityFile(need(values, 'operator')), consumeRate: Number(values['consume-rate'] ?? 64000), protocolVersion: mqttV as 4 | 5,
      ...(restartCmd ? { restartCmd } : {}),
      ...(values['long'] === true ? { long: true } : {}),
      ...(values['status-interval'] !== undefined ? { statusInterval: positiveMs(values['status-interval'], '--status-interval') } : {}),
      ...(gw ? { gateway: { id: gw.id, identity: gw }, brokerAuth: 'token' as const } : {}),
    };
    const tests = await runDeviceProfile(target, { log, ...(only ? { only: (s) => only.test(s.id) } : {}) });
    return buildReport('device', `${target.deviceId} at ${target.url} (MQTT ${mqttV === 5 ? '5' : '3.1.1'})`, tests);
  },
};

const vectors: ProfileCommand = {
  name: 'vectors',
  usage: `  livematrix-conformance vectors --adapter "COMMAND" [--report DIR]
      Drives an implementation of the primitives through an adapter process (line-based JSON on
      stdin/stdout; see conformance/README.md) with every test vector of spec/vectors/v1.`,
  options: { adapter: { type: 'string' } },
  tests: vectorTests,
  async run(values, log) {
    const adapter = need(values, 'adapter');
    return buildReport('vectors', adapter, await runVectors(adapter, log));
  },
};

/** A positive number of ms given on the command line. */
function positiveMs(v: unknown, what: string): number {
  const n = Number(v);
  if (typeof v !== 'string' || !(n > 0) || !Number.isFinite(n)) throw new UsageError(`${what} must be a positive number of ms, got ${JSON.stringify(v)}`);
  return n;
}

/** The profiles, in the order --help lists them. */
export const PROFILES: ProfileCommand[] = [device, vectors, brokerCommand, gatewayProfile];
