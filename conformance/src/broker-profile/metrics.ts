/**
 * @module broker-profile/metrics
 * What the broker's Prometheus endpoint (--metrics-url) shows: counts of connections, frames,
 * drops and alarms ([LM-BRK-5]), and the payloads its frame check drops counted by reason
 * ([LM-BRK-11]): the suite reads the counters, has device 1 send payloads that fail the check
 * for three different reasons, one, two and four of them, and reads the counters again.
 */
import { topics } from '@livematrix/spec';
import type { Checks } from '../checks.js';
import { R } from '../generated/requirements.js';
import { badPayloads } from './bad-frames.js';
import { type BrokerTest, frames, granted, must, verdict } from './common.js';
import { carries, publishSettled, suback } from './net.js';

/** One sample of Prometheus text: `name{labels} value`. */
export interface Sample {
  name: string;
  /** the label set as written, `{...}`, or '' */
  labels: string;
  value: number;
}

const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? ([-+0-9.eEIinfNa]+)( -?\d+)?$/;

/** Parses Prometheus text; `bad` holds the lines that are neither comments nor samples. */
export function parsePrometheus(text: string): { samples: Sample[]; bad: string[] } {
  const samples: Sample[] = [];
  const bad: string[] = [];
  for (const line of text.split('\n')) {
    if (!line.trim() || line.startsWith('#')) continue;
    const m = SAMPLE.exec(line);
    if (!m) bad.push(line);
    else samples.push({ name: m[1] as string, labels: m[2] ?? '', value: Number(m[3]) });
  }
  return { samples, bad };
}

/** GETs `url` and parses it; a failure to fetch is a failed check of `id`. */
async function scrape(checks: Checks, id: typeof R.LM_BRK_5 | typeof R.LM_BRK_11, url: string): Promise<{ samples: Sample[]; bad: string[] }> {
  return checks.expect(id, async () => {
    const r = await fetch(url);
    const text = await r.text();
    if (!r.ok) throw new Error(`HTTP ${r.status}`);
    return parsePrometheus(text);
  }, `GET ${url}`);
}

export const metrics: BrokerTest = {
  id: 'broker/metrics',
  title: 'metrics (with --metrics-url): Prometheus text with counts of connections, frames, drops and alarms',
  covers: [R.LM_BRK_5],
  runs: (t) => t.metricsUrl !== undefined,
  async run({ target: t, checks }) {
    const url = t.metricsUrl as string;
    const { samples, bad } = await scrape(checks, R.LM_BRK_5, url);
    verdict(checks, R.LM_BRK_5, samples.length > 0 && bad.length === 0, samples.length === 0 ? `${url} has no samples` : `${url} is not Prometheus text: ${bad.slice(0, 3).join(' | ')}`);
    const names = new Set(samples.map((s) => s.name));
    for (const [what, re] of [['connections', /conn|client/i], ['frames', /frame/i], ['drops', /drop|denied|refused/i], ['alarms', /alarm/i]] as const) {
      verdict(checks, R.LM_BRK_5, [...names].some((n) => re.test(n)), `${url} has no metric counting ${what}`);
    }
  },
};

/** The payloads of the count test, each failing the frame check for a reason of its own ([LM-MQTT-4]), and how many of each are sent. */
const DROPS = [
  { n: 1, pick: (id: string, what: string) => id === R.LM_CBOR_2 && /not well-formed/.test(what), reason: 'not well-formed CBOR' },
  { n: 2, pick: (id: string) => id === R.LM_ROLE_2, reason: 'version 2' },
  { n: 4, pick: (id: string) => id === R.LM_MQTT_4, reason: 'a frame type not allowed on out (END)' },
] as const;

export const dropCounts: BrokerTest = {
  id: 'broker/drop-counts',
  title: 'drops counted by reason (with --metrics-url): 1, 2 and 4 payloads on device 1\'s out that fail the frame check for three reasons (not CBOR, version, type for the topic) grow three drop counters of one metric by 1, 2 and 4',
  covers: [R.LM_BRK_11],
  runs: (t) => t.metricsUrl !== undefined,
  async run({ target: t, conns, checks, operator }) {
    const url = t.metricsUrl as string;
    const out = topics.deviceOut(t.fleet, t.device1.id);
    const gw = await conns.as(t.gateway);
    const code = await suback(gw, out);
    if (!granted(code)) throw new Error(`gateway ${t.gateway.id} could not subscribe to ${out}, which it may read`);
    const bad = badPayloads(t.device1.id, operator);
    const sends = DROPS.map((d) => {
      const b = bad.find((x) => d.pick(x.id, x.what));
      if (!b) throw new Error(`no payload for ${d.reason}`);
      return { ...d, b };
    });
    const before = await scrape(checks, R.LM_BRK_11, url);
    let d1 = await conns.as(t.device1);
    for (const s of sends) {
      for (let i = 0; i < s.n; i++) if ((await publishSettled(d1, out, s.b.bytes)) === 'closed') d1 = await conns.as(t.device1);
    }
    // once a valid frame sent after them is forwarded, the broker has checked them all
    const last = frames.bye(t.device1.id);
    if ((await publishSettled(d1, out, last.bytes)) !== 'acked') throw new Error(`the broker closed ${d1.label} for a valid BYE on its out topic`);
    await gw.waitFor((m) => carries(m.payload, last.sid), 'the valid frame sent after the payloads');
    const leaked = sends.filter((s) => gw.received.some((m) => carries(m.payload, s.b.sid)));
    must(checks, R.LM_BRK_11, leaked.length === 0, `forwarded on ${out}, so not dropped: ${leaked.map((s) => s.reason).join('; ')} (the frame check, [LM-BRK-3], comes first)`);
    const after = await scrape(checks, R.LM_BRK_11, url);
    const was = new Map(before.samples.map((s) => [s.name + s.labels, s.value]));
    const grown = after.samples
      .filter((s) => /drop/i.test(s.name) && s.labels !== '')
      .map((s) => ({ series: s.name + s.labels, name: s.name, delta: s.value - (was.get(s.name + s.labels) ?? 0) }))
      .filter((g) => g.delta > 0);
    const want = DROPS.map((d) => d.n).join(',');
    const byReason = [...new Set(grown.map((g) => g.name))].some((name) => grown.filter((g) => g.name === name).map((g) => g.delta).sort((a, b) => a - b).join(',') === want);
    const sent = sends.map((s) => `${s.n} × ${s.reason}`).join(', ');
    verdict(checks, R.LM_BRK_11, byReason, grown.length === 0
      ? `no labelled drop counter at ${url} grew after ${sent} were dropped`
      : `after ${sent} were dropped, no drop metric at ${url} grew by ${want} in three series (one per reason); grown: ${grown.map((g) => `${g.series} +${g.delta}`).join(', ')}`);
  },
};
