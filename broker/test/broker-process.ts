/**
 * A standalone broker in a process of its own, for tests that measure its memory or kill it
 * without a goodbye: `node broker/dist/test/broker-process.js '<BrokerConfig as JSON>'`. Prints
 * `port <tcp port>` once it listens, its log lines on standard error, and stops on SIGTERM.
 */
import { type BrokerConfig, runBroker } from '../src/index.js';

const config = JSON.parse(process.argv[2] ?? '{}') as BrokerConfig;
const broker = await runBroker(config, (line) => process.stderr.write(`${line}\n`));
process.stdout.write(`port ${broker.ports.tcp}\n`);
process.once('SIGTERM', () => {
  void broker.close().then(() => process.exit(0));
});
