/**
 * @module gateway-profile/context
 * What a gateway test works with: the target (broker, operator, how to start a stream), fresh
 * suite devices, jobs and transactions, streams of the gateway under test, and the findings its
 * devices gathered. Everything a test opens is closed when it ends.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { BrokerAuth } from '@livematrix/spec/transport';
import { type Caps, type IdentityKeyPair, type SignedTx, type TxRequest, createTx, digest, toHex } from '@livematrix/spec';
import type { MatrixEngine } from '@livematrix/spec/engine';
import type { Checks } from '../checks.js';
import type { RequirementId } from '../generated/requirements.js';
import { sampleGcode } from '../runner.js';
import { until } from '../wait.js';
import { SuiteDevice } from './device.js';
import { Findings } from './findings.js';
import type { LedgerReader, StreamExit, StreamLauncher, StreamRun } from './launcher.js';

export interface GatewayTarget {
  url: string;
  fleet: string;
  /** the operator whose key the gateway under test trusts; the suite signs transactions with it */
  operator: IdentityKeyPair;
  /** the gateway's Ed25519 key: when given, transactions name it (key 15) and OFFERs must carry it */
  gatewayKey?: Uint8Array;
  /** starts one stream of the gateway under test */
  launch: StreamLauncher;
  protocolVersion?: 4 | 5;
  brokerAuth?: BrokerAuth;
  /**
   * reads the gateway's receipt ledger: its records (SPEC.md §11.6) in seq order; without it the
   * tests of the ledger ([LM-LEDGER-3], [LM-LEDGER-4]) do not run
   */
  readLedger?: LedgerReader;
  /**
   * the stream command prints each telemetry payload the gateway accepts, its numbers in decimal;
   * without it [LM-TEL-2] is not executed (nothing on the wire shows which telemetry a gateway took)
   */
  telemetryInOutput?: boolean;
  /** the gateway's bounds of [LM-DLV-13]: no authenticated frame for `silence` ms ends a session (timeout), a Last Will not followed within `grace` ms ends it (offline); the reference's 20 s and 10 s unless given */
  liveness?: { silence: number; grace: number };
}

/** The reference gateway's bounds of [LM-DLV-13], which the suite assumes unless told others. */
export const REFERENCE_LIVENESS = { silence: 20_000, grace: 10_000 } as const;

/**
 * Capabilities of the suite's devices unless a test says otherwise ([LM-CAP-2]): rates far above
 * any need and tables of at most 5·2^16 bytes, so the gateway must choose blake3 ([LM-CAP-3]) and
 * w = 16, whatever its period.
 */
export const DEFAULT_CAPS: Caps = { suites: [[3, 2 ** 30], [2, 2 ** 28], [1, 2 ** 28]], mem: 5 * 2 ** 16, wmax: 24, workers: 1 };

/** A job the suite wrote for a stream. */
export interface Job {
  data: Uint8Array;
  file: string;
}

/** A transaction the suite signed, with its licence and file for the stream command. */
export interface TxMade {
  tx: SignedTx;
  licence: Uint8Array;
  file: string;
}

/** One test of the gateway profile. */
export interface GatewayTest {
  id: string;
  title: string;
  /** the requirement IDs the test checks */
  covers: readonly RequirementId[];
  /** 'ledger': runs only when the target can read the gateway's ledger ({@link GatewayTarget.readLedger}) */
  needs?: 'ledger';
  run(ctx: GwCtx): Promise<void>;
}

/** The genuine RECEIPTs a suite device sent in one session ([LM-LEDGER-4]). */
export interface ReceiptsOf {
  device: string;
  /** the frames, as they went out (a repeat publishes one of them again) */
  frames: Uint8Array[];
  /** the gateway under test reported the stream delivered after them ([LM-DLV-7]): it verified one */
  reported: boolean;
}

/** Shared by the tests of one run. */
export interface RunShared {
  target: GatewayTarget;
  engine: MatrixEngine;
  /** chunk keys seen in the run ([LM-AEAD-5]) */
  keySeen: Map<string, string>;
  /** this run's directory: jobs, transactions, the gateway's state */
  dir: string;
  /** a prefix that makes this run's device ids unique on the broker */
  prefix: string;
  log: (line: string) => void;
  /** streams started so far (numbers the next one) */
  streams: number;
  /** devices made so far (numbers the next one) */
  devices: number;
  /** the longest a stream took from its start to its first OFFER so far (ms) */
  startup: number;
  /** the RECEIPTs the suite's devices sent in the run, by session id (hex), from tests that ended */
  receipts: Map<string, ReceiptsOf>;
}

export class GwCtx {
  readonly findings = new Findings();
  private readonly devices: SuiteDevice[] = [];
  private readonly runs: StreamRun[] = [];

  constructor(readonly shared: RunShared, readonly checks: Checks, readonly testId: string) {}

  get target(): GatewayTarget {
    return this.shared.target;
  }

  log(line: string): void {
    this.shared.log(`  ${this.testId}: ${line}`);
  }

  /** A new suite device with a fresh id and key, connected; `hello` false: it does not announce itself yet. */
  async device(o: { caps?: Caps; hello?: boolean } = {}): Promise<SuiteDevice> {
    const t = this.target;
    const d = await SuiteDevice.connect({
      url: t.url, fleet: t.fleet, id: `${this.shared.prefix}-${++this.shared.devices}`, caps: o.caps ?? DEFAULT_CAPS, engine: this.shared.engine, findings: this.findings,
      keySeen: this.shared.keySeen, gatewayKey: t.gatewayKey, protocolVersion: t.protocolVersion, brokerAuth: t.brokerAuth,
    });
    this.devices.push(d);
    if (o.hello !== false) await d.hello();
    return d;
  }

  /** A G-code job of about `bytes` bytes, written to a file. */
  job(bytes: number): Job {
    const data = sampleGcode(bytes);
    const file = join(this.shared.dir, `job-${bytes}-${toHex(digest(data)).slice(0, 8)}.gcode`);
    writeFileSync(file, data);
    return { data, file };
  }

  /**
   * A transaction for `dev` and `job`, signed by the operator (or `operator`), valid for an hour,
   * naming the gateway's key when the suite knows it; `over` changes fields, `corrupt` breaks the
   * signature after signing.
   */
  tx(dev: SuiteDevice, job: Job, over: Partial<TxRequest> & { operator?: IdentityKeyPair; corrupt?: boolean } = {}): TxMade {
    const now = Date.now();
    const op = over.operator ?? this.target.operator;
    const made = createTx({
      job: `conformance-${this.testId}`, plaintext: { digest: digest(job.data), size: job.data.length }, device: dev.id, devicePublic: dev.identity.publicKey,
      operatorSecret: op.secretKey, operatorPublic: op.publicKey, notBefore: now - 60_000, notAfter: now + 3_600_000, rate: 100_000_000, burst: 100_000_000,
      ...(this.target.gatewayKey ? { gatewayPublic: this.target.gatewayKey } : {}), ...over,
    });
    let tx = made.tx;
    if (over.corrupt) {
      const bytes = tx.bytes.slice();
      bytes[bytes.length - 1] = (bytes[bytes.length - 1] as number) ^ 0x01; // the signature's last byte
      tx = { ...tx, bytes, hash: digest(bytes) };
    }
    const file = join(this.shared.dir, `tx-${toHex(tx.hash).slice(0, 16)}.json`);
    writeFileSync(file, JSON.stringify({ tx: toHex(tx.bytes), licence: toHex(made.licence) }), { mode: 0o600 });
    return { tx, licence: made.licence, file };
  }

  /** The directory that holds the gateway's state for the whole run ({state}). */
  get stateDir(): string {
    const state = join(this.shared.dir, 'state');
    mkdirSync(state, { recursive: true });
    return state;
  }

  /** Starts a stream of `job` under `t` by the gateway under test, to `device` (default: the transaction's). */
  stream(job: Job, t: TxMade, device?: string): StreamRun {
    const n = ++this.shared.streams;
    const dir = join(this.shared.dir, `stream-${n}`);
    mkdirSync(dir, { recursive: true });
    const state = this.stateDir;
    const run = this.target.launch({ n, device: device ?? t.tx.body.device, file: job.file, txFile: t.file, tx: t.tx, licence: t.licence, dir, state, url: this.target.url, fleet: this.target.fleet });
    this.runs.push(run);
    return run;
  }

  /** Waits for the first OFFER to `dev` and records how long the gateway took to make it. */
  async firstOffer(dev: SuiteDevice, since: number, run: StreamRun, timeout = 20_000): Promise<NonNullable<SuiteDevice['offers'][number]>> {
    const offer = await until(() => dev.offers[0] ?? (run.exited ? 'ended' : undefined), timeout, `an OFFER to ${dev.id}`);
    if (offer === 'ended') throw new Error(`the stream command ended (${describeExit(run.exited)}) without offering to ${dev.id}: ${tail(run.output())}`);
    this.shared.startup = Math.max(this.shared.startup, offer.at - since);
    return offer;
  }

  /** How long to watch for something that must not happen once a stream started: twice the slowest start seen, at least 3 s. */
  get quietWindow(): number {
    return Math.max(3000, 2 * this.shared.startup);
  }

  /** Records a check of `id` (see {@link Checks.check}): FAIL with `msg`, which stops the test, unless `cond` holds. */
  check(id: RequirementId, cond: unknown, msg: string): void {
    this.checks.check(id, cond, msg);
  }

  /** The RECEIPTs the suite's devices sent in the run so far, this test's included, by session id (hex). */
  receipts(): Map<string, ReceiptsOf> {
    const all = new Map(this.shared.receipts);
    for (const d of this.devices) {
      for (const s of d.sessions.values()) if (s.receiptsSent.length) all.set(s.sidHex, { device: d.id, frames: [...s.receiptsSent], reported: s.reported });
    }
    return all;
  }

  /** Hands the devices' findings to the test's checks. */
  flush(): void {
    this.findings.flush(this.checks);
  }

  async close(): Promise<void> {
    for (const [sid, r] of this.receipts()) this.shared.receipts.set(sid, r);
    await Promise.all(this.runs.map((r) => r.stop()));
    await Promise.all(this.devices.map((d) => d.close()));
  }
}

export function describeExit(e: StreamExit | undefined): string {
  if (!e) return 'still running';
  return e.signal ? `signal ${e.signal}` : `exit code ${e.code}`;
}

/** The last lines of a process's output, for a message. */
export function tail(s: string, lines = 4): string {
  return s.trim().split('\n').slice(-lines).join(' | ');
}
