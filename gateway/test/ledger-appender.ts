/**
 * A child process for the licence database tests: appends completed sessions to a SQLite
 * licence database in a loop, printing each record's seq on a line, until it has appended
 * COUNT (0: until killed). `node gateway/dist/test/ledger-appender.js DB COUNT GATEWAY`.
 * The SIGKILL test kills it mid-append ([LM-LEDGER-3]); two of them at once must not fork
 * the chain.
 */
import { openLicenceDb } from '../src/index.js';
import { ledgerFixture } from './ledger-fixture.js';

const [file, countArg, gateway] = process.argv.slice(2);
if (!file) {
  console.error('usage: ledger-appender.js DB [COUNT] [GATEWAY]');
  process.exit(2);
}
const count = Number(countArg ?? '0');
const db = await openLicenceDb(file);
const f = ledgerFixture();
const tx = f.tx(1_000_000);
for (let i = 0; count === 0 || i < count; i++) {
  const r = await f.complete(db, tx, gateway ?? 'gw-child');
  process.stdout.write(`${r.seq}\n`);
}
await db.close();
