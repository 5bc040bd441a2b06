// @ts-check
/**
 * The live dashboard of the fleet service (`livematrix serve`): no build step, no libraries. One state
 * object, one SSE client (fetch + stream reader, so the bearer token can be sent), one render function
 * per section. Strings from the service reach the page as text nodes only, never as HTML.
 *
 * @typedef {import('../src/fleet/api.js').DeviceView} DeviceView
 * @typedef {import('../src/fleet/api.js').JobView} JobView
 * @typedef {import('../src/fleet/api.js').JobDetail} JobDetail
 * @typedef {import('../src/fleet/api.js').SubmitJob} SubmitJob
 * @typedef {import('../src/fleet/api.js').FileView} FileView
 * @typedef {import('../src/fleet/api.js').AlarmView} AlarmView
 * @typedef {import('../src/fleet/api.js').LedgerView} LedgerView
 * @typedef {import('../src/fleet/api.js').Snapshot} Snapshot
 * @typedef {Node | string | null | undefined | false} Kid
 */

import { ago, badge, bytes, dash, h, machine, progressBar, readings, temperature, timeEl } from './view.js';

const TOKEN_KEY = 'livematrix.fleet.token';
/** Job actions, their labels and the states that allow them (the service has the last word: 409). @type {[string, string, string[]][]} */
const JOB_ACTIONS = [['pause', 'Pause', ['QUEUED', 'IN_PROGRESS']], ['resume', 'Resume', ['PAUSED']], ['cancel', 'Cancel', ['QUEUED', 'IN_PROGRESS', 'PAUSED']]];
const KEEP = 200, SHOW_JOBS = 200, SHOW_LEDGER = 50; // alarms and ledger records kept; rows shown

const state = {
  token: '', id: '', canSign: false,
  /** @type {Map<string, DeviceView>} */ devices: new Map(),
  /** @type {Map<string, JobView>} */ jobs: new Map(),
  /** @type {Map<number, AlarmView>} */ alarms: new Map(),
  /** @type {Map<number, LedgerView>} */ ledger: new Map(),
  /** @type {FileView[]} */ files: [],
  /** @type {JobDetail | null} */ detail: null,
};

// ---------------------------------------------------------------- DOM helpers

/** @param {string} id @returns {any} */
const $ = (id) => document.getElementById(id);

/** A table row; each cell is labelled with its column's heading (the cards layout of narrow screens shows it). @param {HTMLTableElement} table @param {Record<string, unknown>} attrs @param {Kid[]} cells */
function row(table, attrs, cells) {
  const labels = [...(table.tHead?.rows[0]?.cells ?? [])].map((c) => c.textContent);
  return h('tr', attrs, ...cells.map((c, i) => h('td', { 'data-label': labels[i] }, c)));
}

const sigs = new WeakMap();
/**
 * Reconciles the children of `parent` with `items` by key: a child is rebuilt only when its item
 * changed, so buttons and focus survive the many progress and telemetry updates.
 * @template T @param {Element} parent @param {T[]} items @param {(t: T) => string} key @param {(t: T) => Element} build
 */
function sync(parent, items, key, build) {
  const old = new Map([...parent.children].map((c) => [c.getAttribute('data-key'), c]));
  items.forEach((item, i) => {
    const k = key(item), sig = JSON.stringify(item);
    let el = old.get(k);
    old.delete(k);
    if (!el || sigs.get(el) !== sig) {
      const fresh = build(item);
      fresh.setAttribute('data-key', k);
      sigs.set(fresh, sig);
      if (el) el.replaceWith(fresh);
      el = fresh;
    }
    if (parent.children[i] !== el) parent.insertBefore(el, parent.children[i] ?? null);
  });
  for (const el of old.values()) el.remove();
}

// ---------------------------------------------------------------- API

/**
 * Calls the service; JSON in and out (a Blob body goes as application/octet-stream).
 * A 401 signs out and shows the sign-in form with the service's message.
 * @param {string} method @param {string} path @param {unknown} [body] @returns {Promise<any>}
 */
async function api(method, path, body) {
  /** @type {Record<string, string>} */
  const headers = { Authorization: `Bearer ${state.token}`, Accept: 'application/json' };
  /** @type {BodyInit | undefined} */
  let payload;
  if (body instanceof Blob) (headers['Content-Type'] = 'application/octet-stream'), (payload = body);
  else if (body !== undefined) (headers['Content-Type'] = 'application/json'), (payload = JSON.stringify(body));
  const res = await fetch(path, { method, headers, body: payload, cache: 'no-store' });
  const text = await res.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { /* not JSON: keep the status */ }
  if (res.ok) return data;
  const message = data?.message ? `${data.message}${data.error ? ` (${data.error})` : ''}` : `${res.status} ${res.statusText}`;
  if (res.status === 401) signOut(message);
  throw Object.assign(new Error(message), { status: res.status });
}

/** Runs an action; its failure shows in the message line (a 401 in the sign-in form). @param {() => Promise<void>} fn */
async function act(fn) {
  try { await fn(); } catch (e) {
    if (/** @type {any} */ (e)?.status === 401) return; // the sign-in form says it
    $('message-text').textContent = e instanceof Error ? e.message : String(e);
    $('message-bar').hidden = false;
  }
}

// ---------------------------------------------------------------- state updates

/** @param {Snapshot} s */
function applySnapshot(s) {
  state.id = s.id;
  state.canSign = s.canSign;
  state.files = s.files;
  state.devices = new Map(s.devices.map((d) => [d.id, d]));
  state.jobs = new Map(s.jobs.map((j) => [j.id, j]));
  state.alarms = new Map(s.alarms.map((a) => [a.seq, a]));
  state.ledger = new Map(s.ledger.map((l) => [l.seq, l]));
  dirty('header', 'fleet', 'submit', 'jobs', 'alarms', 'ledger');
}

/** @param {JobView} j */
function upsertJob(j) {
  const d = state.detail;
  state.jobs.set(j.id, j);
  if (d?.id === j.id) {
    if (d.state !== j.state) act(() => loadDetail(j.id)); // a transition: fetch its event
    state.detail = { ...d, ...j };
    dirty('detail');
  }
  dirty('jobs');
}

/** @template V @param {Map<number, V>} map @param {number} seq @param {V} v */
function keep(map, seq, v) {
  map.set(seq, v);
  if (map.size > KEEP) map.delete(Math.min(...map.keys()));
}

/** @param {string} type @param {string} text */
function dispatch(type, text) {
  let v;
  try { v = JSON.parse(text); } catch { return; }
  if (type === 'snapshot') applySnapshot(v), flush(), (sse.delay = 1000), setConn('live', 'live'); // live: the page shows it all
  else if (type === 'device') { state.devices.set(v.id, v); dirty('fleet', 'submit'); }
  else if (type === 'job') upsertJob(v);
  else if (type === 'alarm') { keep(state.alarms, v.seq, v); dirty('alarms'); }
  else if (type === 'ledger') { keep(state.ledger, v.seq, v); dirty('ledger'); }
}

// ---------------------------------------------------------------- SSE client

const sse = { ctrl: /** @type {AbortController | null} */ (null), delay: 1000, timer: 0 };

/** @param {string} st @param {string} text @param {string} [why] */
function setConn(st, text, why = '') {
  Object.assign($('conn'), { textContent: text, title: why }).dataset.state = st;
}

/** Opens the event stream; when it ends or fails, tries again after 1 s, 2 s, ... 15 s. */
function connect() {
  clearTimeout(sse.timer);
  sse.ctrl?.abort();
  const ctrl = (sse.ctrl = new AbortController());
  if (!$('conn').textContent.startsWith('reconnecting')) setConn('connecting', 'connecting...');
  stream(ctrl).then(() => 'the stream ended', (e) => String(e?.message ?? e)).then((why) => {
    if (sse.ctrl !== ctrl || !state.token) return; // superseded, or signed out
    ctrl.abort();
    setConn('down', 'reconnecting...', `${why}; retrying in ${sse.delay / 1000} s`);
    sse.timer = window.setTimeout(connect, sse.delay);
    sse.delay = Math.min(sse.delay * 2, 15000);
  });
}

/** Reads one `text/event-stream` response frame by frame. @param {AbortController} ctrl */
async function stream(ctrl) {
  const res = await fetch('/api/events', {
    headers: { Authorization: `Bearer ${state.token}`, Accept: 'text/event-stream' }, signal: ctrl.signal, cache: 'no-store',
  });
  if (res.status === 401) return signOut((await res.json().catch(() => null))?.message || 'The service refused this token.');
  if (!res.ok || !res.body) throw new Error(`HTTP ${res.status}`);
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = '', event = '', /** @type {string[]} */ data = [], watchdog = 0;
  // the service sends a ping comment every 15 s: a silent stream is a dead one
  const arm = () => { clearTimeout(watchdog); watchdog = window.setTimeout(() => ctrl.abort(), 45000); };
  try {
    for (arm(); ;) {
      const { value, done } = await reader.read();
      if (done) return;
      arm();
      buf += value;
      const end = buf.endsWith('\r') ? buf.length - 1 : buf.length; // a CR may be half of a CRLF
      const lines = buf.slice(0, end).split(/\r\n|\r|\n/);
      buf = lines.pop() + buf.slice(end);
      for (const line of lines) {
        if (line === '') {
          if (data.length) dispatch(event || 'message', data.join('\n'));
          (event = ''), (data = []);
        } else if (!line.startsWith(':')) {
          const i = line.indexOf(':');
          const field = i < 0 ? line : line.slice(0, i);
          const val = i < 0 ? '' : line.slice(line[i + 1] === ' ' ? i + 2 : i + 1);
          if (field === 'event') event = val;
          else if (field === 'data') data.push(val);
        }
      }
    }
  } finally {
    clearTimeout(watchdog);
  }
}

// ---------------------------------------------------------------- rendering

/** @type {Record<string, () => void>} */
const renderers = { header: renderHeader, fleet: renderFleet, submit: renderSubmit, jobs: renderJobs, alarms: renderAlarms, ledger: renderLedger, detail: renderDetail };
const pending = new Set();
let frame = 0;
/** Marks sections for the next frame's render (many events, one render). @param {...string} sections */
function dirty(...sections) {
  for (const s of sections) pending.add(s);
  frame ||= requestAnimationFrame(flush);
}
function flush() {
  cancelAnimationFrame(frame), (frame = 0);
  const todo = [...pending];
  pending.clear();
  for (const s of todo) renderers[s]();
}

function renderHeader() {
  $('service-id').textContent = state.id;
  document.title = state.id ? `Live Matrix fleet · ${state.id}` : 'Live Matrix fleet';
}

function renderFleet() {
  const devices = [...state.devices.values()].sort((a, b) => a.id.localeCompare(b.id));
  const table = $('fleet-table');
  sync(table.tBodies[0], devices, (d) => d.id, (d) => row(table, { 'data-testid': `device-row-${d.id}` }, [
    h('span', { class: 'device' }, h('span', { class: `dot ${d.online ? 'on' : 'off'}`, role: 'img', 'aria-label': d.online ? 'online' : 'offline', title: d.online ? 'online' : 'offline' }), h('span', { class: 'mono' }, d.id)),
    badge(d.state, `device-state-${d.id}`),
    machine(d),
    d.job ? h('div', { class: 'job-cell' }, h('span', { class: 'name', title: d.job.name }, d.job.name), progressBar(d.job.progress, d.job.size, d.job.state)) : dash(),
    temperature(d, 'nozzle_mC'),
    temperature(d, 'bed_mC'),
    readings(d),
    timeEl(d.lastSeen),
    d.quarantined && h('div', { class: 'quarantine' }, h('span', { class: 'reason' }, d.quarantineReason || 'quarantined'),
      h('button', { class: 'btn small', type: 'button', 'data-action': 'clear', 'data-id': d.id }, 'Clear quarantine')),
  ]));
  $('fleet-empty').hidden = devices.length > 0;
  $('fleet-count').textContent = devices.length ? `${devices.filter((d) => d.online).length} of ${devices.length} online` : '';
}

/** Refills a select only when its options changed, keeping the choice. @param {HTMLSelectElement} sel @param {[string, string][]} options @param {string} none */
function fillSelect(sel, options, none) {
  const sig = JSON.stringify(options);
  if (sel.dataset.sig === sig) return;
  const chosen = sel.value;
  sel.replaceChildren(...(options.length ? options.map(([v, label]) => h('option', { value: v }, label)) : [h('option', { value: '' }, none)]));
  if (options.some(([v]) => v === chosen)) sel.value = chosen;
  sel.dataset.sig = sig;
}

function renderSubmit() {
  const devices = [...state.devices.values()].sort((a, b) => a.id.localeCompare(b.id));
  fillSelect($('submit-device'), devices.map((d) => [d.id, d.quarantined ? `${d.id} (quarantined)` : d.id]), 'No devices');
  fillSelect($('submit-file'), state.files.map((f) => [f.name, `${f.name} (${bytes(f.size)})`]), 'No files: upload one below');
  $('submit-fields').disabled = !state.canSign;
  $('submit-note').hidden = state.canSign;
}

function renderJobs() {
  const jobs = [...state.jobs.values()].sort((a, b) => b.created - a.created || b.id.localeCompare(a.id));
  const table = $('job-table');
  sync(table.tBodies[0], jobs.slice(0, SHOW_JOBS), (j) => j.id, (j) => row(table, { 'data-testid': `job-row-${j.id}` }, [
    h('button', { class: 'link mono', type: 'button', 'data-action': 'detail', 'data-id': j.id, title: 'Show the job’s events' }, j.id),
    h('span', { class: 'mono' }, j.device),
    h('span', { class: 'name', title: j.name }, j.name),
    badge(j.state, `job-state-${j.id}`),
    progressBar(j.progress, j.size, j.state, `job-progress-${j.id}`),
    `${j.attempts}/${j.maxAttempts}`,
    j.reason && h('span', { class: 'reason' }, j.reason),
    timeEl(j.updated),
    actionButtons(j),
  ]));
  $('jobs-empty').hidden = jobs.length > 0;
  const open = jobs.filter((j) => ['QUEUED', 'IN_PROGRESS', 'PAUSED'].includes(j.state)).length;
  $('jobs-count').textContent = jobs.length ? `${open} open · ${jobs.length} in all` : '';
}

/** @param {JobView} j */
function actionButtons(j) {
  const allowed = JOB_ACTIONS.filter(([, , states]) => states.includes(j.state));
  return allowed.length > 0 && h('span', { class: 'actions' }, ...allowed.map(([a, label]) =>
    h('button', { class: `btn small${a === 'cancel' ? ' danger' : ''}`, type: 'button', 'data-action': a, 'data-id': j.id, title: `${label} job ${j.id}` }, label)));
}

function renderAlarms() {
  const alarms = [...state.alarms.values()].sort((a, b) => b.seq - a.seq);
  sync($('alarm-list'), alarms, (a) => String(a.seq), (a) => h('li', { class: 'alarm' },
    h('div', { class: 'alarm-head' }, badge(a.reason), h('span', { class: 'mono' }, a.device), timeEl(a.time)),
    a.detail && h('div', { class: 'detail' }, a.detail),
    h('div', { class: 'muted small' }, `code ${a.code} · ${a.origin}`, a.job ? ` · job ${a.job}` : '')));
  $('alarms-empty').hidden = alarms.length > 0;
  $('alarms-count').textContent = alarms.length ? String(alarms.length) : '';
}

function renderLedger() {
  const records = [...state.ledger.values()].sort((a, b) => b.seq - a.seq).slice(0, SHOW_LEDGER);
  const table = $('ledger-table');
  sync(table.tBodies[0], records, (l) => String(l.seq), (l) => row(table, {}, [
    String(l.seq), h('span', { class: 'mono hash' }, l.hash), h('span', { class: 'mono' }, l.device),
    h('span', { class: 'mono' }, l.job), h('span', { title: `${l.bytes} bytes` }, bytes(l.bytes)), timeEl(l.time),
  ]));
  $('ledger-empty').hidden = records.length > 0;
  $('ledger-count').textContent = records.length ? `last ${records.length}` : '';
}

function renderDetail() {
  const d = state.detail;
  if (!d) return;
  const at = (/** @type {number | null} */ ts) => (ts ? new Date(ts).toLocaleString() : '—');
  $('detail-title').textContent = `Job ${d.id}`;
  /** @type {[string, Kid][]} */
  const facts = [
    ['State', badge(d.state)], ['Device', d.device], ['Name', d.name], ['Kind', d.kind],
    ['Progress', progressBar(d.progress, d.size, d.state)], ['Size', bytes(d.size)],
    ['Attempts', `${d.attempts}/${d.maxAttempts}`], ['Reason', d.reason || '—'],
    ['Transaction', h('span', { class: 'mono hash' }, d.txh)], ['Lease owner', d.leaseOwner ?? '—'],
    ['Created', at(d.created)], ['Started', at(d.startedAt)], ['Updated', at(d.updated)],
    ['Ledger seq', d.ledgerSeq === null ? '—' : String(d.ledgerSeq)],
  ];
  $('detail-facts').replaceChildren(...facts.flatMap(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]));
  const table = $('detail-events');
  table.tBodies[0].replaceChildren(...d.events.map((e) => row(table, {}, [
    h('span', { class: 'transition' }, e.from ? badge(e.from) : h('span', { class: 'muted' }, 'new'), ' → ', badge(e.to)),
    e.reason, h('span', { title: new Date(e.time).toISOString() }, at(e.time)), h('span', { class: 'mono' }, e.by),
  ])));
}

/** @param {string} id */
async function loadDetail(id) {
  state.detail = await api('GET', `/api/jobs/${encodeURIComponent(id)}`);
  renderDetail();
}

// ---------------------------------------------------------------- sign-in and wiring

/** @param {boolean} signedIn */
function showApp(signedIn) {
  $('app').hidden = $('signout').hidden = !signedIn;
  $('signin').hidden = signedIn;
  $('message-bar').hidden = true;
}

/** Forgets the token, stops the stream and shows the sign-in form. @param {string} [message] */
function signOut(message) {
  state.token = '';
  localStorage.removeItem(TOKEN_KEY);
  clearTimeout(sse.timer);
  sse.ctrl?.abort(); // its loop sees sse.ctrl changed and does not reconnect
  sse.ctrl = null;
  setConn('off', 'signed out');
  showApp(false);
  Object.assign($('signin-msg'), { textContent: message ?? '', hidden: !message });
  if ($('detail').open) $('detail').close();
  $('signin-token').focus();
}

/** @param {string} token */
function signIn(token) {
  localStorage.setItem(TOKEN_KEY, (state.token = token));
  showApp(true);
  sse.delay = 1000;
  connect();
}

function wire() {
  $('signin-form').addEventListener('submit', (/** @type {SubmitEvent} */ e) => {
    e.preventDefault();
    const token = $('signin-token').value.trim();
    if (token) ($('signin-token').value = ''), signIn(token);
  });
  $('signout').addEventListener('click', () => signOut());
  $('message-close').addEventListener('click', () => ($('message-bar').hidden = true));

  // one click handler for the buttons of every table row (data-action, data-id)
  document.addEventListener('click', (e) => {
    const btn = /** @type {HTMLElement | null} */ (e.target instanceof Element ? e.target.closest('button[data-action]') : null);
    const id = btn?.dataset.id, action = btn?.dataset.action;
    if (!btn || !id || !action) return;
    if (action === 'detail') return void act(async () => { await loadDetail(id); if (!$('detail').open) $('detail').showModal(); });
    btn.setAttribute('disabled', '');
    act(async () => {
      if (action === 'clear') {
        const d = await api('POST', `/api/devices/${encodeURIComponent(id)}/clear`);
        state.devices.set(d.id, d);
        dirty('fleet', 'submit');
      } else upsertJob(await api('POST', `/api/jobs/${encodeURIComponent(id)}/${action}`));
    }).finally(() => btn.removeAttribute('disabled'));
  });

  $('detail').addEventListener('close', () => (state.detail = null));
  $('detail').addEventListener('click', (/** @type {MouseEvent} */ e) => { if (e.target === $('detail')) $('detail').close(); });

  $('submit-form').addEventListener('submit', (/** @type {SubmitEvent} */ e) => {
    e.preventDefault();
    /** @type {SubmitJob} */
    const job = { device: $('submit-device').value, file: $('submit-file').value, prints: Math.max(1, Number($('submit-prints').value) || 1) };
    $('submit-fields').disabled = true;
    $('submit-status').textContent = '';
    act(async () => {
      const j = await api('POST', '/api/jobs', job);
      upsertJob(j);
      $('submit-status').textContent = `Queued job ${j.id} on ${j.device}.`;
    }).finally(() => ($('submit-fields').disabled = !state.canSign));
  });

  $('upload-form').addEventListener('submit', (/** @type {SubmitEvent} */ e) => {
    e.preventDefault();
    const file = /** @type {File | undefined} */ ($('upload-file').files?.[0]);
    if (!file) return;
    $('upload-status').textContent = '';
    act(async () => {
      const f = await api('PUT', `/api/files/${encodeURIComponent(file.name)}`, file);
      state.files = await api('GET', '/api/files');
      renderSubmit();
      $('submit-file').value = f.name;
      $('upload-file').value = '';
      $('upload-status').textContent = `Uploaded ${f.name} (${bytes(f.size)}).`;
    });
  });

  // relative times age in place; nothing else needs a re-render for them
  setInterval(() => document.querySelectorAll('time[data-ts]').forEach((t) => (t.textContent = ago(Number(t.getAttribute('data-ts'))))), 5000);
}

function main() {
  wire();
  const fromUrl = new URLSearchParams(location.hash.slice(1)).get('token');
  if (fromUrl) history.replaceState(null, '', location.pathname + location.search); // keep the token out of the address bar
  const token = fromUrl || localStorage.getItem(TOKEN_KEY);
  if (token) signIn(token);
  else signOut();
}

main();
