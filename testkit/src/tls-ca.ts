/**
 * @module tls-ca
 * A throw-away certificate authority made with the openssl command (Debian's `openssl`), for the
 * project's TLS tests: P-256 keys, a CA, a server certificate for 127.0.0.1 and localhost, and
 * client certificates whose subject CN is an identity id. Never for anything but tests.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** Path of the openssl binary, or undefined when it is not installed. */
export function opensslPath(): string | undefined {
  for (const p of ['/usr/bin/openssl', '/usr/local/bin/openssl']) if (spawnSync(p, ['version']).error === undefined) return p;
  return undefined;
}

/** A certificate and its key, as files. */
export interface CertFiles {
  cert: string;
  key: string;
}

export interface TestCa extends CertFiles {
  /** a directory of its own, under the one given */
  dir: string;
  /** a server certificate for 127.0.0.1 and localhost (extendedKeyUsage serverAuth) */
  server(name?: string): CertFiles;
  /** a client certificate whose subject is CN=`cn` (extendedKeyUsage clientAuth) */
  client(cn: string, o?: { days?: number }): CertFiles;
}

// a config of our own, so that the system's openssl.cnf cannot change what is made
const CNF = [
  '[req]', 'distinguished_name = dn', 'prompt = no', '[dn]', 'CN = unused',
  '[ca]', 'basicConstraints = critical,CA:TRUE', 'keyUsage = critical,keyCertSign,cRLSign', 'subjectKeyIdentifier = hash',
  '[server]', 'basicConstraints = critical,CA:FALSE', 'keyUsage = critical,digitalSignature', 'extendedKeyUsage = serverAuth',
  'subjectAltName = IP:127.0.0.1,DNS:localhost', 'authorityKeyIdentifier = keyid',
  '[client]', 'basicConstraints = critical,CA:FALSE', 'keyUsage = critical,digitalSignature', 'extendedKeyUsage = clientAuth', 'authorityKeyIdentifier = keyid',
  '',
].join('\n');

function openssl(args: string[]): void {
  const bin = opensslPath();
  if (!bin) throw new Error('openssl is not installed (apt-get install openssl)');
  const r = spawnSync(bin, args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`openssl ${args.slice(0, 2).join(' ')} failed: ${r.stderr}`);
}

/**
 * Makes a CA named `name` in `parent/name`. Keys are left readable by everyone (0644), and
 * `parent` is made traversable (0755): Mosquitto started as root reads its files as the user
 * "mosquitto". For a temporary test directory only.
 */
export function makeTestCa(parent: string, name = 'ca'): TestCa {
  chmodSync(parent, 0o755);
  const dir = join(parent, name);
  mkdirSync(dir, { recursive: true });
  chmodSync(dir, 0o755);
  const cnf = join(dir, 'openssl.cnf');
  writeFileSync(cnf, CNF);
  const keyArgs = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  const ca: CertFiles = { cert: join(dir, 'ca.crt'), key: join(dir, 'ca.key') };
  openssl(['req', '-x509', '-new', ...keyArgs, '-keyout', ca.key, '-out', ca.cert, '-days', '2', '-subj', `/CN=Live Matrix test CA ${name}`, '-config', cnf, '-extensions', 'ca']);
  chmodSync(ca.key, 0o644);
  let serial = 1;
  const issue = (file: string, cn: string, section: 'server' | 'client', days: number): CertFiles => {
    const out: CertFiles = { cert: join(dir, `${file}.crt`), key: join(dir, `${file}.key`) };
    const csr = join(dir, `${file}.csr`);
    openssl(['req', '-new', ...keyArgs, '-keyout', out.key, '-out', csr, '-subj', `/CN=${cn}`, '-config', cnf]);
    openssl(['x509', '-req', '-in', csr, '-CA', ca.cert, '-CAkey', ca.key, '-set_serial', String(serial++), '-days', String(days), '-out', out.cert, '-extfile', cnf, '-extensions', section]);
    chmodSync(out.key, 0o644);
    return out;
  };
  return {
    dir, ...ca,
    server: (n = 'server') => issue(n, 'localhost', 'server', 2),
    client: (cn, o = {}) => issue(`client-${cn}`, cn, 'client', o.days ?? 2),
  };
}
