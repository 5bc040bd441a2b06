/**
 * @module bench/fleet-devices
 * The device farm of bench:fleet: one process that runs many `Device` instances of the device
 * SDK, as `livematrix device` would one each, but sharing one hashing engine (one worker) as
 * printers sharing this machine's cores. Started by bench/fleet.ts with an IPC channel: it gets
 * one {@link FarmStart} message, connects its devices, answers {@link FarmReady}; each device
 * then consumes every stream it is given at a printer's pace and reports its first consumed byte
 * and the SHA-256 of all it consumed ({@link FarmFirst}, {@link FarmDone}, {@link FarmFailed}).
 * {@link FarmStop} (or the channel closing) stops the devices and ends the process.
 */
import { Device, type IncomingStream } from '@livematrix/device-sdk';
import { type Caps, FRAME_TYPE_NAMES, type SuiteId, errorMessage, fromHex, toHex } from '@livematrix/spec';
import { MatrixEngine } from '@livematrix/spec/engine';
import { readIdentityFile } from '@livematrix/spec/keyfile';
import { consume } from '../src/progress.js';

/** One device of the farm: its id, identity file and state directory. */
export interface FarmDevice {
  id: string;
  identity: string;
  state: string;
}

/** bench -> farm: what to run. */
export interface FarmStart {
  type: 'start';
  url: string;
  fleet: string;
  /** the operator's public key (hex) whose transactions the devices honour */
  operator: string;
  devices: FarmDevice[];
  /** bytes per second each device consumes, at most */
  rate: number;
  /** each device's receive window in plaintext bytes ([LM-DLV-5]); undefined: the SDK's default */
  window: number | undefined;
  /** the largest w the devices report */
  wmax: number;
}

/** bench -> farm: stop the devices and exit. */
export interface FarmStop {
  type: 'stop';
}

export type ToFarm = FarmStart | FarmStop;

/** farm -> bench: every device is connected and announced (HELLO published). */
export interface FarmReady {
  type: 'ready';
  devices: number;
  caps: Caps;
}

/** farm -> bench: a device's consumer took the first bytes of a stream (Unix ms). */
export interface FarmFirst {
  type: 'first';
  id: string;
  job: string;
  time: number;
}

/** farm -> bench: a device consumed a whole stream. */
export interface FarmDone {
  type: 'done';
  id: string;
  job: string;
  bytes: number;
  /** SHA-256 (hex) of every byte the consumer took */
  sha256: string;
  time: number;
}

/** farm -> bench: a device's stream failed, or the device could not start. */
export interface FarmFailed {
  type: 'failed';
  id: string;
  error: string;
}

export type FromFarm = FarmReady | FarmFirst | FarmDone | FarmFailed;

const send = (m: FromFarm): void => {
  process.send?.(m);
};

/** Consumes each stream the device is given until the farm stops. */
async function serve(dev: Device, id: string, rate: number, stopping: AbortSignal): Promise<void> {
  const stopped = new Promise<undefined>((r) => stopping.addEventListener('abort', () => r(undefined), { once: true }));
  while (!stopping.aborted) {
    const s: IncomingStream | undefined = await Promise.race([dev.nextStream(), stopped]);
    if (!s) return;
    let n = 0;
    try {
      const d = await consume(s, rate, () => undefined, (taken) => {
        if (n === 0 && taken > 0) send({ type: 'first', id, job: s.job, time: Date.now() });
        n = taken;
      }, stopping);
      send({ type: 'done', id, job: s.job, bytes: n, sha256: toHex(d), time: Date.now() });
    } catch (e) {
      if (stopping.aborted) return;
      send({ type: 'failed', id, error: `${s.job}: ${errorMessage(e)} after ${n} bytes` });
    }
  }
}

async function run(cfg: FarmStart): Promise<void> {
  // one controller per device: a signal shared by hundreds of consumers would collect hundreds of listeners
  const controllers: AbortController[] = [];
  const engine = new MatrixEngine({ workers: 1 });
  await engine.start();
  // the engine's table build rate, shared by every device of this process: each reports its share ([LM-CAP-1])
  const rates = await engine.buildRate(undefined, Math.min(16, cfg.wmax));
  const share = Math.max(1, cfg.devices.length);
  const caps: Caps = { suites: [...rates.entries()].map(([s, r]) => [s, Math.floor(r / share)] as [SuiteId, number]), mem: 64 * 2 ** 20, wmax: cfg.wmax, workers: 1 };
  const operator = fromHex(cfg.operator);
  const devices: Device[] = [];
  const loops: Promise<void>[] = [];
  let stopped: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopped ??= (async () => {
      for (const c of controllers) c.abort();
      await Promise.allSettled(devices.map((d) => d.stop()));
      await Promise.allSettled(loops);
      await engine.stop();
    })();
    return stopped;
  };
  process.on('message', (m: ToFarm) => {
    if (m.type === 'stop') void stop().then(() => process.exit(0));
  });
  process.on('disconnect', () => void stop().then(() => process.exit(0)));
  // connect in batches: a broker takes many CONNECTs at once, but a burst of hundreds only tests its backlog
  const BATCH = 16;
  for (let i = 0; i < cfg.devices.length; i += BATCH) {
    await Promise.all(cfg.devices.slice(i, i + BATCH).map(async (d) => {
      try {
        const identity = readIdentityFile(d.identity);
        const dev = await Device.start({
          url: cfg.url, fleet: cfg.fleet, id: d.id, identity, trustedOperators: [operator], brokerAuth: 'token', stateDir: d.state, caps,
          ...(cfg.window !== undefined ? { window: cfg.window } : {}),
        }, engine);
        // refusals are the device's to log, not failures: the bench reports them as notes
        dev.on('reject', (r) => process.stderr.write(`${new Date().toISOString()} ${d.id}: refused ${FRAME_TYPE_NAMES[r.type] ?? r.type} (${r.reason}): ${r.detail}\n`));
        dev.link.onError((e) => process.stderr.write(`${d.id}: broker connection: ${errorMessage(e)}\n`));
        const ctl = new AbortController();
        controllers.push(ctl);
        devices.push(dev);
        loops.push(serve(dev, d.id, cfg.rate, ctl.signal));
      } catch (e) {
        send({ type: 'failed', id: d.id, error: `start: ${errorMessage(e)}` });
      }
    }));
  }
  send({ type: 'ready', devices: devices.length, caps });
}

process.once('message', (m: ToFarm) => {
  if (m.type !== 'start') return;
  run(m).catch((e: unknown) => {
    process.stderr.write(`fleet-devices: ${e instanceof Error ? e.stack ?? e.message : String(e)}\n`);
    process.exit(1);
  });
});
