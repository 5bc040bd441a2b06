/**
 * Licences that hold, against real `livematrix` processes ([LM-TX-7], [LM-LIC-1]..[LM-LIC-5]): a
 * prints=1 job is made once whatever the gateway, the device or the network does: a second
 * stream, a gateway with a fresh database, a device killed and started again, 1,000 replayed
 * OFFERs; and a print cut off by a device crash resumes once, with the device's ticket, and
 * counts once.
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { describe, expect, it } from 'vitest';
import { FrameType, decodeFrame, digest, toHex } from '@livematrix/spec';
import { type Running, cli, keys, report, signJob } from './cli-harness.js';
import { aedes } from './harness.js';

const JOB = join(import.meta.dirname, '..', '..', 'examples', 'calib_cube.gcode');

interface Setup {
  dir: string;
  op: string;
  tx: string;
  txh: string;
  url: string;
  procs: Running[];
}

/** The device's licence state file, as it is on disk ([LM-LIC-2]). */
function printsOnDisk(state: string, txh: string): number {
  const r = JSON.parse(readFileSync(join(state, 'licences.json'), 'utf8')) as { prints: Record<string, number> };
  return r.prints[txh] ?? 0;
}

function device(s: Setup, state: string, out: string, rate = '1000000000'): Running {
  const d = cli(['device', '--identity', join(s.dir, 'dev.json'), '--operator-key', s.op, '--out', out, '--rate', rate, '--url', s.url, '--state', state]);
  s.procs.push(d);
  return d;
}

function stream(s: Setup, db: string): Running {
  const r = cli(['stream', JOB, '--device', 'printer-1', '--tx', s.tx, '--identity', join(s.dir, 'gw.json'), '--operator-key', s.op, '--url', s.url, '--w', '16', '--db', db]);
  s.procs.push(r);
  return r;
}

async function withSetup(run: (s: Setup) => Promise<void>): Promise<void> {
  const broker = await aedes();
  const dir = mkdtempSync(join(tmpdir(), 'lm-cli-licence-'));
  const procs: Running[] = [];
  try {
    const k = await keys(dir);
    const tx = await signJob(dir, k, JOB); // prints 1
    const txBytes = Buffer.from((JSON.parse(readFileSync(tx, 'utf8')) as { tx: string }).tx, 'hex');
    await run({ dir, op: k.op, tx, txh: toHex(digest(txBytes)), url: broker.url, procs });
  } finally {
    for (const p of procs) p.kill('SIGKILL');
    await Promise.all(procs);
    await broker.close();
  }
}

describe('a prints=1 job is made once [LM-TX-7] [LM-LIC-1] [LM-LIC-2] [LM-LIC-5]', () => {
  it('a second stream, a fresh gateway database, a device killed and restarted, 1,000 replayed OFFERs: one print', () => withSetup(async (s) => {
    const state = join(s.dir, 'device-state');
    const db = join(s.dir, 'gateway.db');
    // an eavesdropper on the device's inbound topic records the OFFERs
    const spy = await mqtt.connectAsync(s.url, { clientId: 'lm-spy' });
    const offers: Buffer[] = [];
    spy.on('message', (_t, p) => {
      try {
        if (decodeFrame(p).type === FrameType.OFFER) offers.push(Buffer.from(p));
      } catch {
        // not a frame
      }
    });
    await spy.subscribeAsync('lm/1/default/d/printer-1/in', { qos: 1 });
    try {
      let dev = device(s, state, join(s.dir, 'out.gcode'));
      await dev.waitFor(/online/);
      const first = await stream(s, db);
      expect(first.code, first.err).toBe(0);
      expect(readFileSync(join(s.dir, 'out.gcode')).equals(readFileSync(JOB))).toBe(true);
      expect(printsOnDisk(state, s.txh)).toBe(1);
      expect(offers.length).toBeGreaterThan(0);

      // 1,000 replays of the OFFERs that made the print ([LM-LIC-5])
      for (let i = 0; i < 1000; i++) await spy.publishAsync('lm/1/default/d/printer-1/in', offers[i % offers.length] as Buffer, { qos: 1 });

      // the same gateway database: refused before any OFFER ([LM-TX-7])
      const second = await stream(s, db);
      expect(second.code).not.toBe(0);
      expect(second.err).toMatch(/print count exhausted: 1 of 1/);

      // a gateway that forgot everything: the device refuses ([LM-TX-7])
      const forgetful = await stream(s, join(s.dir, 'fresh-1.db'));
      expect(forgetful.code).not.toBe(0);
      expect(forgetful.err).toMatch(/device refused the offer: .*print count exhausted/);

      // the device killed and started again keeps its count ([LM-LIC-2])
      dev.kill('SIGKILL');
      await dev;
      dev = device(s, state, join(s.dir, 'out-2.gcode'));
      await dev.waitFor(/online/);
      const afterRestart = await stream(s, join(s.dir, 'fresh-2.db'));
      expect(afterRestart.code).not.toBe(0);
      expect(afterRestart.err).toMatch(/device refused the offer: .*print count exhausted/);
      // every replay was refused and none counted; the device is still serving
      expect(printsOnDisk(state, s.txh)).toBe(1);
      dev.kill('SIGTERM');
      const ended = await dev;
      expect(ended.code, ended.err).toBe(0);
    } finally {
      await spy.endAsync();
    }
  }), 120_000);
});

describe('a print cut off by a device crash resumes once and counts once [LM-LIC-3] [LM-LIC-4] [LM-DLV-10]', () => {
  it('kill -9 of the device mid-print: the gateway resumes with the device\'s ticket; the print counts once on both sides', () => withSetup(async (s) => {
    const state = join(s.dir, 'device-state');
    const db = join(s.dir, 'gateway.db');
    const out = join(s.dir, 'out.gcode');
    let dev = device(s, state, out, '80000');
    await dev.waitFor(/online/);
    const run = stream(s, db);
    // past the counting point, and past the first point of the job's digest the device keeps
    // (a multiple of lcm(C, 64), at most 49088 bytes at any w; [LM-DLV-20]): the resume starts there
    await dev.waitFor(/^printer-1: (?:[3-9]\d|100)% /m);
    dev.kill('SIGKILL');
    await dev;
    expect(printsOnDisk(state, s.txh)).toBe(1);
    dev = device(s, state, out, '80000');
    const done = await run;
    expect(done.code, done.err).toBe(0);
    expect(done.err).toMatch(/holds a resume ticket/);
    expect(report(done).receipt.bytes).toBe(readFileSync(JOB).length);
    await dev.waitFor(/wrote /);
    expect(dev.err).toMatch(/resuming .* at byte [1-9]\d*/);
    expect(readFileSync(out).equals(readFileSync(JOB))).toBe(true);
    expect(printsOnDisk(state, s.txh)).toBe(1);
    // the ticket is spent and the count used up: no further print, from either side
    const again = await stream(s, db);
    expect(again.code).not.toBe(0);
    expect(again.err).toMatch(/print count exhausted/);
    const forgetful = await stream(s, join(s.dir, 'fresh.db'));
    expect(forgetful.code).not.toBe(0);
    expect(forgetful.err).toMatch(/device refused the offer: .*print count exhausted/);
  }), 120_000);
});

describe('crashes at any point of one print [LM-LIC-1] [LM-LIC-2] [LM-LIC-4] [LM-LEDGER-1]', () => {
  it('the device killed three times and the gateway once, mid-print: one byte-identical output, one count on each side, one ledger record', () => withSetup(async (s) => {
    const state = join(s.dir, 'device-state');
    const db = join(s.dir, 'gateway.db');
    const out = join(s.dir, 'out.gcode');
    let dev = device(s, state, out, '80000');
    await dev.waitFor(/online/);
    let run = stream(s, db);
    // each device process is killed after its consumer took about a fifth of the job (its third
    // progress line: one at the start, one per tenth); after the second kill, the gateway too
    const third = /^printer-1: \d+% .*\n(?:.*\n)*?printer-1: \d+% .*\n(?:.*\n)*?printer-1: \d+% /m;
    for (let i = 0; i < 3; i++) {
      await dev.waitFor(third);
      dev.kill('SIGKILL');
      await dev;
      expect(printsOnDisk(state, s.txh)).toBe(1);
      if (i === 1) {
        run.kill('SIGKILL');
        await run;
        run = stream(s, db);
      }
      dev = device(s, state, out, '80000');
    }
    const done = await run;
    expect(done.code, done.err).toBe(0);
    await dev.waitFor(/wrote /);
    expect(readFileSync(out).equals(readFileSync(JOB))).toBe(true);
    expect(printsOnDisk(state, s.txh)).toBe(1);
    const verified = await cli(['ledger', 'verify', '--db', db, '--operator-key', s.op]);
    expect(verified.code, verified.out + verified.err).toBe(0);
    expect(verified.out).toMatch(/: 1 record,/);
    const shown = await cli(['ledger', 'show', '--db', db]);
    expect(shown.out).toMatch(/1 print made of 1 allowed, on printer-1/);
    const again = await stream(s, db);
    expect(again.code).not.toBe(0);
    expect(again.err).toMatch(/print count exhausted/);
  }), 180_000);
});

