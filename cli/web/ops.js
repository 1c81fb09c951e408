// ops.js - the wf dashboard's operator actions, loaded before app.js (whose helpers it uses: $,
// el, api, fmtTime, refresh...): pausing a workflow, its history chart, bulk actions on the run
// filter, the confirmation dialog, and the schedules page. Like app.js it puts data into the DOM
// as text only.
'use strict';

// Pauses or resumes a whole workflow (no confirmation: either undoes the other).
async function workflowAction(workflow, action) {
  try {
    await api('/workflows/' + encodeURIComponent(workflow) + '/' + action, 'POST');
  } catch (e) {
    if (e instanceof NeedToken) return askToken();
    showError(action + ' ' + workflow + ': ' + e.message);
    return;
  }
  refresh();
}

// ---- History chart ------------------------------------------------------------------------------

const SVG = 'http://www.w3.org/2000/svg';

function svg(tag, attrs) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
  return node;
}

// A bar per bucket, completed below failed, and the runs started as a line; drawn into a fixed
// viewBox that stretches to the panel's width. Labels are HTML around it, so they do not stretch.
function drawHistory(h) {
  const W = 600, H = 120, n = h.completed.length;
  const total = (a) => a.reduce((x, y) => x + y, 0);
  const max = Math.max(1, ...h.started, ...h.completed.map((c, i) => c + h.failed[i]));
  const y = (v) => H - (v / max) * (H - 4);
  const bw = W / n;
  const chart = svg('svg', { viewBox: '0 0 ' + W + ' ' + H, preserveAspectRatio: 'none', role: 'img',
    'aria-label': 'runs per ' + fmtDuration(h.stepMs) });
  for (let i = 0; i < n; i++) {
    const c = h.completed[i], f = h.failed[i];
    const tip = fmtTime(h.from + i * h.stepMs) + ': started ' + h.started[i] + ', completed ' + c + ', failed ' + f;
    if (c) chart.append(svg('rect', { class: 'completed', x: i * bw + 0.5, width: Math.max(bw - 1, 0.5), y: y(c), height: H - y(c) }));
    if (f) chart.append(svg('rect', { class: 'failed', x: i * bw + 0.5, width: Math.max(bw - 1, 0.5), y: y(c + f), height: y(c) - y(c + f) }));
    const hit = svg('rect', { class: 'hit', x: i * bw, width: bw, y: 0, height: H });
    hit.append(Object.assign(svg('title'), { textContent: tip }));
    chart.append(hit);
  }
  chart.append(svg('polyline', { class: 'started', fill: 'none',
    points: h.started.map((v, i) => (i * bw + bw / 2).toFixed(1) + ',' + y(v).toFixed(1)).join(' ') }));
  const box = $('history-chart');
  box.replaceChildren(
    el('span', { className: 'ymax' }, String(max)), chart,
    el('div', { className: 'axis' }, el('span', {}, fmtTime(h.from).slice(h.range === '1d' ? 5 : 11, 16)),
      el('span', {}, 'now')));
  const totals = { started: total(h.started), completed: total(h.completed), failed: total(h.failed) };
  Object.assign(box.dataset, totals);
  $('history-totals').textContent = totals.started + ' started, ' + totals.completed + ' completed, ' +
    totals.failed + ' failed in the last ' + (h.range === '1d' ? 'day' : 'hour');
}

async function refreshHistory() {
  $('history').hidden = !filters.workflow;
  if (!filters.workflow) return;
  const range = filters.range === '1d' ? '1d' : '1h';
  $('history-workflow').textContent = filters.workflow;
  for (const b of document.querySelectorAll('#history [data-range]')) b.className = b.dataset.range === range ? 'current' : '';
  drawHistory(await api('/workflows/' + encodeURIComponent(filters.workflow) + '/history?range=' + range));
}

// ---- Bulk actions on the filter ------------------------------------------------------------------

// The bulk action the filter allows: retry for runs that ended without completing, stop for runs
// not finished; none without both a workflow and a state.
function bulkAction(f) {
  if (!f.workflow || !f.state || f.state === 'completed') return null;
  return FINAL.has(f.state) ? 'retry' : 'stop';
}

function showBulk() {
  const action = bulkAction(filters);
  $('bulk').hidden = !action;
  if (action) $('bulk-button').textContent = (action === 'retry' ? 'Retry' : 'Stop') + ' all ' + filters.state;
}

// Counts first (dry_run), asks with the count, then acts on exactly the runs counted: the dry
// run's `until` (Redis time) bounds the action, so runs that arrive meanwhile are not touched.
async function bulk() {
  const action = bulkAction(filters);
  if (!action) return;
  const verb = action === 'retry' ? 'Retry' : 'Stop';
  const { workflow, state } = filters;
  const q = new URLSearchParams({ action, workflow, state });
  const msg = $('bulk-msg');
  msg.className = 'message';
  msg.textContent = 'counting…';
  try {
    const dry = await api('/bulk?' + q + '&dry_run=1', 'POST');
    const runs = (n) => n + ' ' + state + ' run' + (n === 1 ? '' : 's') + ' of ' + workflow;
    if (!dry.count) {
      msg.textContent = 'No ' + state + ' runs of ' + workflow + ' to ' + action + '.';
      return;
    }
    const yes = await confirmDialog(verb + ' ' + runs(dry.count) + '?', verb + ' ' + dry.count, false);
    if (!yes) {
      msg.textContent = 'Nothing done.';
      return;
    }
    q.set('until', dry.until);
    const res = await api('/bulk?' + q, 'POST');
    msg.textContent = (action === 'retry' ? 'Retried ' : 'Stopped ') + res.acted + ' of ' + runs(res.count) +
      (res.skipped ? '; ' + res.skipped + ' skipped (changed meanwhile)' : '') +
      (res.failed ? '; ' + res.failed + ' failed' : '') + '.';
  } catch (e) {
    if (e instanceof NeedToken) return askToken();
    msg.className = 'message bad';
    msg.textContent = e.message;
  }
  refresh();
}

// ---- Confirmation -------------------------------------------------------------------------------

// Asks in a modal <dialog> (the page's own, so it is styled and testable); resolves to null when
// cancelled (Cancel, Escape) or to {reason} (the optional reason, '' when none or not asked).
function confirmDialog(text, okLabel, withReason) {
  const d = $('confirm');
  $('confirm-text').textContent = text;
  $('confirm-ok').textContent = okLabel;
  $('confirm-reason-box').hidden = !withReason;
  $('confirm-reason').value = '';
  return new Promise((resolve) => {
    let answer = null;
    $('confirm-ok').onclick = () => {
      answer = { reason: withReason ? $('confirm-reason').value.trim() : '' };
      d.close();
    };
    $('confirm-cancel').onclick = () => d.close();
    d.onclose = () => resolve(answer);
    d.showModal();
    (withReason ? $('confirm-reason') : $('confirm-ok')).focus();
  });
}

// ---- Schedules ----------------------------------------------------------------------------------

function drawSchedules(list) {
  const rows = list.map((s) => el('tr', { dataset: { schedule: s.workflow + '/' + s.id } },
    el('td', {}, s.workflow),
    el('td', { className: 'id' }, s.id),
    el('td', { className: 'id' }, s.spec),
    el('td', {}, s.paused ? el('span', { className: 'state state-paused' }, 'paused') : 'active'),
    el('td', {}, s.paused ? '-' : fmtTime(s.nextAt)),
    el('td', {}, fmtTime(s.lastAt)),
    el('td', { className: 'num' }, s.fires),
    el('td', { className: 'id' }, s.lastRun ? runLink(s.lastRun) : '-'),
    el('td', { className: 'id' }, s.input === null ? '-' : JSON.stringify(s.input)),
    el('td', { className: 'row-actions' }, ...scheduleButtons(s))));
  $('schedules').tBodies[0].replaceChildren(...rows);
  $('schedules-empty').hidden = list.length > 0;
}

function scheduleButtons(s) {
  const button = (action, label) => el('button', { type: 'button', dataset: { scheduleAction: action },
    onclick: () => scheduleAction(s, action) }, label);
  return [s.paused ? button('resume', 'Resume') : button('pause', 'Pause'), button('trigger', 'Run now')];
}

async function scheduleAction(s, action) {
  const msg = $('schedule-msg');
  msg.className = 'message';
  try {
    const res = await api('/schedules/' + encodeURIComponent(s.workflow) + '/' + encodeURIComponent(s.id) +
      '/' + action, 'POST');
    msg.replaceChildren(s.workflow + '/' + s.id + ': ' +
      (action === 'trigger' ? 'started ' : action === 'pause' ? 'paused' : 'resumed'),
      res.runId ? runLink(res.runId) : '');
  } catch (e) {
    if (e instanceof NeedToken) return askToken();
    msg.className = 'message bad';
    msg.textContent = e.message;
  }
  refresh();
}

async function refreshSchedules() {
  drawSchedules((await api('/schedules')).schedules);
}

// ---- Dead letters -------------------------------------------------------------------------------

// #/dead?workflow=W: the workflows with their dead-letter counts to choose from, and the chosen
// one's letters, newest first (the first workflow that has any when none is chosen).
async function refreshDead(workflow) {
  const wfs = (await api('/workflows')).workflows;
  if (!workflow) workflow = (wfs.find((w) => w.dead > 0) || wfs[0] || {}).workflow;
  $('dead-workflows').replaceChildren(...wfs.map((w) => el('a', {
    href: '#/dead?workflow=' + encodeURIComponent(w.workflow),
    className: w.workflow === workflow ? 'current' : '', dataset: { workflow: w.workflow },
  }, w.workflow + ' (' + w.dead + ')')));
  $('dead-workflow').textContent = workflow ? 'of ' + workflow : '';
  const letters = workflow
    ? (await api('/dead?workflow=' + encodeURIComponent(workflow) + '&limit=200')).deadLetters : [];
  $('dead').tBodies[0].replaceChildren(...letters.map((d) => el('tr', { dataset: { entry: d.entry } },
    el('td', { className: 'id' }, d.runId ? runLink(d.runId) : '-'), el('td', { className: 'id' }, d.entry),
    el('td', {}, fmtTime(d.at)), el('td', { className: 'id' }, d.worker || '-'),
    el('td', { className: 'err', title: d.reason || '' }, d.reason || ''))));
  $('dead-empty').hidden = letters.length > 0;
}

// The run's history as the scripts recorded it (pause, resume, retry, restart... when they
// happened); hidden for runs from before it was recorded. Times in ms in a detail ("due at
// 1796305362035") are shown as dates.
function drawHistoryEvents(events) {
  $('run-history-box').hidden = !(events && events.length);
  $('run-history').replaceChildren(...(events || []).map((e) => el('li', { dataset: { kind: e.kind } },
    el('span', { className: 'at' }, fmtTime(e.at)), el('span', { className: 'ev' }, e.kind),
    (e.detail || '').replace(/\b1\d{12}\b/g, (ms) => fmtTime(Number(ms))))));
}
