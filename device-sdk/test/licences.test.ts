/**
 * The device's licence state (SPEC.md §11.4): print counts at the counting point ([LM-LIC-1]),
 * resume tickets issued, held, spent and closed ([LM-LIC-3], [LM-LIC-4]), session ids of checked
 * OFFERs within the freshness window ([LM-LIC-5]), and the crash-safe file store that keeps them
 * ([LM-LIC-2]): reloads, refuses a corrupt file, and survives SIGKILL at any moment.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { LmError, Reason, identityKeyPair, randomBytes, ticketId, toHex, verifyTicket } from '@livematrix/spec';
import { Licences, type LicenceStore, fileLicenceStore, memoryLicenceStore } from '../src/licences.js';

const DEVICE = 'printer-1';
const identity = identityKeyPair();
const T0 = 1_800_000_000_000;
const HOUR = 3600_000;

/** A clock the test moves by hand. */
function manualClock(start = T0): { now: () => number; advance(ms: number): void } {
  let t = start;
  return { now: () => t, advance: (ms) => void (t += ms) };
}

const txh = () => toHex(randomBytes(32));
const sid = () => toHex(randomBytes(16));

function reasonOf(f: () => unknown): number | string | undefined {
  try {
    f();
  } catch (e) {
    return e instanceof LmError ? e.code : `not an LmError: ${String(e)}`;
  }
  return undefined;
}

const dirs: string[] = [];
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'lm-licences-'));
  dirs.push(d);
  return d;
}
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('print counts at the counting point [LM-LIC-1] [LM-TX-7]', () => {
  it('counts one print per counting point and refuses with tx-count beyond the limit, counting nothing', () => {
    const clock = manualClock();
    const l = new Licences(memoryLicenceStore(), identity, DEVICE, clock.now);
    const h = txh();
    expect(l.used(h)).toBe(0);
    l.count(h, 2, { sid: sid(), off: 0, exp: T0 + HOUR });
    expect(l.used(h)).toBe(1);
    l.count(h, 2, { sid: sid(), off: 0, exp: T0 + HOUR });
    expect(l.used(h)).toBe(2);
    expect(reasonOf(() => l.count(h, 2, { sid: sid(), off: 0, exp: T0 + HOUR }))).toBe(Reason.txCount);
    expect(l.used(h)).toBe(2);
    // another transaction's count is its own
    const other = txh();
    l.count(other, 1, { sid: sid(), off: 0, exp: T0 + HOUR });
    expect([l.used(h), l.used(other)]).toEqual([2, 1]);
  });
});

describe('resume tickets [LM-LIC-3] [LM-LIC-4]', () => {
  it('issues a ticket at the count, holds it when the session is cut off, spends it once on resume', () => {
    const clock = manualClock();
    const l = new Licences(memoryLicenceStore(), identity, DEVICE, clock.now);
    const h = txh();
    const s1 = sid();
    l.count(h, 1, { sid: s1, off: 0, exp: T0 + HOUR });
    // running in this process: it resumes nothing yet
    expect(l.held(h)).toBeUndefined();
    l.hold(s1, 8192);
    const held = l.held(h);
    expect(held).toBeDefined();
    const t = verifyTicket(held!.bytes, { device: DEVICE, devicePublic: identity.publicKey, txh: Buffer.from(h, 'hex'), now: clock.now() });
    expect([toHex(t.body.sid), t.body.off, t.body.exp, t.body.device]).toEqual([s1, 8192, T0 + HOUR, DEVICE]);
    const id = ticketId(t);
    expect(l.unspent(id)).toBe(true);
    // the resume spends it and issues the new session's ticket; no print is counted
    const s2 = sid();
    l.resume(id, h, { sid: s2, off: 8192, exp: T0 + HOUR });
    expect(l.unspent(id)).toBe(false);
    expect(l.held(h)).toBeUndefined();
    expect(l.used(h)).toBe(1);
    expect(reasonOf(() => l.resume(id, h, { sid: sid(), off: 0, exp: T0 + HOUR }))).toBe(Reason.txResume);
    // the resumed print completes: its ticket resumes nothing, even if the session is later said to be cut off
    l.close(s2);
    l.hold(s2, 100);
    expect(l.held(h)).toBeUndefined();
  });

  it('a ticket closed while running (print completed or abandoned) is never held', () => {
    const l = new Licences(memoryLicenceStore(), identity, DEVICE, manualClock().now);
    const h = txh();
    const s = sid();
    l.count(h, 1, { sid: s, off: 0, exp: T0 + HOUR });
    l.close(s);
    l.hold(s, 10);
    expect(l.held(h)).toBeUndefined();
  });

  it('an expired ticket resumes nothing', () => {
    const clock = manualClock();
    const l = new Licences(memoryLicenceStore(), identity, DEVICE, clock.now);
    const h = txh();
    const s = sid();
    l.count(h, 1, { sid: s, off: 0, exp: T0 + 1000 });
    l.hold(s, 0);
    const id = ticketId(l.held(h)!);
    clock.advance(1001);
    expect(l.held(h)).toBeUndefined();
    expect(l.unspent(id)).toBe(false);
  });

  it('after a crash (a ticket left running) a new Licences over the same store sees it held', () => {
    const store = memoryLicenceStore();
    const clock = manualClock();
    const h = txh();
    const s = sid();
    new Licences(store, identity, DEVICE, clock.now).count(h, 1, { sid: s, off: 0, exp: T0 + HOUR });
    // the process died here: no hold(), no close()
    const after = new Licences(store, identity, DEVICE, clock.now);
    expect(after.used(h)).toBe(1);
    const held = after.held(h);
    expect(held && toHex(held.body.sid)).toBe(s);
    expect(after.unspent(ticketId(held!))).toBe(true);
    // and the change was written: a third load sees it held too
    expect(store.load()?.tickets[ticketId(held!)]?.state).toBe('held');
  });
});

describe('session ids of checked OFFERs [LM-LIC-5]', () => {
  it('survive a reload and are forgotten once past twice the freshness window', () => {
    const store = memoryLicenceStore();
    const clock = manualClock();
    const a = sid();
    new Licences(store, identity, DEVICE, clock.now).remember(a, clock.now());
    const reloaded = new Licences(store, identity, DEVICE, clock.now);
    expect(reloaded.seen(a)).toBe(true);
    expect(reloaded.seen(sid())).toBe(false);
    // within 240 s it stays through other writes
    clock.advance(239_000);
    reloaded.remember(sid(), clock.now());
    expect(reloaded.seen(a)).toBe(true);
    // past it, the next write drops it, and a reload does not bring it back
    clock.advance(2_000);
    const b = sid();
    reloaded.remember(b, clock.now());
    expect(reloaded.seen(a)).toBe(false);
    const again = new Licences(store, identity, DEVICE, clock.now);
    expect([again.seen(a), again.seen(b)]).toEqual([false, true]);
  });
});

describe('fileLicenceStore [LM-LIC-2]', () => {
  it('keeps counts, tickets and session ids across a reload, in a file only its owner reads', () => {
    const dir = tempDir();
    const clock = manualClock();
    const h = txh();
    const s = sid();
    const l = new Licences(fileLicenceStore(dir), identity, DEVICE, clock.now);
    l.remember(s, clock.now());
    l.count(h, 3, { sid: s, off: 0, exp: T0 + HOUR });
    l.hold(s, 4096);
    const r = new Licences(fileLicenceStore(dir), identity, DEVICE, clock.now);
    expect(r.used(h)).toBe(1);
    expect(r.seen(s)).toBe(true);
    expect(r.held(h)?.body.off).toBe(4096);
    expect(statSync(join(dir, 'licences.json')).mode & 0o777).toBe(0o600);
  });

  it('starts empty only where there is no file', () => {
    const dir = join(tempDir(), 'state');
    expect(fileLicenceStore(dir).load()).toBeUndefined();
    expect(existsSync(dir)).toBe(true);
  });

  it('refuses a corrupt licences.json with an LmError that names the file, never starting over empty', () => {
    for (const text of ['', '{"v":1,"prints":{', 'null', '[]', '{"v":2,"prints":{},"tickets":{},"sids":{}}', '{"v":1,"prints":{},"tickets":{}}']) {
      const dir = tempDir();
      const path = join(dir, 'licences.json');
      writeFileSync(path, text);
      let err: unknown;
      try {
        new Licences(fileLicenceStore(dir), identity, DEVICE, Date.now);
      } catch (e) {
        err = e;
      }
      expect(err, `licences.json of ${JSON.stringify(text)}`).toBeInstanceOf(LmError);
      expect((err as LmError).message).toContain(path);
      // the file is left as it was, for someone to look at
      expect(readFileSync(path, 'utf8')).toBe(text);
    }
  });

  it('a store that cannot save stops the change from being acted on', () => {
    const failing: LicenceStore = { load: () => undefined, save: () => { throw new Error('disk full'); } };
    const l = new Licences(failing, identity, DEVICE, Date.now);
    expect(() => l.count(txh(), 1, { sid: sid(), off: 0, exp: Date.now() + HOUR })).toThrow('disk full');
  });
});

describe('a save that fails changes nothing [LM-LIC-2]', () => {
  it('a count whose write throws is not counted in memory either; the next change saves no trace of it', () => {
    const clock = manualClock();
    const inner = memoryLicenceStore();
    let failing = false;
    const store: LicenceStore = { load: () => inner.load(), save: (r) => (failing ? (() => { throw new Error('disk full'); })() : inner.save(r)) };
    const l = new Licences(store, identity, DEVICE, clock.now);
    const tx = txh();
    const s1 = sid();
    failing = true;
    expect(() => l.count(tx, 1, { sid: s1, off: 0, exp: T0 + HOUR })).toThrow(/disk full/);
    expect(l.used(tx)).toBe(0);
    failing = false;
    l.hold(s1, 100); // what a failing session does next: no ticket of it exists
    l.remember(sid(), T0);
    expect(new Licences(inner, identity, DEVICE, clock.now).used(tx)).toBe(0);
    expect(l.held(tx)).toBeUndefined();
    // the same count, written, is there
    l.count(tx, 1, { sid: s1, off: 0, exp: T0 + HOUR });
    expect(new Licences(inner, identity, DEVICE, clock.now).used(tx)).toBe(1);
  });
});

describe('fileLicenceStore under SIGKILL [LM-LIC-2]', () => {
  const built = fileURLToPath(new URL('../dist/src/licences.js', import.meta.url));
  const KILLS = 20;

  /** A child that counts prints of one transaction in a loop, printing each count once its save returned. */
  const CHILD = `
import { writeSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
const [modulePath, dir, txh, secret, pub] = process.argv.slice(2);
const { Licences, fileLicenceStore } = await import(modulePath);
const identity = { secretKey: new Uint8Array(Buffer.from(secret, 'hex')), publicKey: new Uint8Array(Buffer.from(pub, 'hex')) };
const l = new Licences(fileLicenceStore(dir), identity, 'crash-test', Date.now);
for (;;) {
  // a ticket that expires at once keeps the file small: the next save drops it
  l.count(txh, Number.MAX_SAFE_INTEGER, { sid: randomBytes(16).toString('hex'), off: 0, exp: Date.now() + 1 });
  writeSync(1, l.used(txh) + '\\n');
}
`;

  /** Runs the child until it reported a count, kills it with SIGKILL after `delay` ms more, and returns the last count it reported. */
  function runAndKill(script: string, dir: string, h: string, delay: number): Promise<number> {
    return new Promise((resolve, reject) => {
      const child = spawn(process.execPath, [script, built, dir, h, toHex(identity.secretKey), toHex(identity.publicKey)], { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      let err = '';
      let armed = false;
      child.stdout.setEncoding('utf8').on('data', (d: string) => {
        out += d;
        if (!armed && out.includes('\n')) {
          armed = true;
          setTimeout(() => child.kill('SIGKILL'), delay);
        }
      });
      child.stderr.setEncoding('utf8').on('data', (d: string) => void (err += d));
      child.on('error', reject);
      child.on('close', (code, signal) => {
        if (signal !== 'SIGKILL') return reject(new Error(`the child ended by itself (code ${code}): ${err}`));
        const lines = out.split('\n').filter((x) => x.length > 0);
        // a line cut by the kill is not a report
        const complete = out.endsWith('\n') ? lines : lines.slice(0, -1);
        resolve(Number(complete[complete.length - 1]));
      });
    });
  }

  it(`leaves a valid file whose count is the last one reported, or one more, after each of ${KILLS} kills`, async () => {
    expect(existsSync(built), `${built} is missing: build the device SDK first (npx tsc -b device-sdk)`).toBe(true);
    const dir = tempDir();
    const script = join(dir, 'count.mjs');
    writeFileSync(script, CHILD);
    const state = join(dir, 'state');
    const h = txh();
    let previous = 0;
    for (let i = 0; i < KILLS; i++) {
      const reported = await runAndKill(script, state, h, Math.floor(Math.random() * 150));
      const record = fileLicenceStore(state).load();
      expect(record, `kill ${i + 1}: no licence record`).toBeDefined();
      const saved = new Licences(fileLicenceStore(state), identity, 'crash-test', Date.now).used(h);
      // the save of the next count may have completed before the kill, its report not
      expect([reported, reported + 1], `kill ${i + 1}: the child reported ${reported}, the file holds ${saved}`).toContain(saved);
      expect(saved).toBeGreaterThan(previous);
      previous = saved;
    }
  }, 120_000);
});
