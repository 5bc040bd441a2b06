/**
 * @module fleet/client
 * Following a fleet service's live events from Node or a browser-like runtime with `fetch`:
 * GET /api/events read as server-sent events ({ event, data } with data parsed as JSON), for
 * operators' scripts, the benchmark and the tests.
 *
 * @example
 * for await (const ev of fleetEvents('http://127.0.0.1:8080/', token, ctl.signal)) if (ev.event === 'job') console.log(ev.data);
 */

/** One event of GET /api/events: `snapshot`, `device`, `job`, `alarm`, `ledger` or `files`. */
export interface FleetEvent {
  event: string;
  data: unknown;
}

/** Reads the service's events until `signal` aborts (then it ends) or the stream fails or ends (then it throws). */
export async function* fleetEvents(base: string, token: string, signal?: AbortSignal): AsyncGenerator<FleetEvent> {
  const r = await fetch(new URL('/api/events', base), { headers: { authorization: `Bearer ${token}` }, ...(signal ? { signal } : {}) });
  if (!r.ok || !r.body) throw new Error(`GET /api/events: HTTP ${r.status}`);
  const reader = r.body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = '';
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) throw new Error('the event stream ended');
      buf += value;
      let i: number;
      while ((i = buf.indexOf('\n\n')) >= 0) {
        const frame = buf.slice(0, i);
        buf = buf.slice(i + 2);
        const event = /^event: (.*)$/m.exec(frame)?.[1];
        const data = /^data: (.*)$/m.exec(frame)?.[1];
        if (event && data !== undefined) yield { event, data: JSON.parse(data) as unknown };
      }
    }
  } catch (e) {
    if (signal?.aborted) return;
    throw e;
  } finally {
    reader.releaseLock();
  }
}
