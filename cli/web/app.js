// app.js - the wf dashboard: polls the JSON API of `wf web` every 1.5 s and draws the overview
// (workflows, workers, runs) or one run (#/run/ID). Every piece of data goes into the DOM as text
// (text nodes and textContent, never parsed as markup), so a run's input or error cannot inject
// markup. ops.js (loaded first) holds the operator actions: bulk, schedules, history, pausing.
'use strict';

const POLL_MS = 1500;
const STATES = ['queued', 'running', 'paused', 'waiting', 'completed', 'failed', 'cancelled',
  'terminated'];
const FINAL = new Set(['completed', 'failed', 'cancelled', 'terminated']);

const $ = (id) => document.getElementById(id);
let token = sessionStorage.getItem('wf-token') || '';
let timer = null;
let busy = false;

// ---- DOM helpers ------------------------------------------------------------------------------

// el('td', {className: 'x', title: 't'}, 'text', childNode...): strings become text nodes.
function el(tag, props, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    if (k === 'dataset') Object.assign(node.dataset, v);
    else if (k.startsWith('on')) node.addEventListener(k.slice(2), v);
    else node[k] = v;
  }
  for (const c of children) {
    if (c === null || c === undefined) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

function stateBadge(state) {
  return el('span', { className: 'state state-' + (STATES.includes(state) ? state : 'unknown') },
    state);
}

function fmtTime(ms) {
  if (!ms) return '-';
  return new Date(ms).toISOString().replace('T', ' ').slice(0, 19) + 'Z';
}

function fmtDuration(ms) {
  if (ms === null || ms === undefined) return '-';
  if (ms < 0) ms = 0;
  if (ms < 1000) return ms + 'ms';
  const s = Math.floor(ms / 1000);
  if (ms < 60000) return (ms / 1000).toFixed(1) + 's';
  if (s < 3600) return Math.floor(s / 60) + 'm' + String(s % 60).padStart(2, '0') + 's';
  if (s < 86400) return Math.floor(s / 3600) + 'h' + String(Math.floor(s / 60) % 60).padStart(2, '0') + 'm';
  return Math.floor(s / 86400) + 'd' + String(Math.floor(s / 3600) % 24).padStart(2, '0') + 'h';
}

function json(v) {
  return v === null || v === undefined ? '(none)' : JSON.stringify(v, null, 2);
}

function runLink(id) {
  return el('a', { href: '#/run/' + encodeURIComponent(id) }, id);
}

function showError(msg) {
  const b = $('error-banner');
  b.textContent = msg || '';
  b.hidden = !msg;
  const live = $('live');
  live.textContent = msg ? 'disconnected' : 'live';
  live.className = 'live ' + (msg ? 'bad' : 'ok');
}

// ---- API ----------------------------------------------------------------------------------------

class NeedToken extends Error {}

// Relative to the page, so the dashboard works under `wf web --base-path /PREFIX`.
async function api(path, method) {
  const headers = { Accept: 'application/json' };
  if (token) headers.Authorization = 'Bearer ' + token;
  const res = await fetch('api' + path, { method: method || 'GET', headers, cache: 'no-store' });
  let body = null;
  try { body = await res.json(); } catch (e) { body = null; }
  if (res.status === 401) throw new NeedToken((body && body.error) || 'token needed');
  if (!res.ok) {
    const err = new Error((body && body.error) || ('HTTP ' + res.status));
    err.status = res.status;
    throw err;
  }
  return body;
}

// ---- Overview -----------------------------------------------------------------------------------

// The overview's filters live in the URL (#/?workflow=&state=&limit=&q=), so a view can be
// shared and survives a reload; the run page is #/run/ID.
const FILTER_KEYS = ['workflow', 'state', 'since', 'limit', 'q', 'offset', 'range'];
let filters = {};

function overviewHash(f) {
  const q = new URLSearchParams();
  for (const k of FILTER_KEYS) if (f[k]) q.set(k, f[k]);
  const s = q.toString();
  return '#/' + (s ? '?' + s : '');
}

// Changes some filters: a new URL, whose hashchange redraws. Any change but the page's goes back
// to the first page.
function setFilter(changes) {
  const next = { ...filters, ...changes };
  if (!('offset' in changes)) delete next.offset;
  const hash = overviewHash(next);
  if (location.hash === hash) refresh();
  else location.hash = hash;
}

// Puts the URL's filters into the form.
function showFilters() {
  $('filter-workflow').value = filters.workflow || '';
  if ($('filter-workflow').value !== (filters.workflow || '')) {
    $('filter-workflow').append(el('option', { value: filters.workflow }, filters.workflow));
    $('filter-workflow').value = filters.workflow;
  }
  $('filter-state').value = filters.state || '';
  for (const [id, v, dflt] of [['filter-limit', filters.limit, '50'], ['filter-since', filters.since, '']]) {
    const sel = $(id);
    if (v && !Array.from(sel.options).some((o) => o.value === v)) sel.append(el('option', { value: v }, v));
    sel.value = v || dflt;
  }
  if (document.activeElement !== $('filter-q')) $('filter-q').value = filters.q || '';
  $('all-runs').href = overviewHash(filters);
}

// Runs that wait for a worker to take them: queued, waiting (a delay, a retry's backoff) and
// running (a worker that died holds them until another reclaims them).
function pendingRuns(w) {
  return (w.counts.queued || 0) + (w.counts.waiting || 0) + (w.counts.running || 0);
}

// A workflow with runs pending that no live worker runs: they will not move until one starts.
function unserved(w) {
  return w.liveWorkers === 0 && pendingRuns(w) > 0;
}

function drawWarnings(list) {
  const lines = list.filter(unserved).map((w) => {
    const parts = ['queued', 'waiting', 'running'].filter((s) => w.counts[s]).map((s) => w.counts[s] + ' ' + s);
    return el('p', { dataset: { workflow: w.workflow } }, '⚠ No live worker runs ',
      el('strong', {}, w.workflow), ': its runs (' + parts.join(', ') +
      ') will not move until a worker that runs it starts.');
  });
  $('worker-warnings').replaceChildren(...lines);
  $('worker-warnings').hidden = lines.length === 0;
}

function drawWorkflows(list) {
  drawWarnings(list);
  const body = $('workflows').tBodies[0];
  const rows = list.map((w) => {
    const cells = [el('td', {}, el('a', { className: 'count', onclick: () => setFilter({ workflow: w.workflow, state: '' }) },
      w.workflow), w.paused ? el('span', { className: 'warn-tag paused-tag', title: 'paused: its queued runs wait' },
      'paused') : null, unserved(w) ? el('span', { className: 'warn-tag', title: 'no live worker runs it' },
      'no worker') : null)];
    for (const s of STATES) {
      const n = w.counts[s] || 0;
      cells.push(el('td', { className: 'num' + (n ? '' : ' zero'), dataset: { state: s } },
        n ? el('a', { className: 'count', onclick: () => setFilter({ workflow: w.workflow, state: s }) }, n) : '0'));
    }
    cells.push(el('td', { className: 'num' }, w.completedLastMinute));
    cells.push(el('td', { className: 'num' }, w.counts.queued ? fmtDuration(w.oldestQueuedMs) : '-'));
    cells.push(el('td', { className: 'row-actions' }, el('button', {
      type: 'button', dataset: { workflowAction: w.paused ? 'resume' : 'pause' },
      title: w.paused ? 'workers claim its queued runs again' : 'workers stop claiming its queued runs',
      onclick: () => workflowAction(w.workflow, w.paused ? 'resume' : 'pause'),
    }, w.paused ? 'Resume' : 'Pause')));
    return el('tr', { dataset: { workflow: w.workflow } }, ...cells);
  });
  body.replaceChildren(...rows);
  $('workflows-empty').hidden = list.length > 0;
  const sel = $('filter-workflow');
  const known = Array.from(sel.options).map((o) => o.value);
  for (const w of list) if (!known.includes(w.workflow)) sel.append(el('option', { value: w.workflow }, w.workflow));
  sel.value = filters.workflow || '';
}

function drawWorkers(list) {
  const rows = list.map((w) => el('tr', {},
    el('td', { className: 'id' }, w.name),
    el('td', {}, w.host || '?'),
    el('td', { className: 'num' }, w.pid),
    el('td', { className: 'num' }, w.busy + '/' + w.concurrency),
    el('td', {}, w.lastSeen ? fmtDuration(w.ageMs) + ' ago' : 'never'),
    el('td', {}, w.stale ? 'stale' : 'live'),
    el('td', {}, (w.workflows || []).join(', '))));
  $('workers').tBodies[0].replaceChildren(...rows);
  $('workers-empty').hidden = list.length > 0;
}

function drawRuns(list) {
  const rows = list.map((r) => el('tr', { dataset: { id: r.id, state: r.state } },
    el('td', { className: 'id' }, runLink(r.id)),
    el('td', {}, stateBadge(r.state)),
    el('td', { className: 'num' }, r.attempt),
    el('td', {}, fmtTime(r.createdAt)),
    el('td', {}, fmtTime(r.updatedAt)),
    el('td', { className: 'err', title: r.error || '' }, r.error || '')));
  $('runs').tBodies[0].replaceChildren(...rows);
  $('runs-empty').hidden = list.length > 0;
}

// Newer / older pages of the run list (offset in the URL); "older" while a page comes back full.
function drawPager(shown) {
  const limit = Number(filters.limit) || 50, offset = Number(filters.offset) || 0;
  $('page-newer').disabled = offset === 0;
  $('page-older').disabled = shown < limit;
  $('page-info').textContent = shown ? 'runs ' + (offset + 1) + '–' + (offset + shown) : '';
}

async function refreshOverview() {
  const q = new URLSearchParams();
  for (const k of ['workflow', 'state', 'since', 'q', 'offset']) if (filters[k]) q.set(k, filters[k]);
  q.set('limit', filters.limit || '50');
  const [wfs, workers, runs] = await Promise.all([
    api('/workflows'), api('/workers'), api('/runs?' + q.toString()), refreshHistory()]);
  drawWorkflows(wfs.workflows);
  drawWorkers(workers.workers);
  drawRuns(runs.runs);
  drawPager(runs.runs.length);
}

// ---- One run ------------------------------------------------------------------------------------

let currentRun = null;

function fact(dl, label, value) {
  dl.append(el('dt', {}, label), el('dd', {}, value === null || value === undefined || value === '' ? '-' : value));
}

// Every action button off: while a run loads, and when there is no such run.
function disableActions() {
  for (const b of document.querySelectorAll('#run-view [data-action]')) b.disabled = true;
}

function drawMissing(id, message) {
  currentRun = null;
  disableActions();
  document.title = 'not found · wf';
  $('run-detail').hidden = true;
  $('run-missing').hidden = false;
  $('run-missing-id').textContent = id;
  $('run-missing-msg').textContent = message;
}

function drawRun(r) {
  currentRun = r;
  $('run-detail').hidden = false;
  $('run-missing').hidden = true;
  document.title = r.id + ' · wf';
  $('run-id').textContent = r.id;
  $('run-state').replaceWith(Object.assign(stateBadge(r.state), { id: 'run-state' }));
  const dl = $('run-facts');
  dl.replaceChildren();
  fact(dl, 'Workflow', r.workflow);
  fact(dl, 'State', r.state + (r.pausedFrom ? ' (was ' + r.pausedFrom + ')' : ''));
  if (r.waitReason || r.wakeAt) {
    fact(dl, 'Waiting for', (r.waitReason || 'event') +
      (r.wakeAt ? ', due ' + fmtTime(r.wakeAt) + ' (in ' + fmtDuration(r.wakeAt - Date.now()) + ')' : ''));
  }
  fact(dl, 'Attempt', r.attempt);
  fact(dl, 'Step', r.step);
  fact(dl, 'Worker', r.worker);
  fact(dl, 'Reclaims', r.reclaims);
  fact(dl, 'Created', fmtTime(r.createdAt));
  fact(dl, 'Started', fmtTime(r.startedAt));
  fact(dl, 'Last change', fmtTime(r.updatedAt));
  fact(dl, 'Finished', r.finishedAt
    ? fmtTime(r.finishedAt) + ' (after ' + fmtDuration(r.finishedAt - r.createdAt) + ')' : null);
  $('run-input').textContent = json(r.input);
  $('run-output').textContent = json(r.output);
  $('run-error').textContent = r.error || '';
  $('run-error-box').hidden = !r.error;

  const steps = r.steps.map((s) => el('tr', { dataset: { step: s.name } },
    el('td', { className: 'id' }, s.name), el('td', {}, s.kind), el('td', {}, s.status),
    el('td', { className: 'num' }, s.attempts), el('td', {}, fmtTime(s.startedAt)),
    el('td', {}, fmtDuration(s.durationMs)), el('td', {}, fmtTime(s.until)),
    el('td', { className: 'err' }, s.error || '')));
  $('run-steps').tBodies[0].replaceChildren(...steps);
  $('steps-empty').hidden = r.steps.length > 0;

  drawWaterfall(r);
  drawHistoryEvents(r.events);

  $('run-timeline').replaceChildren(...r.timeline.map((t) => el('li', {},
    el('span', { className: 'at' }, fmtTime(t.at)), el('span', { className: 'ev' }, t.event),
    t.detail || '')));

  const warn = $('run-warning');
  warn.hidden = !(r.liveWorkers === 0 && ['queued', 'waiting', 'running'].includes(r.state));
  warn.textContent = warn.hidden ? '' : '⚠ No live worker runs ' + r.workflow + ': this run will not move until a worker that runs it starts.';

  const allowed = {
    restart: FINAL.has(r.state),
    stop: !FINAL.has(r.state),
    pause: ['queued', 'waiting', 'running'].includes(r.state),
    resume: r.state === 'paused',
    retry: ['failed', 'terminated', 'cancelled'].includes(r.state),
  };
  for (const b of document.querySelectorAll('#run-view [data-action]')) b.disabled = !allowed[b.dataset.action];
}

// The steps over time: one bar per step that started, from its start to its end (now while it
// runs), on a scale from the run's start to its end (or now). Positions are percentages, so it
// fits any width.
function drawWaterfall(r) {
  const steps = r.steps.filter((s) => s.startedAt);
  const now = Date.now();
  const end = (s) => s.finishedAt || (FINAL.has(r.state) ? (r.finishedAt || s.startedAt) : now);
  const t0 = Math.min(...steps.map((s) => s.startedAt), r.startedAt || Infinity);
  const t1 = Math.max(t0 + 1, r.finishedAt || 0, ...steps.map(end));
  const pct = (t) => (100 * (t - t0) / (t1 - t0)).toFixed(2) + '%';
  const rows = steps.map((s) => {
    const bar = el('span', { className: 'bar bar-' + (s.status || 'unknown'),
      title: s.name + ': ' + fmtTime(s.startedAt) + ' +' + fmtDuration(end(s) - s.startedAt) });
    bar.style.left = pct(s.startedAt);
    bar.style.width = 'max(2px, ' + pct(t0 + end(s) - s.startedAt) + ')';
    return el('div', { className: 'wrow', dataset: { step: s.name } },
      el('span', { className: 'wname', title: s.name }, s.name),
      el('span', { className: 'wtrack' }, bar),
      el('span', { className: 'wdur' }, fmtDuration(end(s) - s.startedAt)));
  });
  if (rows.length) {
    rows.push(el('div', { className: 'wrow wscale' }, el('span', { className: 'wname' }),
      el('span', { className: 'wtrack' }, el('span', {}, fmtTime(t0).slice(11)),
        el('span', {}, '+' + fmtDuration(t1 - t0))), el('span', { className: 'wdur' })));
  }
  $('run-waterfall').replaceChildren(...rows);
  $('waterfall-empty').hidden = rows.length > 0;
}

async function refreshRun(id) {
  try {
    drawRun(await api('/runs/' + encodeURIComponent(id)));
  } catch (e) {
    if (e.status === 404 || e.status === 400) {
      drawMissing(id, e.message);
      return;
    }
    throw e;
  }
}

// Stop and restart ask first (stop with an optional reason); pause, resume and retry do not.
async function act(action) {
  if (!currentRun) return;
  const id = currentRun.id;
  let query = '';
  if (action === 'stop' || action === 'restart') {
    const yes = action === 'stop'
      ? await confirmDialog('Stop run ' + id + '?', 'Stop', true)
      : await confirmDialog('Restart run ' + id + ' from the start as a new attempt?', 'Restart', false);
    if (!yes) return;
    if (yes.reason) query = '?' + new URLSearchParams({ reason: yes.reason });
  }
  const msg = $('action-msg');
  msg.className = 'message';
  msg.textContent = action + '…';
  try {
    const res = await api('/runs/' + encodeURIComponent(id) + '/' + action + query, 'POST');
    msg.textContent = action + ': now ' + res.run.state;
  } catch (e) {
    if (e instanceof NeedToken) return askToken();
    msg.className = 'message bad';
    msg.textContent = e.message;
  }
  refresh();
}

// ---- Routing, polling, token --------------------------------------------------------------------

function route() {
  const m = location.hash.match(/^#\/run\/(.+)$/);
  if (m) return { view: 'run', id: decodeURIComponent(m[1]) };
  if (/^#\/schedules\/?$/.test(location.hash)) return { view: 'schedules' };
  const d = location.hash.match(/^#\/dead\/?(?:\?(.*))?$/);
  if (d) return { view: 'dead', workflow: new URLSearchParams(d[1] || '').get('workflow') || '' };
  const q = new URLSearchParams(location.hash.replace(/^#\/?\??/, ''));
  const f = {};
  for (const k of FILTER_KEYS) if (q.get(k)) f[k] = q.get(k);
  return { view: 'overview', filters: f };
}

function askToken() {
  clearTimeout(timer);
  $('token-box').hidden = false;
  showView(null);
  $('token-input').focus();
}

const VIEWS = ['overview', 'run', 'schedules', 'dead'];

// Shows one view (null: none, while the token is asked for) and marks its link in the header.
function showView(view) {
  for (const v of VIEWS) $(v + '-view').hidden = v !== view;
  $('nav-runs').className = view === 'overview' || view === 'run' ? 'current' : '';
  $('nav-schedules').className = view === 'schedules' ? 'current' : '';
  $('nav-dead').className = view === 'dead' ? 'current' : '';
}

async function refresh() {
  clearTimeout(timer);
  if (busy) { timer = setTimeout(refresh, 200); return; }
  busy = true;
  const r = route();
  showView(r.view);
  try {
    if (r.view === 'run') await refreshRun(r.id);
    else if (r.view === 'dead') {
      document.title = 'dead letters · wf';
      await refreshDead(r.workflow);
    } else if (r.view === 'schedules') {
      document.title = 'schedules · wf';
      await refreshSchedules();
    } else {
      filters = r.filters;
      showFilters();
      showBulk();
      document.title = 'wf dashboard';
      await refreshOverview();
    }
    showError('');
    timer = setTimeout(refresh, POLL_MS);
  } catch (e) {
    if (e instanceof NeedToken) askToken();
    else { showError('Cannot reach the API: ' + e.message); timer = setTimeout(refresh, POLL_MS * 2); }
  } finally {
    busy = false;
  }
}

// ---- Theme ---------------------------------------------------------------------------------------

// The toggle's choice ('light' or 'dark') is kept in localStorage; without one the page follows
// prefers-color-scheme (style.css).
function applyTheme(theme) {
  if (theme === 'light' || theme === 'dark') document.documentElement.dataset.theme = theme;
  else delete document.documentElement.dataset.theme;
}

function currentTheme() {
  const t = document.documentElement.dataset.theme;
  if (t) return t;
  return window.matchMedia('(prefers-color-scheme: dark)').matches ? 'dark' : 'light';
}

function init() {
  applyTheme(localStorage.getItem('wf-theme'));
  $('theme-toggle').addEventListener('click', () => {
    const next = currentTheme() === 'dark' ? 'light' : 'dark';
    localStorage.setItem('wf-theme', next);
    applyTheme(next);
  });
  $('token-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    token = $('token-input').value.trim();
    sessionStorage.setItem('wf-token', token);
    $('token-input').value = '';
    $('token-box').hidden = true;
    refresh();
  });
  $('filters').addEventListener('submit', (ev) => {
    ev.preventDefault();
    setFilter({ q: $('filter-q').value.trim() });
  });
  $('filter-workflow').addEventListener('change', (ev) => setFilter({ workflow: ev.target.value }));
  $('filter-state').addEventListener('change', (ev) => setFilter({ state: ev.target.value }));
  $('filter-limit').addEventListener('change', (ev) => setFilter({ limit: ev.target.value }));
  $('filter-since').addEventListener('change', (ev) => setFilter({ since: ev.target.value }));
  const page = (dir) => {
    const limit = Number(filters.limit) || 50;
    const offset = Math.max(0, (Number(filters.offset) || 0) + dir * limit);
    setFilter({ offset: offset ? String(offset) : '' });
  };
  $('page-newer').addEventListener('click', () => page(-1));
  $('page-older').addEventListener('click', () => page(1));
  $('bulk-button').addEventListener('click', bulk);
  for (const b of document.querySelectorAll('#history [data-range]')) {
    b.addEventListener('click', () => setFilter({ range: b.dataset.range === '1d' ? '1d' : '' }));
  }
  $('confirm-reason').addEventListener('keydown', (ev) => { if (ev.key === 'Enter') $('confirm-ok').click(); });
  for (const b of document.querySelectorAll('#run-view [data-action]')) {
    b.addEventListener('click', () => act(b.dataset.action));
  }
  window.addEventListener('hashchange', () => {
    currentRun = null;
    disableActions();
    $('action-msg').textContent = '';
    $('bulk-msg').textContent = '';
    refresh();
  });
  refresh();
}

init();
