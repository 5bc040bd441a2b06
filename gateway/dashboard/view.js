// @ts-check
/**
 * The dashboard's building blocks (app.js renders with them): elements whose strings become text
 * nodes only, never HTML; relative times, sizes, badges and progress bars; a device's telemetry
 * sparklines, and what its signed status says (SPEC §10.2): its state, how long ago it reported,
 * why it is paused or in error, and its readings in their units.
 *
 * @typedef {import('../src/fleet/api.js').DeviceView} DeviceView
 * @typedef {import('../src/fleet/api.js').Reading} Reading
 * @typedef {Node | string | null | undefined | false} Kid
 */

/**
 * An element with attributes and children; strings become text nodes (never parsed as HTML).
 * @param {string} tag @param {Record<string, unknown>} [attrs] @param {...Kid} kids
 */
export function h(tag, attrs = {}, ...kids) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) if (v !== null && v !== undefined && v !== false) el.setAttribute(k, String(v));
  for (const kid of kids) if (kid !== null && kid !== undefined && kid !== false) el.append(kid);
  return el;
}

/** @param {string} tag @param {Record<string, string | number>} attrs */
function svg(tag, attrs) {
  const el = document.createElementNS('http://www.w3.org/2000/svg', tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  return el;
}

/** @param {number | null} ts */
export function ago(ts) {
  if (!ts) return 'never';
  const s = Math.max(0, Math.round((Date.now() - ts) / 1000)), m = Math.floor(s / 60), hr = Math.floor(m / 60);
  if (s < 5) return 'just now';
  return s < 60 ? `${s} s ago` : m < 60 ? `${m} min ago` : hr < 48 ? `${hr} h ago` : `${Math.floor(hr / 24)} d ago`;
}

/** A relative time, kept fresh by the ticker; the exact time is in its tooltip. @param {number | null} ts */
export const timeEl = (ts) =>
  h('time', { 'data-ts': ts ?? 0, datetime: ts ? new Date(ts).toISOString() : null, title: ts ? new Date(ts).toLocaleString() : null }, ago(ts));

/** @param {number} n */
export function bytes(n) {
  const i = n >= 1024 ? Math.min(3, Math.floor(Math.log2(n) / 10)) : 0;
  return i ? `${(n / 1024 ** i).toFixed(1)} ${['', 'KiB', 'MiB', 'GiB'][i]}` : `${n} B`;
}

/** @param {string} text @param {string} [testid] */
export const badge = (text, testid) => h('span', { class: `badge s-${text}`, 'data-testid': testid }, text);
export const dash = () => h('span', { class: 'muted' }, '—');

/** @param {number} progress @param {number} size @param {string} st @param {string} [testid] */
export function progressBar(progress, size, st, testid) {
  const pct = size > 0 ? Math.min(100, (progress / size) * 100) : st === 'SUCCEEDED' ? 100 : 0;
  const fill = h('span', { class: 'fill' });
  fill.style.width = `${pct}%`;
  return h('div', {
    class: `progress s-${st}`, role: 'progressbar', 'aria-label': 'Progress', 'aria-valuemin': 0, 'aria-valuemax': 100,
    'aria-valuenow': Math.floor(pct), title: `${bytes(progress)} of ${bytes(size)}`, 'data-testid': testid,
  }, h('span', { class: 'bar' }, fill), h('span', { class: 'pct' }, `${Math.floor(pct)}%`));
}

/** A sparkline of one milli-degree telemetry field, with its latest value in °C. @param {DeviceView} d @param {string} field */
export function temperature(d, field) {
  const vals = d.history.map((s) => s.values[field]).filter((v) => Number.isFinite(v)).map((v) => v / 1000);
  const now = d.telemetry?.[field];
  const last = typeof now === 'number' && Number.isFinite(now) ? now / 1000 : vals.at(-1);
  if (last === undefined) return dash();
  const W = 80, H = 24, lo = Math.min(...vals), hi = Math.max(...vals);
  const line = svg('svg', { class: `spark ${field}`, viewBox: `0 0 ${W} ${H}`, width: W, height: H, 'aria-hidden': 'true' });
  if (vals.length > 1) {
    const y = (/** @type {number} */ v) => (hi === lo ? H / 2 : H - 2 - ((v - lo) / (hi - lo)) * (H - 4));
    const points = vals.map((v, i) => `${((i / (vals.length - 1)) * W).toFixed(1)},${y(v).toFixed(1)}`).join(' ');
    line.append(svg('polyline', { points }));
  }
  return h('span', { class: 'temp' }, line, h('span', { class: 'temp-val' }, `${last.toFixed(1)} °C`));
}

/**
 * What the machine says of itself: the state of its latest signed status (SPEC §10.2), `offline`
 * once its Last Will came (a crashed device leaves its last status retained), how long ago it
 * reported (by the device's clock, or when the service took it if that is earlier) and why it is
 * paused or in error.
 * @param {DeviceView} d
 */
export function machine(d) {
  const st = d.status;
  if (!st) return dash();
  const shown = d.online ? st.state : 'offline';
  const at = Math.min(st.time, st.received);
  const age = timeEl(at);
  age.setAttribute('data-testid', `device-status-age-${d.id}`);
  age.title = `reported ${new Date(st.time).toLocaleString()} by the device's clock, received ${new Date(st.received).toLocaleString()} (boot ${st.bd}, status ${st.seq})`;
  const b = badge(shown, `device-status-${d.id}`);
  if (shown !== st.state) b.title = `its last status said ${st.state}`;
  return h('div', { class: 'machine' }, h('span', { class: 'machine-head' }, b, age),
    st.detail && h('span', { class: 'reason', 'data-testid': `device-status-detail-${d.id}` }, st.detail));
}

/**
 * One reading as shown: `_mC` integers in °C, `_ppm` in %, anything else as it is.
 * @param {string} k @param {Reading} v @returns {[string, string]}
 */
function reading(k, v) {
  if (typeof v === 'number' && /_mC$/.test(k)) return [k.slice(0, -3), `${(v / 1000).toFixed(1)} °C`];
  if (typeof v === 'number' && /_ppm$/.test(k)) return [k.slice(0, -4), `${(v / 10000).toFixed(1)} %`];
  return [k, typeof v === 'string' ? v : JSON.stringify(v)];
}

/** The readings of a device's latest signed status. @param {DeviceView} d */
export function readings(d) {
  const all = Object.entries(d.status?.readings ?? {}).sort(([a], [b]) => a.localeCompare(b));
  if (!all.length) return dash();
  return h('ul', { class: 'readings', 'data-testid': `device-readings-${d.id}` }, ...all.map(([k, v]) => {
    const [label, shown] = reading(k, v);
    return h('li', { title: `${k} = ${JSON.stringify(v)}`, 'data-reading': k }, h('span', { class: 'rk' }, `${label}:`), ' ', h('span', { class: 'rv' }, shown));
  }));
}
