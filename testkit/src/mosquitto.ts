/**
 * @module mosquitto
 * Runs a Mosquitto 2 broker (the Debian package) on a loopback port with a config of its own:
 * for the project's tests and benchmarks; optionally a TLS listener beside the plain one, with
 * client certificates (mutual TLS).
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import { Socket, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Path of the mosquitto binary, or undefined when it is not installed. */
export function mosquittoPath(): string | undefined {
  for (const p of ['/usr/sbin/mosquitto', '/usr/bin/mosquitto']) if (spawnSync(p, ['-h']).error === undefined) return p;
  return undefined;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      const p = typeof a === 'object' && a ? a.port : 0;
      s.close(() => resolve(p));
    });
  });
}

/** Waits until something listens on 127.0.0.1:port (about 5 s at most). */
export async function waitForPort(port: number, failed: () => string | undefined = () => undefined): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const ok = await new Promise<boolean>((res) => {
      const sock = new Socket();
      sock.once('connect', () => {
        sock.destroy();
        res(true);
      });
      sock.once('error', () => res(false));
      sock.connect(port, '127.0.0.1');
    });
    if (ok) return;
    const why = failed();
    if (why) throw new Error(why);
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`nothing listens on port ${port}`);
}

export interface RunningMosquitto {
  url: string;
  port: number;
  /** the TLS listener's URL and port, when one was asked for */
  tlsUrl?: string;
  tlsPort?: number;
  proc: ChildProcess;
  /** what mosquitto wrote to stderr so far (its log) */
  log(): string;
  close(): Promise<void>;
}

/** A TLS listener of Mosquitto: files it must be able to read as the user "mosquitto". */
export interface MosquittoTls {
  cert: string;
  key: string;
  /** CA of client certificates (cafile); with `requireClientCert`, mutual TLS */
  ca?: string;
  requireClientCert?: boolean;
  /** a client certificate's CN is its user name (use_identity_as_username): the certificate authenticates */
  identityAsUsername?: boolean;
}

/**
 * Starts Mosquitto on a free loopback port; `extra` lines go into its config (acl_file,
 * password_file); `o.tls` adds a TLS listener on another free port.
 */
export async function startMosquitto(extra: string[] = [], o: { tls?: MosquittoTls } = {}): Promise<RunningMosquitto> {
  const bin = mosquittoPath();
  if (!bin) throw new Error('mosquitto is not installed (apt-get install mosquitto)');
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'lm-mosq-'));
  chmodSync(dir, 0o755); // mosquitto started as root reads its files as the user "mosquitto"
  const conf = join(dir, 'mosquitto.conf');
  const t = o.tls;
  const tlsPort = t ? await freePort() : undefined;
  const tlsLines = t ? [
    `listener ${tlsPort} 127.0.0.1`, `certfile ${t.cert}`, `keyfile ${t.key}`, ...(t.ca ? [`cafile ${t.ca}`] : []),
    `require_certificate ${t.requireClientCert ? 'true' : 'false'}`, ...(t.identityAsUsername ? ['use_identity_as_username true'] : []),
  ] : [];
  writeFileSync(conf, [`listener ${port} 127.0.0.1`, extra.some((l) => l.startsWith('password_file')) ? 'allow_anonymous false' : 'allow_anonymous true', 'persistence false', ...extra, ...tlsLines, ''].join('\n'));
  const proc = spawn(bin, ['-c', conf], { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  proc.stderr?.on('data', (d: Buffer) => (log += d.toString()));
  await waitForPort(port, () => (proc.exitCode !== null ? `mosquitto exited: ${log}` : undefined));
  if (tlsPort !== undefined) await waitForPort(tlsPort, () => (proc.exitCode !== null ? `mosquitto exited: ${log}` : undefined));
  return {
    url: `mqtt://127.0.0.1:${port}`, port, proc, log: () => log,
    ...(tlsPort !== undefined ? { tlsUrl: `mqtts://127.0.0.1:${tlsPort}`, tlsPort } : {}),
    close: () => new Promise<void>((res) => {
      if (proc.exitCode !== null) return res();
      proc.once('exit', () => res());
      proc.kill('SIGTERM');
    }),
  };
}
