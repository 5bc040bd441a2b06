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
  --mqtt 4|5          MQTT 3.1.1 (4, the default) or MQTT 5 (device only for now; over MQTT 5
                      frames carry Content Type application/livematrix+cbor, [LM-MQTT-7])
  --ca FILE           TLS (an mqtts:// --url): the CA certificate(s), PEM, the broker's
                      certificate must chain to (default: the system's roots)
  --cert FILE --key FILE
                      mutual TLS: this client's certificate and its unencrypted key, PEM (for
                      "livematrix broker", the certificate's CN is the --identity's id). A
                      refused handshake says what to check (an unknown CA, a missing certificate).
Environment:
  ${ENV_USER}, ${ENV_PASSWORD}
                      the same user name and password, when --credentials is not given
Without either, the client authenticates with a connect token signed by its --identity key,
which "livematrix broker --registry FILE" checks against its registry (brokers without the
Live Matrix plugin ignore it). A refused connection says which identity and what to check.`;


const SERVICE_HELP = `Services over the broker (SPEC.md section 16.1): every party has an inbox
lm/1/FLEET/s/ID/in; requests and answers are signed frames whose contents are sealed to the
other party. A service answers only keys it is told to trust for each op, and only fresh
requests (120 s, an id not seen before); a client takes only answers signed by the key it was
given (--...-key). The broker's registry lists each party with its role: store, keys, owner
(whoever uploads, deletes or grants), gateway; devices cannot reach any inbox.`;

export const HELP: Record<string, string> = {
  main: `livematrix: stream machine code to manufacturing machines as expiring hints over MQTT

Usage: livematrix <command> [options]

Commands:
  demo      the whole chain on this host: upload to a store and a keys service, a broker, a
            gateway, the fleet service and its dashboard, two simulated printers; streams a real
            G-code file, shows who held what
  broker    run an embedded MQTT broker (aedes)
  serve     the fleet service: job queues per device, a dashboard, an HTTP API, metrics
  gateway   stream the jobs listed in a jobs file, then exit
  stream    stream one G-code file to one device, then exit
  device    run a device that writes what it receives to a file (a simulated machine)
  keygen    create an identity key file (device, gateway or operator)
  sign      sign a streaming transaction as the operator
  revoke    sign a revocation list as the operator; write it or publish it retained
  acl       write a Mosquitto ACL file from the broker registry
  ledger    verify a gateway's receipt ledger offline, or show the prints it records

Protected jobs (SPEC.md section 16: no single node holds a usable file), each party a process
with its own identity on the broker:
  keys-service  run the keys service: chunk keys, playbooks, licences, the store's epoch keys
  store         run the store: ciphertext segments among decoys, re-encrypted every epoch
  upload        encrypt a file here; send its segments to the store, its keys to the keys service
  grant         hand a protected transaction's licence secret to the keys service (the operator)
  delete        delete a protected job from both services, with their signed receipts
  (then "livematrix sign --protected-jid ..." and "livematrix stream --protected ...")

Run "livematrix <command> --help" for a command's options.`,
  serve: `livematrix serve --identity FILE (--operator FILE | --operator-key HEX...) [options]

The fleet service (SPEC.md section 17): a gateway that keeps a queue of jobs per device in its
database and streams each device's jobs in order as it comes online; jobs move QUEUED,
IN_PROGRESS, PAUSED, SUCCEEDED, FAILED, TIMED_OUT, REJECTED or CANCELED, each move recorded
with its reason. A transient failure (device offline, silent, busy) is retried after 1 s, 2 s,
4 s ... up to 60 s; a rate or tamper alarm quarantines the device until an operator clears it.
Stopped (Ctrl-C) or killed, it goes on where it was when started again: devices resume with
their tickets, no print counted twice.

  --identity FILE     the gateway's identity file ("livematrix keygen")
  --operator FILE     an operator identity: the service signs each job's transaction with it,
                      and the dashboard link it prints carries a 12-hour operator token
  --operator-key HEX  an operator key whose transactions (and API tokens) are honoured;
                      repeat for several. Without --operator, jobs come with signed
                      transactions ("livematrix sign") and their licence
  --registry FILE     the broker's registry: the fleet's devices and their keys (needed to
                      sign for a device; HELLOs under other keys are ignored)
  --db LOCATION       SQLite file (default .livematrix/gateway.db) or postgres://... URL;
                      instances sharing a PostgreSQL database share the queues, each job
                      leased by one of them at a time
  --id ID             this instance's id, its leases' owner (default serve-GATEWAY_ID); keep it
                      across restarts to take its jobs back at once
  --lease DURATION    how long a lease lasts unrenewed, e.g. 15s (the default): how soon
                      another instance takes over the jobs of one that died
  --files DIR         job files (default .livematrix/files): copy G-code here or upload it
                      with PUT /api/files/NAME; a job keeps its own copy by SHA-256
  --http HOST:PORT    the dashboard and API (default 127.0.0.1:8080)
  --w BITS            force the segment width (default: negotiated per device)
  --new-api-key NAME  make an API key, print it once (only its hash is kept), and exit
  --keys-service ID --keys-service-key HEX --store ID[,ID] --store-key HEX[,HEX]
                      stream protected jobs (SPEC.md section 16) from these services; such
                      jobs are submitted with "jid" and a transaction already granted

HTTP: GET / (dashboard), /openapi.json, /metrics; /api/... with "Authorization: Bearer KEY"
(an API key, or an operator token). The first start without --operator makes an API key
"admin" and prints it once.

${CONNECT_HELP}`,
  demo: `livematrix demo [--file FILE] [--w BITS] [--rate BYTES_PER_S] [--port N] [--keep | --exit]

Runs the whole chain in one process (SPEC.md sections 16 and 17): a keys service and a store (in
a temporary directory, the store's outer key changing every 1.5 s), an owner who encrypts FILE
(default: examples/cylinder_annular.gcode) and uploads it, an MQTT broker on 127.0.0.1 (a free
port), a gateway that streams what it cannot read, two simulated printers, and the fleet
service with its dashboard (printed as a URL that signs you in; nothing is opened for you). One
job per printer goes through the service's queue: it signs the transaction as the operator and
hands the licence to the keys service, not the gateway. Shows progress and telemetry, then a
summary, the verified receipt ledger and a table of which node held what. Exit code 0 when both
outputs match the file.

  --file FILE         G-code to stream
  --w BITS            segment width, 8..24 (default: negotiated from the printers' measured rate)
  --rate N            bytes per second each simulated printer consumes (default 1000000 in a
                      terminal, 4000000 otherwise)
  --port N            the dashboard's port (default 8080, or a free one when it is taken)
  --keep              keep the service and dashboard running after the summary, until Ctrl-C
                      (the default in a terminal)
  --exit              end after the summary, also in a terminal`,
  broker: `livematrix broker [--config FILE] [--port 1883] [--host 127.0.0.1] [--registry FILE]
                  [--tls-cert FILE --tls-key FILE [--tls-port 8883] [--tls-ca FILE [--require-client-cert]]
                  [--tls-only]] [--ws-port N] [--metrics-port N] [--max-packet-size BYTES]

Runs an aedes broker until Ctrl-C or SIGTERM (graceful: clients are disconnected first).
With --registry it runs the Live Matrix plugin: clients authenticate with connect tokens, each
reaches only its own topics, malformed frames are dropped, floods raise rate alarms; the
registry reloads on SIGHUP or when the file changes. Without it: no authentication
(development only). A connection that announces an MQTT packet larger than --max-packet-size
(default 262144) is closed before the packet is read, authenticated or not ([LM-BRK-6]).
TLS: --tls-cert and --tls-key (PEM; --cert and --key are older names) open an mqtts listener on
--tls-port beside the plain one (--tls-only: no plain listener). --tls-ca lets clients present
certificates of that CA; --require-client-cert refuses, in the handshake, a client without one
(mutual TLS), and refuses any CONNECT without a verified certificate: it needs --tls-only and no
--ws-port (plain listeners carry no certificate, and would refuse every client), else the broker
does not start (exit 2). Without --require-client-cert, client certificates are optional: a
client without one authenticates by its connect token alone. With a registry, a client
certificate's CN must be the identity the client connects as: a certificate of printer-1 cannot
carry another identity's token.
--config reads the same settings from JSON:
  { "host", "port", "tcp", "registry", "maxPacketSize", "tls": { "port", "cert", "key", "ca", "requireClientCert" },
    "ws": { "port" }, "metrics": { "port" } }`,
  acl: `livematrix acl --registry FILE [--out FILE]

Writes a Mosquitto acl_file from the Live Matrix registry, with the same per-client topic
isolation as the plugin (user name = client id).`,
  keygen: `livematrix keygen --id ID --out FILE

Writes a new Ed25519 identity (JSON, mode 0600) and prints its public key. Refuses to overwrite.`,
  sign: `livematrix sign --operator FILE --job FILE --device ID --device-key HEX --out FILE
                [--gateway-key HEX] [--rate BYTES_PER_S] [--burst BYTES] [--hours H] [--prints N]
livematrix sign --operator FILE --protected-jid HEX --upload-hash HEX (--job FILE | --size N --digest HEX)
                --device ID --device-key HEX --out FILE --licence-out FILE [--gateway-key HEX] ...

Signs a streaming transaction with the operator's identity file. Writes JSON { tx, licence } (mode
0600): the transaction for the gateway and the device, and the licence secret for the gateway.
  --rate      most bytes per second the machine may consume (default 100000)
  --burst     bytes it may take beyond the rate (default 1048576)
  --hours     validity from now (default 24, at most 720)
  --prints    how many times the job may be streamed (default 1)
A protected job (SPEC.md section 16): its job id and upload hash, as "livematrix upload" printed
them, and its size and SHA-256 (the same line; or --job FILE, when the operator has the file).
The licence secret then never goes to the gateway:
  --protected-jid HEX  the job id (32 hex digits)
  --upload-hash HEX    the upload's SHA-256 (64 hex digits)
  --size N, --digest HEX
                       the job's size in bytes and the SHA-256 of its plaintext
  --out FILE           the transaction alone, for "livematrix stream --protected" (no licence)
  --licence-out FILE   the transaction and its licence secret, for "livematrix grant" (mode 0600)`,
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
livematrix stream --protected --device ID --tx FILE --identity FILE --operator-key HEX
                  --keys-service ID --keys-service-key HEX --store ID[,ID...] --store-key HEX[,HEX...] [...]

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

--protected streams a protected job (SPEC.md section 16) without FILE: the gateway fetches the
owner's ciphertext from the store in the order the keys service's playbook gives, and relays the
chunk keys the keys service wraps for the device's session; it never holds the plaintext, a
chunk key or the licence secret. --tx is the --out file of "livematrix sign --protected-jid" (a
file with the licence secret is refused); the operator gave the licence to the keys service with
"livematrix grant". The store and the keys service must trust this gateway's key
(--trust-gateway); each is pinned to its key here, and a store that stops answering is asked
again for up to 60 s (a restarted store costs a pause, not the stream).
  --keys-service ID, --keys-service-key HEX   the keys service's id and identity key
  --store ID[,ID...], --store-key HEX[,HEX...]
                        the store's id and identity key; or several store instances on one
                        PostgreSQL database (store --db), ids and keys paired in order: a read
                        one does not answer within 3 s, or answers with an error other than an
                        unknown segment, is asked of the next, and the gateway keeps asking the
                        one that answered

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
                  [--state DIR] [--simulate-telemetry] [--status-interval MS]
                  [--lite] [--workers N] [--wmax W] [--memory MIB] [--window KIB]
                  [--resume-point-interval MS]
       livematrix device --identity FILE --operator-key HEX --serial PATH [--baud 115200]
                  [--serial-timeout MS] [--advanced-ok N] [...the options above but --out and --rate]

Runs a device that accepts signed streams and writes each to --out (default: stdout), consuming
at most --rate bytes per second like a real machine. Writes to FILE.part and renames it to FILE
only when the stream completed and its digest verified. Restarted mid-job, it resumes from what
FILE.part holds. --once exits after the first stream.

--serial PATH sends each stream to a Marlin-style firmware on that serial port (e.g. /dev/ttyUSB0)
instead of a file: numbered, checksummed lines (M110 N0 starts each job), comments and blank
lines left out, Resend: answered, busy: waited for, echo: and Error: lines printed. The stream is
consumed only as the firmware acknowledges it (the gateway's window then holds it at the
machine's pace), so --out and --rate do not apply, and a restarted device prints a cut-off job
again from its first line. --baud as the firmware was built (default 115200). --serial-timeout
MS without an ok or busy: sends the oldest line again (twice), then fails the stream (default
30000). --advanced-ok N keeps N commands in flight for a firmware built with ADVANCED_OK
(ok N.. P.. B..); N at most its BUFSIZE. A halted, silent or rebooted firmware fails the stream
(exit code 1 at the end) and aborts it; the next stream starts again with M110.

--resume-point-interval MS: how often, while a job streams, the device writes beside its ticket a
point of the job's SHA-256 (no plaintext) that a restart resumes from (default 10000; each write
replaces licences.json with two fsyncs, which an SD card wears under; SPEC.md [LM-DLV-20]).
--state DIR holds what the device must never forget (default .livematrix/device-ID, or
$LIVEMATRIX_STATE/device-ID): the prints it counted per transaction, its resume tickets, the
OFFERs it saw and the newest revocation list, in licences.json, replaced atomically on every
change. Deleting it resets the print counts; a damaged one stops the device with an error.
--simulate-telemetry sends made-up nozzle and bed temperatures and progress as telemetry twice
a second while streaming, as a printer would: the fleet dashboard draws them; the same readings
go, in clear, into the device's signed status.
The device publishes its signed status (idle, streaming, offline; SPEC.md §10.2), retained, on
lm/1/FLEET/d/ID/status when it connects, when its state changes and every --status-interval ms
(default 30000), and its HELLO again as often. Each connection's boot sequence, in its Last Will,
HELLO and status, is reserved in --state, so that it grows across restarts.

Footprint: by default the device hashes on one worker thread per core, reports w up to 24 and
512 MiB for revision tables, and lets the gateway run 4 MiB ahead of the machine. --lite is for
small hosts (a Raspberry Pi Zero, a host that also runs the printer's UI): no worker threads,
w at most 16 (tables of at most 320 KiB, built on the main thread in milliseconds), 16 MiB for
tables, a 1 MiB window. Each knob on its own: --workers N (0: the main thread), --wmax W (8..24),
--memory MIB, --window KIB; they override --lite's. A device reports what it can do from them
(SPEC.md §12), so a gateway offers it only widths and periods it keeps up with; BENCHMARKS.md
(bench:footprint) has the peak memory of each.

Every OFFER it refuses and every frame it drops (forged, replayed, malformed) is one line on
stderr, at most ${LOG_MAX_LINES} lines per ${LOG_WINDOW_MS / 1000} s and then a count; the device keeps serving.

SIGINT or SIGTERM stops it within 2 s, even mid-stream: the running stream is aborted (its bytes
so far stay in FILE.part, which the next start resumes), BYE is published. A second signal
exits at once (exit code 1).
Exit codes: 0 stopped by --once or by SIGINT/SIGTERM, 1 a stream failed (or the broker refused
the connection), 2 usage.

${CONNECT_HELP}`,
  'keys-service': `livematrix keys-service --identity FILE --dir DIR [--trust-gateway HEX]... [--trust-store HEX]...
                        [--trust-owner HEX]... [--operator-key HEX]... [--url URL] [--credentials FILE] [--fleet ID]

Runs the keys service of protected jobs until Ctrl-C or SIGTERM. It keeps, sealed at rest in
DIR/keys.db (SQLite; a store may be on PostgreSQL, the keys service is not), each upload's chunk keys and playbook, the licence secrets operators grant, and the
store's epoch chain; it gives a gateway the playbook's segment ids (never a chunk key) and each
chunk key wrapped for one device session, paced by the transaction; it gives a store its epoch
keys and erases each epoch's chain once the store confirms the next; it deletes a job on its
owner's signed request. Its X25519 key, which owners seal uploads to, is printed at start (upload
derives it from --keys-service-key).
  --identity FILE       its identity (registered in the broker with role keys)
  --dir DIR             its state directory (created owner-only)
  --trust-gateway HEX   a gateway that may read playbooks and ask for chunk keys; repeatable
  --trust-store HEX     a store that may fetch epoch keys and confirm epochs; repeatable
  --trust-owner HEX     an owner who may upload (register) and delete jobs, and grant; repeatable
  --operator-key HEX    an operator whose transactions may be granted a job's keys, and who may
                        ask for the grant itself; repeatable (a job's owner may always grant)

${SERVICE_HELP}

${CONNECT_HELP}`,
  store: `livematrix store --identity FILE (--dir DIR | --db postgres://...) --keys-service ID --keys-service-key HEX [--epoch 120s]
                 [--trust-gateway HEX]... [--trust-owner HEX]... [--url URL] [--credentials FILE] [--fleet ID]

Runs the store of protected jobs until Ctrl-C or SIGTERM: segments of one size among decoys,
each sealed under the current epoch's key in DIR/store.db, all re-encrypted into the next epoch
every --epoch (default 120s) without stopping reads; the keys service then erases the old epoch's
chain, so a copy of DIR taken earlier opens nothing. Its epoch keys come from the keys service,
fetched ahead of each rotation; until the keys service answers the store waits. Stopped or
killed mid-rotation, the next start finishes it.
  --identity FILE       its identity (registered in the broker with role store)
  --dir DIR             its state directory (SQLite, DIR/store.db)
  --db URL              instead of --dir: a postgres:// URL. Several store instances, each with
                        its own identity, on one database serve the same segments and share the
                        rotation; a gateway given them all (stream --store ID,ID --store-key
                        HEX,HEX) asks the next when one stops answering. The keys service stays
                        on SQLite (its --dir).
  --keys-service ID, --keys-service-key HEX
                        the keys service (which must trust this store: --trust-store)
  --epoch DURATION      how often to change the outer key, e.g. 90s, 30m (default 120s)
  --trust-gateway HEX   a gateway that may read segments; repeatable
  --trust-owner HEX     an owner who may upload and delete segments; repeatable (a delete also
                        needs the keys service's signature over the job's segment list)

${SERVICE_HELP}

${CONNECT_HELP}`,
  upload: `livematrix upload FILE --owner FILE --store ID --store-key HEX --keys-service ID --keys-service-key HEX
                  [--density 0.5] [--chunk 4096] [--url URL] [--credentials FILE] [--fleet ID]

Encrypts FILE on this machine, chunk by chunk under fresh keys, signs the upload with the owner's
identity, and sends the ciphertext as segments of one size among random decoys, in a random
order, to the store, and the chunk keys and playbook sealed to the keys service. Nothing else
leaves this machine. Prints progress, then one JSON line { jid, uh, size, jd, C, n, segments }
and the "livematrix sign" line the operator needs for a transaction.
  --owner FILE          the owner's identity (registered in the broker with role owner, trusted
                        by both services with --trust-owner)
  --store ID, --store-key HEX, --keys-service ID, --keys-service-key HEX
                        the two services, each pinned to its identity key
  --density D           share of decoys among the segments, 0..0.95 (default 0.5)
  --chunk BYTES         chunk size, 256..65536 (default 4096)

${SERVICE_HELP}

${CONNECT_HELP}`,
  grant: `livematrix grant --tx FILE --identity FILE --keys-service ID --keys-service-key HEX
                 [--url URL] [--credentials FILE] [--fleet ID]

The operator hands the licence secret of a protected job's transaction to the keys service
(never to a gateway). --tx is the --licence-out file of "livematrix sign --protected-jid". The
keys service checks that the transaction is signed by the job's owner or an operator it trusts
and that it matches the upload; then a gateway may stream it. Prints { txh, jid, device, ... }.
  --identity FILE       who asks (the operator's identity, registered in the broker with role
                        owner, trusted by the keys service with --operator-key or --trust-owner)

${SERVICE_HELP}

${CONNECT_HELP}`,
  delete: `livematrix delete --owner FILE --jid HEX --store ID --store-key HEX --keys-service ID --keys-service-key HEX
                  [--url URL] [--credentials FILE] [--fleet ID]

Deletes a protected job with a delete transaction signed by its owner: the keys service removes
its chunk keys, playbook and licences and answers with its signed receipt and its signed list of
the job's segments; the store removes those segments, real and decoy, and answers with its own
receipt. Prints both receipts (verified) as JSON lines. A later stream of the job fails with
"not known to this keys service (deleted or never uploaded)".

${SERVICE_HELP}

${CONNECT_HELP}`,
  ledger: `livematrix ledger verify [--db LOCATION] [--operator-key HEX]... [--json]
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
  --json              the verdict as JSON, with every record's bytes: { ok, count, head,
                      operatorsChecked, problems: [{ seq, kind, detail }], records: [HEX] }
                      (records in seq order, each the record as SPEC.md section 11.6 encodes it)
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
