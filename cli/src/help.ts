/**
 * @module help
 * The --help texts of `livematrix` and its commands (tests match on them: change with care).
 */
import { EXIT } from './args.js';
import { DEFAULT_URL, ENV_PASSWORD, ENV_USER } from './connection.js';
import { LOG_MAX_LINES, LOG_WINDOW_MS } from './log.js';

const CONNECT_HELP = `Broker connection (the same for device, stream and gateway):
  --url URL           broker URL (default ${DEFAULT_URL}); mqtts:// or wss:// for TLS. It
                      must not hold a user name or password: ps and logs would show them.
  --credentials FILE  JSON { "username": "...", "password": "..." } for a broker with passwords
                      (Mosquitto). Only its owner may read it (chmod 600), or it is refused.
Environment:
  ${ENV_USER}, ${ENV_PASSWORD}
                      the same user name and password, when --credentials is not given
Without either, the client authenticates with a connect token signed by its --identity key,
which "livematrix broker --registry FILE" checks against its registry (brokers without the
Live Matrix plugin ignore it). A refused connection says which identity and what to check.`;

export const HELP: Record<string, string> = {
  main: `livematrix: stream machine code to manufacturing machines as expiring hints over MQTT

Usage: livematrix <command> [options]

Commands:
  demo      embedded broker, a gateway and two simulated printers; streams a real G-code file
  broker    run an embedded MQTT broker (aedes)
  gateway   stream the jobs listed in a jobs file, then exit
  stream    stream one G-code file to one device, then exit
  device    run a device that writes what it receives to a file (a simulated machine)
  keygen    create an identity key file (device, gateway or operator)
  sign      sign a streaming transaction as the operator
  revoke    sign a revocation list as the operator; write it or publish it retained
  acl       write a Mosquitto ACL file from the broker registry
  ledger    verify a gateway's receipt ledger offline, or show the prints it records

Run "livematrix <command> --help" for a command's options.`,
  demo: `livematrix demo [--file FILE] [--w BITS] [--rate BYTES_PER_S]

Starts an MQTT broker on 127.0.0.1 (a free port), a gateway and two simulated printers, signs a
transaction per printer, streams FILE (default: examples/cylinder_annular.gcode) to both, shows
progress and telemetry, and ends with a summary. Exit code 0 when both outputs match the file.

  --file FILE         G-code to stream
  --w BITS            segment width, 8..24 (default: negotiated from the printers' measured rate)
  --rate N            bytes per second each simulated printer consumes (default 4000000)`,
  broker: `livematrix broker [--config FILE] [--port 1883] [--host 127.0.0.1] [--registry FILE]
                  [--cert FILE --key FILE [--tls-port 8883]] [--ws-port N] [--metrics-port N]
                  [--max-packet-size BYTES]

Runs an aedes broker until Ctrl-C or SIGTERM (graceful: clients are disconnected first).
With --registry it runs the Live Matrix plugin: clients authenticate with connect tokens, each
reaches only its own topics, malformed frames are dropped, floods raise rate alarms; the
registry reloads on SIGHUP or when the file changes. Without it: no authentication
(development only). A connection that announces an MQTT packet larger than --max-packet-size
(default 262144) is closed before the packet is read, authenticated or not ([LM-BRK-6]).
--config reads the same settings from JSON:
  { "host", "port", "registry", "maxPacketSize", "tls": { "port", "cert", "key" }, "ws": { "port" }, "metrics": { "port" } }`,
  acl: `livematrix acl --registry FILE [--out FILE]

Writes a Mosquitto acl_file from the Live Matrix registry, with the same per-client topic
isolation as the plugin (user name = client id).`,
  keygen: `livematrix keygen --id ID --out FILE

Writes a new Ed25519 identity (JSON, mode 0600) and prints its public key. Refuses to overwrite.`,
  sign: `livematrix sign --operator FILE --job FILE --device ID --device-key HEX --out FILE
                [--gateway-key HEX] [--rate BYTES_PER_S] [--burst BYTES] [--hours H] [--prints N]

Signs a streaming transaction with the operator's identity file. Writes JSON { tx, licence } (mode
0600): the transaction for the gateway and the device, and the licence secret for the gateway.
  --rate      most bytes per second the machine may consume (default 100000)
  --burst     bytes it may take beyond the rate (default 1048576)
  --hours     validity from now (default 24, at most 720)
  --prints    how many times the job may be streamed (default 1)`,
  revoke: `livematrix revoke --operator FILE [--tx FILE]... [--txh HEX]... [--device ID]...
                  [--operator-key HEX]... [--seq N] [--valid DURATION]
                  (--out FILE | --identity FILE [--url ${DEFAULT_URL}] [--credentials FILE] [--fleet default])

Signs a revocation list (a REVOKE frame) with the operator's identity file. Devices and gateways
that trust the operator key refuse, with reason tx-revoked, every transaction it names, every
transaction for a device it names or signed by an operator key it names; and, once the list is
stale (past its next update), every transaction until a newer list arrives. Each list replaces
the previous one: name everything that is still revoked, every time.
  --tx FILE           a transaction file (from "livematrix sign"): revoke that transaction
                      (its SHA-256); repeat for more
  --txh HEX           a transaction by its SHA-256 (64 hex digits, the "txh" of its file); repeatable
  --device ID         revoke every transaction for this device; repeatable
  --operator-key HEX  revoke every transaction signed by this operator key; repeatable. Not the
                      key of --operator: a list cannot revoke the key that signs it
  --seq N             the list's sequence number (default: the current time in seconds, so that
                      a later list always wins). Verifiers keep the list with the largest seq and
                      ignore an older or equal one: an explicit N must exceed the last list's
  --valid DURATION    how long the list holds before it is stale, e.g. 90s, 30m, 1h, 2d (default
                      1h, at most 30d): publish the next list before then, or devices and
                      gateways refuse every stream
  --out FILE          write the REVOKE frame (binary) to FILE, e.g. for
                      mosquitto_pub -t lm/1/FLEET/revocation -r -q 1 -f FILE
  --identity FILE     publish the list retained (QoS 1) on lm/1/FLEET/revocation, connecting as
                      this gateway identity (only gateways may publish there), and read it back
                      from the broker to check that it was retained
  --fleet ID          the fleet whose revocation topic to publish on (default "default")
Both --out and --identity may be given. Exit code 0 when the list was written and published.

${CONNECT_HELP}`,
  stream: `livematrix stream FILE --device ID --tx FILE --identity FILE --operator-key HEX
                  [--url ${DEFAULT_URL}] [--credentials FILE] [--fleet default] [--w BITS]
                  [--db LOCATION]

Runs a gateway for one stream: FILE (or - for standard input) to device ID under the signed
transaction in --tx (from "livematrix sign"), with the gateway identity --identity. The job is
read as a stream, as the device's window allows; its size and SHA-256 must match the
transaction, checked as the bytes pass (a mismatch fails the stream before the device could see
it complete). Prints progress and a report. Exit code 0 when the job was delivered.

--db LOCATION is the gateway's licence database (default .livematrix/gateway.db, or
$LIVEMATRIX_STATE/gateway.db): a SQLite file, or a postgres:// URL for gateways that share one.
It counts each print once, keeps the sessions a restart resumes (with the device's resume
ticket, never as a new print), and appends every signed receipt to the receipt ledger
("livematrix ledger verify", "livematrix ledger show").

${CONNECT_HELP}`,
  gateway: `livematrix gateway --jobs FILE --identity FILE --operator-key HEX [--url URL] [--credentials FILE]
                   [--fleet ID] [--w BITS] [--db LOCATION]

Streams every job of a jobs file (JSON array of { "file", "device", "tx" }) in parallel, prints
progress and one report per job. Exit code 0 when every job was delivered.

--db LOCATION is the gateway's licence database (default .livematrix/gateway.db, or
$LIVEMATRIX_STATE/gateway.db): a SQLite file, or a postgres:// URL for gateways that share one.
It counts each print once, keeps the sessions a restart resumes (with the device's resume
ticket, never as a new print), and appends every signed receipt to the receipt ledger
("livematrix ledger verify", "livematrix ledger show").

${CONNECT_HELP}`,
  device: `livematrix device --identity FILE --operator-key HEX [--out FILE|-] [--rate BYTES_PER_S]
                  [--url ${DEFAULT_URL}] [--credentials FILE] [--fleet default] [--once]
                  [--state DIR]

Runs a device that accepts signed streams and writes each to --out (default: stdout), consuming
at most --rate bytes per second like a real machine. Writes to FILE.part and renames it to FILE
only when the stream completed and its digest verified. Restarted mid-job, it resumes from what
FILE.part holds. --once exits after the first stream.

--state DIR holds what the device must never forget (default .livematrix/device-ID, or
$LIVEMATRIX_STATE/device-ID): the prints it counted per transaction, its resume tickets, the
OFFERs it saw and the newest revocation list, in licences.json, replaced atomically on every
change. Deleting it resets the print counts; a damaged one stops the device with an error.

Every OFFER it refuses and every frame it drops (forged, replayed, malformed) is one line on
stderr, at most ${LOG_MAX_LINES} lines per ${LOG_WINDOW_MS / 1000} s and then a count; the device keeps serving.

SIGINT or SIGTERM stops it within 2 s, even mid-stream: the running stream is aborted (its bytes
so far stay in FILE.part, which the next start resumes), BYE is published. A second signal
exits at once (exit code 1).
Exit codes: 0 stopped by --once or by SIGINT/SIGTERM, 1 a stream failed (or the broker refused
the connection), 2 usage.

${CONNECT_HELP}`,
  ledger: `livematrix ledger verify [--db LOCATION] [--operator-key HEX]...
livematrix ledger show [--db LOCATION] [--job NAME_OR_JD_HEX] [--json]

The receipt ledger is the gateway's record of every print it saw completed: one record per
RECEIPT the device signed, each with the operator's signed transaction, chained by SHA-256
(SPEC.md section 11.6). Both subcommands read it offline; nothing is sent anywhere.

verify  checks every record: the chain (seq 1, 2, 3, ... and each prev the hash of the record
        before), each RECEIPT's device signature and that it matches its transaction, each
        transaction's operator signature, and that no transaction has more prints than it
        allows. Prints the head hash (compare it with a copy kept elsewhere) and each problem
        with its record's seq. Exit code 0 when every record checks, 1 otherwise.
  --operator-key HEX  also require each transaction's operator key to be this one (repeatable,
                      or comma-separated)
show    how many prints of each job were made, on which devices, when (the device's clock, from
        its signed RECEIPT), recorded by which gateway, under which transaction.
  --job NAME|HEX      only this job: its name in the transaction, or its SHA-256 (jd, or the
                      first 8 or more hex digits of it)
  --json              the same as JSON: [{ jd, job, made, allowed, prints: [{ seq, device, time,
                      sid, txh, gateway, appended }] }]

  --db LOCATION       the gateway's database: a SQLite file, or a postgres:// URL (default
                      $LIVEMATRIX_STATE/gateway.db, else .livematrix/gateway.db)`,
};

/** Prints the help of `cmd` (the overview for an unknown one). */
export function help(cmd: string): number {
  console.log(HELP[cmd] ?? HELP['main']);
  return EXIT.ok;
}
