/**
 * @module commands/broker
 * `livematrix broker` (an embedded aedes broker until a signal) and `livematrix acl` (a
 * Mosquitto acl_file from the broker registry).
 */
import { renameSync, writeFileSync } from 'node:fs';
import { type BrokerConfig, Registry, mosquittoAcl, readBrokerConfig, runBroker } from '@livematrix/broker';
import { EXIT, UsageError, type Values, need, num, opt, parse } from '../args.js';
import { help } from '../help.js';

/** The broker settings: --config FILE, then the options on the command line over it. */
function brokerConfig(values: Values): BrokerConfig {
  const c: BrokerConfig = typeof values['config'] === 'string' ? readBrokerConfig(values['config']) : {};
  if (values['port'] !== undefined) c.port = num(values, 'port', 1883, 0, 65535);
  if (typeof values['host'] === 'string') c.host = values['host'];
  if (typeof values['registry'] === 'string') c.registry = values['registry'];
  const tls = tlsListener(values, c.tls);
  if (tls) c.tls = tls;
  if (values['tls-only']) {
    if (!c.tls) throw new UsageError('--tls-only needs a TLS listener: --tls-cert FILE --tls-key FILE');
    c.tcp = false;
  }
  if (values['ws-port'] !== undefined) c.ws = { port: num(values, 'ws-port', 8080, 0, 65535) };
  if (values['metrics-port'] !== undefined) c.metrics = { port: num(values, 'metrics-port', 9464, 0, 65535) };
  if (values['max-packet-size'] !== undefined) c.maxPacketSize = num(values, 'max-packet-size', 262_144, 64, 268_435_455);
  // required client certificates refuse every CONNECT without one, on every listener: a plain
  // listener would only refuse everyone, so the broker does not open one (SPEC §10.1)
  if (c.tls?.requireClientCert) {
    if (c.tcp !== false) throw new UsageError('--require-client-cert refuses every client without a certificate, and the plain mqtt listener carries none: add --tls-only (tcp: false in a --config file) so that only the TLS listener is open');
    if (c.ws) throw new UsageError('--require-client-cert refuses every client without a certificate, and the WebSocket listener (--ws-port, ws in a --config file) carries none: drop it');
  }
  return c;
}

/**
 * The TLS listener: --tls-cert and --tls-key (--cert and --key, their older names), --tls-port,
 * and for client certificates --tls-ca and --require-client-cert; over the config file's `tls`.
 */
function tlsListener(values: Values, base: BrokerConfig['tls']): BrokerConfig['tls'] {
  const str = (a: string, b?: string) => (typeof values[a] === 'string' ? values[a] : b !== undefined && typeof values[b] === 'string' ? values[b] : undefined);
  const cert = str('tls-cert', 'cert') ?? base?.cert;
  const key = str('tls-key', 'key') ?? base?.key;
  const ca = str('tls-ca') ?? base?.ca;
  const required = values['require-client-cert'] === true || base?.requireClientCert === true;
  const asked = cert !== undefined || key !== undefined || ca !== undefined || required || values['tls-port'] !== undefined;
  if (!asked) return base;
  if (cert === undefined || key === undefined) throw new UsageError('a TLS listener needs the broker\'s certificate and its key: --tls-cert FILE --tls-key FILE');
  if (required && ca === undefined) throw new UsageError('--require-client-cert needs the CA that issues the client certificates: --tls-ca FILE');
  return { cert, key, port: values['tls-port'] !== undefined ? num(values, 'tls-port', 8883, 0, 65535) : base?.port ?? 8883, ...(ca !== undefined ? { ca } : {}), ...(required ? { requireClientCert: true } : {}) };
}

export async function brokerCmd(argv: string[]): Promise<number> {
  const { values } = parse(argv, {
    config: { type: 'string' }, port: { type: 'string' }, host: { type: 'string' }, registry: { type: 'string' }, cert: { type: 'string' }, key: { type: 'string' },
    'tls-port': { type: 'string' }, 'tls-cert': { type: 'string' }, 'tls-key': { type: 'string' }, 'tls-ca': { type: 'string' }, 'require-client-cert': { type: 'boolean' }, 'tls-only': { type: 'boolean' },
    'ws-port': { type: 'string' }, 'metrics-port': { type: 'string' },
    'max-packet-size': { type: 'string' },
  });
  if (values['help']) return help('broker');
  const c = brokerConfig(values);
  const b = await runBroker(c, (l) => console.error(l));
  const p = b.ports;
  const mtls = c.tls?.ca !== undefined ? (c.tls.requireClientCert ? ' (client certificates required)' : ' (client certificates optional)') : '';
  console.log(`livematrix broker on ${c.host ?? '127.0.0.1'}: ${c.tcp === false ? 'no plain mqtt' : `mqtt ${p.tcp}`}${p.tls ? `, mqtts ${p.tls}${mtls}` : ''}${p.ws ? `, ws ${p.ws}` : ''}${p.metrics ? `, metrics http://${c.host ?? '127.0.0.1'}:${p.metrics}/metrics` : ''}${c.registry ? `, registry ${c.registry} (SIGHUP or edit to reload)` : ''}. Ctrl-C stops it.`);
  await new Promise<void>((r) => {
    process.once('SIGINT', r);
    process.once('SIGTERM', r);
  });
  console.error('stopping: closing client connections ...');
  await b.close();
  console.error('broker stopped');
  return EXIT.ok;
}

export function aclCmd(argv: string[]): number {
  const { values } = parse(argv, { registry: { type: 'string' }, out: { type: 'string' } });
  if (values['help']) return help('acl');
  const reg = Registry.load(need(values, 'registry'));
  const text = mosquittoAcl(reg);
  const out = opt(values, 'out', '-');
  if (out === '-') process.stdout.write(text);
  else {
    writeFileSync(out + '.tmp', text);
    renameSync(out + '.tmp', out);
    console.error(`wrote ${out}: ${reg.all().length} clients (set acl_file ${out} in mosquitto.conf)`);
  }
  return EXIT.ok;
}
