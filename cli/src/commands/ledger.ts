/**
 * @module commands/ledger
 * The receipt ledger (SPEC.md §11.6) of a gateway's database, offline: `livematrix ledger
 * verify` checks the chain and every signature and names each problem's record
 * ([LM-LEDGER-6]), as text or JSON with every record; `livematrix ledger show` tells how many prints of each job were made, on
 * which devices and when.
 */
import { existsSync } from 'node:fs';
import { type LedgerJobSummary, fromHex, summarizeLedger, toHex, verifyLedger } from '@livematrix/spec';
import { type LicenceDb, isPostgresUrl, openLicenceDb } from '@livematrix/gateway';
import { EXIT, Failure, UsageError, type Values, list, opt, parse } from '../args.js';
import { help } from '../help.js';
import { gatewayDbPath } from '../state.js';

/** Opens the database an operator names (default: the gateway's); a missing SQLite file is a failure, not a new database. */
async function openDb(values: Values): Promise<{ db: LicenceDb; where: string }> {
  const where = opt(values, 'db', gatewayDbPath());
  if (!isPostgresUrl(where) && where !== ':memory:' && !existsSync(where)) {
    throw new Failure(`no licence database at ${where}: give --db (a SQLite file or a postgres:// URL), or set LIVEMATRIX_STATE to the gateway's state directory`);
  }
  return { db: await openLicenceDb(where), where: isPostgresUrl(where) ? where.replace(/\/\/([^:@/]*):[^@/]*@/, '//$1:***@') : where };
}

/** --operator-key values (repeatable, or comma-separated) as keys. */
function operatorKeys(values: Values): Uint8Array[] {
  return list(values, 'operator-key').flatMap((v) => v.split(',')).map((s) => s.trim()).filter((s) => s.length > 0).map((s) => {
    if (!/^[0-9a-fA-F]{64}$/.test(s)) throw new UsageError(`--operator-key must be 64 hex digits (an Ed25519 public key), got "${s}"`);
    return fromHex(s);
  });
}

/**
 * `livematrix ledger verify`: exit 0 only when every record checks ([LM-LEDGER-6]); with --json
 * the verdict and every record's bytes as JSON (what a conformance suite or an auditor's tool reads).
 */
async function verifyCmd(values: Values): Promise<number> {
  const trusted = operatorKeys(values);
  const { db, where } = await openDb(values);
  try {
    const opts = trusted.length > 0 ? { trustedOperators: trusted } : {};
    if (values['json']) {
      const records: Uint8Array[] = [];
      for await (const r of db.ledger()) records.push(r);
      const v = await verifyLedger(records, opts);
      console.log(JSON.stringify({ ok: v.ok, count: v.count, head: v.head, operatorsChecked: trusted.length > 0, problems: v.problems, records: records.map(toHex) }, null, 2));
      if (v.ok) return EXIT.ok;
      throw new Failure(`the ledger does not verify: ${v.problems.length} problem${v.problems.length === 1 ? '' : 's'} (listed in the JSON)`);
    }
    const v = await verifyLedger(db.ledger(), opts);
    console.log(`ledger ${where}: ${v.count} record${v.count === 1 ? '' : 's'}, head ${v.head}`);
    if (trusted.length === 0) console.log('operator keys: not checked against a trusted key (give --operator-key to check them)');
    if (v.ok) {
      console.log('ok: the chain is unbroken; every RECEIPT is signed by its device and matches its transaction; every transaction is signed by its operator; no transaction has more prints than it allows');
      return EXIT.ok;
    }
    for (const p of v.problems) console.log(`seq ${p.seq}: ${p.kind}: ${p.detail}`);
    throw new Failure(`the ledger does not verify: ${v.problems.length} problem${v.problems.length === 1 ? '' : 's'} in record${new Set(v.problems.map((p) => p.seq)).size === 1 ? '' : 's'} ${[...new Set(v.problems.map((p) => p.seq))].join(', ')}`);
  } finally {
    await db.close();
  }
}

const utc = (t: number) => new Date(t).toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z');

/** Columns of a table, padded to their widest cell. */
function table(rows: string[][]): string[] {
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length))) ?? [];
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i] ?? 0))).join('  ').trimEnd());
}

function matches(j: LedgerJobSummary, job: string): boolean {
  const q = job.toLowerCase();
  return j.job === job || j.jd === q || (/^[0-9a-f]{8,63}$/.test(q) && j.jd.startsWith(q));
}

/** `livematrix ledger show`: prints per job, as a table or JSON. */
async function showCmd(values: Values): Promise<number> {
  const { db, where } = await openDb(values);
  try {
    const job = typeof values['job'] === 'string' ? values['job'] : undefined;
    const all = await summarizeLedger(db.ledger());
    const jobs = job === undefined ? all : all.filter((j) => matches(j, job));
    const v = await verifyLedger(db.ledger());
    if (!v.ok) console.error(`warning: the ledger does not verify (${v.problems.length} problems): run "livematrix ledger verify"`);
    if (values['json']) {
      console.log(JSON.stringify(jobs, null, 2));
      return EXIT.ok;
    }
    if (jobs.length === 0) {
      console.log(job === undefined ? `ledger ${where}: no prints recorded` : `ledger ${where}: no prints of job "${job}" (${all.length} job${all.length === 1 ? '' : 's'} in the ledger)`);
      return EXIT.ok;
    }
    console.log(`ledger ${where}: ${v.count} record${v.count === 1 ? '' : 's'}, head ${v.head.slice(0, 16)}...`);
    for (const j of jobs) {
      const devices = [...new Set(j.prints.map((p) => p.device))];
      console.log(`\njob ${j.job} (jd ${j.jd.slice(0, 16)}...): ${j.made} print${j.made === 1 ? '' : 's'} made of ${j.allowed} allowed, on ${devices.join(', ')}`);
      const rows = [['seq', 'device', 'completed (device clock)', 'recorded by', 'session', 'transaction']];
      for (const p of j.prints) rows.push([String(p.seq), p.device, utc(p.time), p.gateway, p.sid.slice(0, 12), p.txh.slice(0, 12)]);
      for (const line of table(rows)) console.log(`  ${line}`);
    }
    return EXIT.ok;
  } finally {
    await db.close();
  }
}

export async function ledger(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, {
    db: { type: 'string' }, 'operator-key': { type: 'string', multiple: true }, job: { type: 'string' }, json: { type: 'boolean' },
  });
  if (values['help']) return help('ledger');
  const [sub, ...extra] = positionals;
  if (extra.length > 0) throw new UsageError(`unexpected argument "${extra[0] as string}"`);
  if (sub === 'verify') {
    if (values['job'] !== undefined) throw new UsageError('--job belongs to "ledger show"');
    return verifyCmd(values);
  }
  if (sub === 'show') {
    if (values['operator-key'] !== undefined) throw new UsageError('--operator-key belongs to "ledger verify"');
    return showCmd(values);
  }
  throw new UsageError(sub === undefined ? 'ledger needs a subcommand: verify or show' : `unknown ledger subcommand "${sub}" (verify or show)`);
}

