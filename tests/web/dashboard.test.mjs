// dashboard.test.mjs - the wf dashboard in a real browser: a private redis-server, a real
// wf-worker running publish-draft, `wf web`, and Debian's chromium driven by playwright-core.
//
//   node tests/web/dashboard.test.mjs [BUILD_DIR]      (default: build)
//
// Checks that a run started with `wf run` shows up completed in the list, that a delayed run's
// page shows it waiting and its Stop button (after a confirmation with a reason) cancels it and
// its history records that, that Restart runs a finished run again, that a run's waterfall draws its steps in order, that data
// is shown as text (a title with markup runs no script), that a run that does not exist gets a
// not-found page with no button enabled, that filters and the id search live in the URL (reload,
// shared link), that bulk Retry all failed / Stop all waiting show the count, ask, act and
// report, that a workflow's history chart counts its runs (last hour, last day), that a workflow
// pauses and resumes from its row, that the schedules page pauses, runs now and resumes, that the
// dead-letters page lists an entry the worker moved aside, that no
// live worker for pending runs gives a warning, and that with --token the page asks for the
// token and then works. Each action is checked in Redis through the `wf` command.
// Checks a phone-sized layout and dark mode (system preference and the toggle), and that every
// request stays under --base-path.
// Saves into BUILD_DIR: dashboard.png (the overview), dashboard-run.png (a run's page),
// dashboard-phone.png (390x844), dashboard-dark.png, dashboard-confirm.png (Stop's dialog),
// dashboard-bulk.png, dashboard-waterfall.png, dashboard-history.png, dashboard-schedules.png and
// dashboard-warning.png, dashboard-dead.png; docs/ shows some of them (copied by hand when the page changes).
// Everything it starts listens on 127.0.0.1 and is stopped at the end; the whole test is bounded
// to 60 s. Exits 0 when every check passed.
import { spawn, execFile } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { chromium } from 'playwright-core';

const run = promisify(execFile);
const BUILD = path.resolve(process.argv[2] || 'build');
const CHROMIUM = process.env.WF_CHROMIUM || '/usr/bin/chromium';
const LIMIT_MS = 60000;
const TOKEN = 'dashboard-test-token-0123456789';

const children = [];
let browser = null;
let tmp = null;
let checks = 0;

function check(cond, what) {
  if (!cond) throw new Error('check failed: ' + what);
  checks++;
  console.log('ok ' + checks + ' - ' + what);
}

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

function start(cmd, args, env, log) {
  const out = fs.openSync(path.join(tmp, log), 'a');
  const child = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ['ignore', out, out] });
  fs.closeSync(out);
  children.push(child);
  return child;
}

async function waitFor(what, fn, ms = 15000) {
  const end = Date.now() + ms;
  for (;;) {
    try {
      if (await fn()) return;
    } catch (e) { /* not yet */ }
    if (Date.now() > end) throw new Error('timed out waiting for ' + what);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function redisAnswers(port) {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1', () => s.write('PING\r\n'));
    s.on('data', (d) => { s.destroy(); resolve(d.toString().startsWith('+PONG')); });
    s.on('error', () => resolve(false));
  });
}

// One command to Redis in the inline protocol; resolves to the reply's first line.
function redisCommand(port, command) {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => s.write(command + '\r\n'));
    s.on('data', (d) => { s.destroy(); resolve(d.toString().split('\r\n')[0]); });
    s.on('error', reject);
  });
}

async function wf(env, ...args) {
  const { stdout } = await run(path.join(BUILD, 'wf'), args, { env: { ...process.env, ...env } });
  return stdout;
}

async function startWeb(env, extra, base = '') {
  const port = await freePort();
  start(path.join(BUILD, 'wf'), ['web', '--listen', '127.0.0.1:' + port, ...extra], env,
    'web-' + port + '.log');
  const url = 'http://127.0.0.1:' + port + '/' + base;
  await waitFor('wf web on ' + url, async () => (await fetch(url)).ok);
  return url;
}

async function stopAll() {
  if (browser) await browser.close().catch(() => {});
  for (const c of children.reverse()) {
    if (c.exitCode !== null || c.signalCode !== null) continue;
    const done = new Promise((r) => c.once('exit', r));
    c.kill('SIGTERM');
    const t = setTimeout(() => c.kill('SIGKILL'), 10000);
    await done;
    clearTimeout(t);
  }
  if (tmp && !process.env.WF_KEEP_TMP) fs.rmSync(tmp, { recursive: true, force: true });
}

function dumpLogs() {
  if (!tmp) return;
  for (const f of fs.readdirSync(tmp).filter((n) => n.endsWith('.log'))) {
    console.error('---- ' + f);
    console.error(fs.readFileSync(path.join(tmp, f), 'utf8').slice(-3000));
  }
}

async function main() {
  for (const f of ['wf', 'wf-worker', 'examples/workflows/publish-draft.so',
    'tests/workflows/fatal.so', 'tests/workflows/stepper.so']) {
    if (!fs.existsSync(path.join(BUILD, f))) throw new Error(path.join(BUILD, f) + ' is missing: build first');
  }
  if (!fs.existsSync(CHROMIUM)) throw new Error(CHROMIUM + ' is missing: apt-get install chromium');
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'wf-dashboard-'));

  const redisPort = await freePort();
  start('redis-server', ['--port', String(redisPort), '--bind', '127.0.0.1', '--save', '',
    '--appendonly', 'no', '--dir', tmp], {}, 'redis.log');
  await waitFor('redis-server', () => redisAnswers(redisPort));
  const env = { WF_REDIS_URL: 'redis://127.0.0.1:' + redisPort };

  // Only publish-draft, fatal (fails at once, for the bulk retry) and stepper (steps, for the
  // waterfall): other modules of the examples folder are not this test's business.
  const mods = path.join(tmp, 'workflows');
  fs.mkdirSync(mods);
  fs.symlinkSync(path.join(BUILD, 'examples/workflows/publish-draft.so'), path.join(mods, 'publish-draft.so'));
  for (const m of ['fatal', 'stepper']) {
    fs.symlinkSync(path.join(BUILD, 'tests/workflows', m + '.so'), path.join(mods, m + '.so'));
  }
  const worker = start(path.join(BUILD, 'wf-worker'), ['--workflows', mods], env, 'worker.log');
  await waitFor('publish-draft registered', async () => (await wf(env, 'workflows')).includes('publish-draft'));

  const url = await startWeb(env, []);
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const pageErrors = [];
  page.on('pageerror', (e) => pageErrors.push(e.message));
  await page.goto(url);
  await page.locator('#workflows tr[data-workflow="publish-draft"]').waitFor();
  check(true, 'overview lists workflow publish-draft');

  // A run that completes, with markup in its input that must stay text.
  const evil = '<img src=x onerror="window.__xss=1">Hello';
  await wf(env, 'run', 'publish-draft', JSON.stringify({ title: evil }), '--id', 'browser-1');
  await page.locator('#runs tr[data-id="publish-draft:browser-1"][data-state="completed"]')
    .waitFor({ timeout: 15000 });
  check(true, 'a run started with `wf run` shows up completed in the list');
  const count = await page.locator('#workflows tr[data-workflow="publish-draft"] td[data-state="completed"]').innerText();
  check(Number(count) >= 1, 'the completed count of publish-draft is ' + count);

  await page.click('#runs a:text("publish-draft:browser-1")');
  await page.locator('#run-state:text("completed")').waitFor();
  const output = await page.locator('#run-output').innerText();
  check(output.includes('<img src=x onerror='), 'the run page shows the output, markup as text');
  check(await page.evaluate(() => window.__xss === undefined), 'no script ran from run data');
  check((await page.locator('#run-timeline li').count()) >= 3, 'the run page shows a timeline');

  // A delayed run: waiting, then stopped with its button.
  await wf(env, 'run', 'publish-draft', '{}', '--delay', '600000', '--id', 'browser-delayed');
  await page.goto(url + '#/');
  await page.locator('#runs tr[data-id="publish-draft:browser-delayed"][data-state="waiting"]').waitFor();
  await page.click('#runs a:text("publish-draft:browser-delayed")');
  await page.locator('#run-state:text("waiting")').waitFor();
  check(await page.locator('button[data-action="resume"]').isDisabled(), 'resume is disabled for a waiting run');
  await page.screenshot({ path: path.join(BUILD, 'dashboard-run.png'), fullPage: true });
  await page.click('button[data-action="stop"]');
  await page.locator('#confirm[open] #confirm-reason').waitFor();
  await page.click('#confirm-cancel');
  await page.locator('#confirm').waitFor({ state: 'hidden' });
  check(JSON.parse(await wf(env, 'status', 'publish-draft:browser-delayed')).state === 'waiting',
    'Stop asks first; Cancel leaves the run waiting');
  await page.click('button[data-action="stop"]');
  await page.fill('#confirm-reason', 'browser test');
  await page.screenshot({ path: path.join(BUILD, 'dashboard-confirm.png') });
  await page.click('#confirm-ok');
  await page.locator('#run-state:text("cancelled")').waitFor({ timeout: 10000 });
  check(true, 'the Stop button, confirmed, cancels the waiting run');
  const status = JSON.parse(await wf(env, 'status', 'publish-draft:browser-delayed'));
  check(status.state === 'cancelled' && String(status.error).includes('browser test'),
    'Redis agrees: the run is cancelled, with the reason (' + status.error + ')');
  await page.locator('#run-history li[data-kind="stopped"]').waitFor();
  const history = await page.locator('#run-history li').evaluateAll((ls) => ls.map((l) => l.dataset.kind));
  check(history[0] === 'enqueued' && history[history.length - 1] === 'stopped' &&
    (await page.locator('#run-history li[data-kind="stopped"]').innerText()).includes('browser test'),
    'the run\'s history records the stop and its reason (' + history.join(', ') + ')');
  const historyText = await page.locator('#run-history').innerText();
  check(!/\b1\d{12}\b/.test(historyText) && historyText.includes('due at 20'),
    'times in the history are dates, not ms: ' + historyText.split('\n')[0]);
  check(await page.locator('button[data-action="retry"]').isEnabled(), 'retry is enabled for a cancelled run');

  // Restart: a finished run runs again from the start as a new attempt, after a confirmation.
  await page.goto(url + '#/run/publish-draft:browser-1');
  await page.locator('#run-state:text("completed")').waitFor();
  await page.click('button[data-action="restart"]');
  await page.click('#confirm-ok');
  await waitFor('browser-1 restarted', async () => {
    const st = JSON.parse(await wf(env, 'status', 'publish-draft:browser-1'));
    return st.attempt === 2 && st.state === 'completed';
  });
  check(true, 'the Restart button runs a completed run again (attempt 2 in Redis)');

  // The waterfall: one bar per step, each starting after the one before.
  await wf(env, 'run', 'stepper', '{"n":3,"work_ms":150}', '--id', 'steps-1', '--wait');
  await page.goto(url + '#/run/stepper:steps-1');
  await page.locator('#run-state:text("completed")').waitFor();
  const bars = await page.locator('#run-waterfall .wrow[data-step] .bar').evaluateAll((bs) =>
    bs.map((b) => ({ left: b.getBoundingClientRect().left, width: b.getBoundingClientRect().width })));
  check(bars.length === 3, 'the waterfall has a bar per step (' + bars.length + ')');
  check(bars[0].left < bars[1].left && bars[1].left < bars[2].left && bars.every((b) => b.width > 20),
    'each step\'s bar starts after the one before (' + bars.map((b) => Math.round(b.left)).join(' < ') + ')');
  await page.screenshot({ path: path.join(BUILD, 'dashboard-waterfall.png'), fullPage: true });

  // A run that does not exist: a not-found page, no button enabled (coming from a run whose
  // Retry was enabled, and on a fresh load; a well-formed id and a malformed one).
  const enabledActions = () => page.locator('#run-view button[data-action]:enabled').count();
  await page.goto(url + '#/run/publish-draft:01AAAAAAAAAAAAAAAAAAAAAAAA');
  await page.locator('#run-missing').waitFor({ state: 'visible' });
  check(await page.locator('#run-detail').isHidden(), 'a missing run hides the run details');
  check(await enabledActions() === 0, 'a missing run (after a real one) has no action enabled');
  for (const missing of ['publish-draft:01AAAAAAAAAAAAAAAAAAAAAAAB', 'not an id']) {
    const fresh = await browser.newPage();
    fresh.on('pageerror', (e) => pageErrors.push(e.message));
    await fresh.goto(url + '#/run/' + encodeURIComponent(missing));
    await fresh.locator('#run-missing').waitFor({ state: 'visible' });
    const text = await fresh.locator('#run-missing').innerText();
    check(text.includes('not found') && text.includes(missing), 'not-found page for ' + missing);
    check(await fresh.locator('#run-view button[data-action]:enabled').count() === 0,
      'no action enabled for ' + missing);
    await fresh.close();
  }

  await page.goto(url + '#/');
  await page.locator('#runs tr[data-id="publish-draft:browser-delayed"][data-state="cancelled"]').waitFor();
  await page.screenshot({ path: path.join(BUILD, 'dashboard.png'), fullPage: true });
  check(fs.statSync(path.join(BUILD, 'dashboard.png')).size > 10000, 'screenshot saved to ' + path.join(BUILD, 'dashboard.png'));

  // Filters and the search live in the URL: a reload or a shared link shows the same view.
  await page.selectOption('#filter-state', 'cancelled');
  await page.waitForFunction(() => location.hash.includes('state=cancelled'));
  await page.locator('#runs tr[data-id="publish-draft:browser-1"]').waitFor({ state: 'detached' });
  await page.reload();
  await page.locator('#runs tr[data-id="publish-draft:browser-delayed"]').waitFor();
  check(await page.locator('#filter-state').inputValue() === 'cancelled', 'a reload keeps the state filter');
  check(await page.locator('#runs tbody tr').count() === 1, 'a reload keeps the filtered list');
  await page.selectOption('#filter-state', '');
  await page.fill('#filter-q', 'browser-del');
  await page.click('#filters button[type="submit"]');
  await page.waitForFunction(() => location.hash.includes('q=browser-del'));
  await page.locator('#runs tr[data-id="publish-draft:browser-1"]').waitFor({ state: 'detached' });
  check(await page.locator('#runs tbody tr').count() === 1, 'search by id prefix finds one run');
  const shared = page.url();
  const other = await browser.newPage();
  other.on('pageerror', (e) => pageErrors.push(e.message));
  await other.goto(shared);
  await other.locator('#runs tr[data-id="publish-draft:browser-delayed"]').waitFor();
  check(await other.locator('#runs tbody tr').count() === 1 &&
    await other.locator('#filter-q').inputValue() === 'browser-del', 'a shared link shows the same search');
  await other.fill('#filter-q', 'publish-draft:browser-1');
  await other.press('#filter-q', 'Enter');
  await other.locator('#runs tr[data-id="publish-draft:browser-1"]').waitFor();
  check(await other.locator('#runs tbody tr').count() === 1, 'search by a whole run id');
  await other.click('#runs a:text("publish-draft:browser-1")');
  await other.locator('#run-state:text("completed")').waitFor();
  check((await other.locator('#all-runs').getAttribute('href')).includes('q=publish-draft'),
    'the way back from a run keeps the search');
  await other.close();

  // Bulk actions on a filter: a count, a confirmation with it, then the runs acted on.
  for (let i = 1; i <= 3; i++) await wf(env, 'run', 'fatal', '{}', '--id', 'bulk-' + i);
  await waitFor('three failed runs of fatal', async () =>
    JSON.parse(await wf(env, 'list', '--workflow', 'fatal', '--state', 'failed', '--json')).length === 3);
  await page.goto(url + '#/?workflow=fatal&state=failed');
  await page.locator('#runs tr[data-id="fatal:bulk-3"]').waitFor();
  check(await page.locator('#bulk-button').innerText() === 'Retry all failed', 'a failed filter offers Retry all failed');
  await page.click('#bulk-button');
  await page.locator('#confirm[open]').waitFor();
  const asked = await page.locator('#confirm-text').innerText();
  check(asked.includes('3 failed runs of fatal'), 'the confirmation gives the count: ' + asked);
  check(await page.locator('#confirm-reason-box').isHidden(), 'a bulk retry asks no reason');
  await page.screenshot({ path: path.join(BUILD, 'dashboard-bulk.png') });
  await page.click('#confirm-ok');
  await page.locator('#bulk-msg:text("Retried 3 of 3 failed runs of fatal")').waitFor();
  check(true, 'the page reports how many were retried');
  await waitFor('every bulk run retried', async () => {
    for (let i = 1; i <= 3; i++) {
      const st = JSON.parse(await wf(env, 'status', 'fatal:bulk-' + i));
      if (st.attempt !== 2 || st.state !== 'failed') return false;
    }
    return true;
  });
  check(true, 'Redis agrees: each failed run ran a second attempt');

  // Paging and a time range, kept in the URL: three runs of fatal, two per page.
  const apiCalls = [];
  const onRequest = (r) => { if (r.url().includes('/api/runs?')) apiCalls.push(new URL(r.url()).search); };
  page.on('request', onRequest);
  await page.goto(url + '#/?workflow=fatal&limit=2');
  await page.locator('#page-info:text("runs 1–2")').waitFor();
  const ids = () => page.locator('#runs tbody tr').evaluateAll((rs) => rs.map((r) => r.dataset.id));
  const first = await ids();
  check(first.length === 2 && await page.locator('#page-newer').isDisabled(),
    'the first page shows 2 runs (' + first.join(', ') + '), nothing newer');
  await page.click('#page-older');
  await page.waitForFunction(() => location.hash.includes('offset=2'));
  await page.locator('#page-info:text("runs 3–3")').waitFor();
  const second = await ids();
  check(second.length === 1 && !first.includes(second[0]) && second[0].startsWith('fatal:bulk-') &&
    await page.locator('#page-older').isDisabled(), 'the second page shows the third run (' + second[0] + ')');
  await page.selectOption('#filter-since', '1h');
  await page.waitForFunction(() => location.hash.includes('since=1h') && !location.hash.includes('offset'));
  await page.locator('#page-info:text("runs 1–2")').waitFor();
  check(apiCalls.some((q) => q.includes('since=1h') && !q.includes('offset')),
    'a time range asks the API for it, from the first page again');
  await page.reload();
  await page.locator('#page-info:text("runs 1–2")').waitFor();
  check(await page.locator('#filter-since').inputValue() === '1h', 'a reload keeps the time range');
  page.off('request', onRequest);

  for (const id of ['bulk-w1', 'bulk-w2']) await wf(env, 'run', 'publish-draft', '{}', '--delay', '600000', '--id', id);
  await page.goto(url + '#/?workflow=publish-draft&state=waiting');
  await page.locator('#runs tr[data-id="publish-draft:bulk-w2"]').waitFor();
  check(await page.locator('#bulk-button').innerText() === 'Stop all waiting', 'a waiting filter offers Stop all waiting');
  await page.click('#bulk-button');
  await page.click('#confirm-cancel');
  await page.locator('#bulk-msg:text("Nothing done")').waitFor();
  check(JSON.parse(await wf(env, 'status', 'publish-draft:bulk-w1')).state === 'waiting', 'a cancelled bulk stop changes nothing');
  await page.click('#bulk-button');
  check((await page.locator('#confirm-text').innerText()).includes('2 waiting runs'), 'stop all: the count is 2');
  await page.click('#confirm-ok');
  await page.locator('#bulk-msg:text("Stopped 2 of 2")').waitFor();
  for (const id of ['bulk-w1', 'bulk-w2']) {
    check(JSON.parse(await wf(env, 'status', 'publish-draft:' + id)).state === 'cancelled', id + ' is cancelled in Redis');
  }
  await page.goto(url + '#/?workflow=publish-draft');
  await page.locator('#runs tr[data-id="publish-draft:bulk-w1"]').waitFor();
  check(await page.locator('#bulk').isHidden(), 'no bulk action without a state filter');

  // A workflow's history: a chart of the last hour, or day, when the filter names a workflow.
  await page.goto(url + '#/?workflow=publish-draft');
  await page.locator('#history-chart svg rect.completed').first().waitFor();
  const done = JSON.parse(await wf(env, 'list', '--workflow', 'publish-draft', '--state', 'completed', '--json')).length;
  const charted = Number(await page.locator('#history-chart').getAttribute('data-completed'));
  check(done >= 1 && charted >= done, 'the chart counts ' + charted + ' completions (' + done + ' runs completed)');
  check((await page.locator('#history-totals').innerText()).includes('in the last hour'), 'the last hour by default');
  await page.screenshot({ path: path.join(BUILD, 'dashboard-history.png') });
  await page.click('#history button[data-range="1d"]');
  await page.waitForFunction(() => location.hash.includes('range=1d'));
  await page.locator('#history-totals:text("in the last day")').waitFor();
  check(Number(await page.locator('#history-chart').getAttribute('data-completed')) === charted,
    'the last day, kept in the URL, counts the same runs');

  // Pause and resume a whole workflow from its row.
  const statsOf = async (w) => JSON.parse(await wf(env, 'stats', '--workflow', w, '--json'))[0];
  await page.click('#workflows tr[data-workflow="fatal"] button[data-workflow-action="pause"]');
  await page.locator('#workflows tr[data-workflow="fatal"] .paused-tag').waitFor();
  check((await statsOf('fatal')).paused === true && (await statsOf('publish-draft')).paused === false,
    'Pause pauses that workflow in Redis, and only it');
  await page.click('#workflows tr[data-workflow="fatal"] button[data-workflow-action="resume"]');
  await page.locator('#workflows tr[data-workflow="fatal"] .paused-tag').waitFor({ state: 'detached' });
  check((await statsOf('fatal')).paused === false, 'Resume resumes it');

  // Schedules: listed on their own page, reached from the header; pause, run now, resume.
  await wf(env, 'schedule', 'add', 'nightly', 'publish-draft', '@daily', '{"title":"Nightly"}');
  await page.click('#nav-schedules');
  const sched = page.locator('#schedules tr[data-schedule="publish-draft/nightly"]');
  await sched.waitFor();
  const row = await sched.innerText();
  check(row.includes('@daily') && row.includes('Nightly'), 'the schedules page lists nightly: ' + row.replace(/\s+/g, ' '));
  const listed = async () => JSON.parse(await wf(env, 'schedule', 'list', '--json'))[0];
  await sched.locator('button[data-schedule-action="pause"]').click();
  await sched.locator('.state-paused').waitFor();
  check((await listed()).paused === true, 'Pause pauses the schedule in Redis');
  await sched.locator('button[data-schedule-action="trigger"]').click();
  await page.locator('#schedule-msg a').waitFor();
  const started = await page.locator('#schedule-msg a').innerText();
  await waitFor('the triggered run completes', async () =>
    JSON.parse(await wf(env, 'status', started)).state === 'completed');
  check(started.startsWith('publish-draft:sched-nightly'), 'Run now started ' + started + ', which completed');
  await page.screenshot({ path: path.join(BUILD, 'dashboard-schedules.png') });
  await sched.locator('button[data-schedule-action="resume"]').click();
  await sched.locator('.state-paused').waitFor({ state: 'detached' });
  check((await listed()).paused === false && (await listed()).fires === 1, 'Resume resumes it; it fired once');

  // Dead letters: an entry that is no run record, moved aside by the worker, on its own page.
  await redisCommand(redisPort, 'XADD wf:{fatal}:queue * x no-record-here');
  await page.click('#nav-dead');
  await page.locator('#dead-workflows a[data-workflow="fatal"]').waitFor();
  await page.click('#dead-workflows a[data-workflow="fatal"]');
  await page.locator('#dead tbody tr').first().waitFor();
  const letter = await page.locator('#dead tbody tr').first().innerText();
  check(letter.includes("no field 'r'") && await page.locator('#dead tbody tr').count() === 1,
    'the dead-letters page shows the entry the worker moved aside: ' + letter.replace(/\s+/g, ' '));
  check((await page.locator('#dead-workflows a[data-workflow="fatal"]').innerText()).includes('(1)'),
    'and its count per workflow');
  await page.screenshot({ path: path.join(BUILD, 'dashboard-dead.png') });

  // A phone: a viewport meta tag, nothing wider than the screen (tables scroll inside their panel).
  const phone = await browser.newPage({ viewport: { width: 390, height: 844 }, isMobile: true,
    hasTouch: true, deviceScaleFactor: 1 });
  phone.on('pageerror', (e) => pageErrors.push(e.message));
  await phone.goto(url + '#/run/publish-draft:browser-1');
  await phone.locator('#run-state:text("completed")').waitFor();
  check(await phone.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth),
    'a run page fits a 390 px wide phone');
  await phone.goto(url + '#/run/stepper:steps-1');
  await phone.locator('#run-waterfall .bar').first().waitFor();
  check(await phone.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth),
    'a run page with its waterfall fits a phone');
  await phone.goto(url + '#/schedules');
  await phone.locator('#schedules tr[data-schedule="publish-draft/nightly"]').waitFor();
  check(await phone.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth),
    'the schedules page fits a phone');
  await phone.goto(url + '#/dead?workflow=fatal');
  await phone.locator('#dead tbody tr').first().waitFor();
  check(await phone.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth),
    'the dead-letters page fits a phone');
  await phone.goto(url + '#/?workflow=fatal&state=failed');
  await phone.locator('#history-chart svg').waitFor();
  await phone.locator('#bulk-button').waitFor();
  check(await phone.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth),
    'a workflow\'s history and bulk action fit a phone');
  await phone.goto(url + '#/');
  await phone.locator('#runs tr[data-id="publish-draft:browser-1"]').waitFor();
  check(await phone.locator('meta[name="viewport"]').count() === 1, 'the page has a viewport meta tag');
  check(await phone.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth),
    'the overview fits a 390 px wide phone (scrollWidth ' +
    await phone.evaluate(() => document.documentElement.scrollWidth) + ')');
  check(await phone.evaluate(() => {
    const box = document.querySelector('#workflows').parentElement;
    return getComputedStyle(box).overflowX === 'auto' && box.scrollWidth > box.clientWidth;
  }), 'the workflows table scrolls sideways inside its panel');
  await phone.screenshot({ path: path.join(BUILD, 'dashboard-phone.png'), fullPage: true });
  await phone.close();

  // Dark mode: from prefers-color-scheme, and a toggle kept in localStorage.
  const background = (p) => p.evaluate(() => getComputedStyle(document.body).backgroundColor);
  const isDark = (rgb) => rgb.match(/\d+/g).slice(0, 3).map(Number).reduce((a, b) => a + b) < 200;
  const darkCtx = await browser.newContext({ colorScheme: 'dark', viewport: { width: 1280, height: 900 } });
  const dark = await darkCtx.newPage();
  dark.on('pageerror', (e) => pageErrors.push(e.message));
  await dark.goto(url + '#/schedules');
  await dark.locator('#schedules tr[data-schedule="publish-draft/nightly"]').waitFor();
  check(isDark(await dark.evaluate(() => getComputedStyle(document.querySelector('#schedules').closest('.panel')).backgroundColor)),
    'the schedules page is dark too');
  await dark.goto(url + '#/?workflow=fatal&state=failed');
  await dark.locator('#bulk-button').click();
  await dark.locator('#confirm[open]').waitFor();
  check(isDark(await dark.evaluate(() => getComputedStyle(document.querySelector('#confirm')).backgroundColor)),
    'the confirmation dialog is dark too');
  await dark.click('#confirm-cancel');
  await dark.goto(url);
  await dark.locator('#runs tr[data-id="publish-draft:browser-1"]').waitFor();
  check(isDark(await background(dark)), 'dark when the system prefers it (' + await background(dark) + ')');
  await dark.screenshot({ path: path.join(BUILD, 'dashboard-dark.png') });
  await dark.goto(url + '#/run/stepper:steps-1');
  await dark.locator('#run-waterfall .bar').first().waitFor();
  check(isDark(await dark.evaluate(() => getComputedStyle(document.querySelector('#run-waterfall').closest('.panel')).backgroundColor)),
    'the waterfall\'s panel is dark too');
  await dark.goto(url);
  await dark.locator('#runs tr[data-id="publish-draft:browser-1"]').waitFor();
  await dark.click('#theme-toggle');
  check(!isDark(await background(dark)), 'the toggle switches to light');
  await dark.reload();
  await dark.locator('#runs tr[data-id="publish-draft:browser-1"]').waitFor();
  check(!isDark(await background(dark)) &&
    await dark.evaluate(() => localStorage.getItem('wf-theme')) === 'light', 'the choice survives a reload');
  await dark.click('#theme-toggle');
  check(isDark(await background(dark)), 'and switches back to dark');
  await darkCtx.close();
  const lightPage = await browser.newPage({ colorScheme: 'light' });
  await lightPage.goto(url);
  check(!isDark(await background(lightPage)), 'light when the system prefers light');
  await lightPage.click('#theme-toggle');
  check(isDark(await background(lightPage)), 'the toggle switches a light page to dark');
  await lightPage.close();

  // Under --base-path, as behind a reverse proxy: every request the page makes stays under it.
  const baseUrl = (await startWeb(env, ['--base-path', '/ops/wf'], 'ops/wf/'));
  const based = await browser.newPage();
  based.on('pageerror', (e) => pageErrors.push(e.message));
  const paths = [];
  based.on('request', (r) => paths.push(new URL(r.url()).pathname));
  await based.goto(baseUrl);
  await based.locator('#runs tr[data-id="publish-draft:browser-1"]').waitFor();
  await based.click('#runs a:text("publish-draft:browser-1")');
  await based.locator('#run-state:text("completed")').waitFor();
  await based.click('#nav-schedules');
  await based.locator('#schedules tr[data-schedule="publish-draft/nightly"]').waitFor();
  await based.click('#nav-dead');
  await based.locator('#dead-workflows a[data-workflow="fatal"]').waitFor();
  await based.goto(baseUrl + '#/?workflow=publish-draft');
  await based.locator('#history-chart svg').waitFor();
  check(paths.length > 3 && paths.every((p) => p.startsWith('/ops/wf/')),
    'under --base-path every request stays under it (' + [...new Set(paths)].join(' ') + ')');
  await based.close();

  // With a token: the page asks for it once, then shows the runs.
  const tokenUrl = await startWeb({ ...env, WF_WEB_TOKEN: TOKEN }, []);
  const page2 = await browser.newPage();
  await page2.goto(tokenUrl);
  await page2.locator('#token-box').waitFor({ state: 'visible' });
  check(true, 'with --token the page asks for the token');
  await page2.fill('#token-input', TOKEN);
  await page2.click('#token-form button');
  await page2.locator('#runs tr[data-id="publish-draft:browser-1"]').waitFor();
  check(true, 'with the token the runs show');

  // No live worker: runs queued for a workflow no live worker runs get a warning, on the
  // overview and on the run's page.
  check(await page.locator('#worker-warnings').isHidden(), 'no warning while a worker runs publish-draft');
  const gone = new Promise((r) => worker.once('exit', r));
  worker.kill('SIGTERM');
  await gone;
  await wf(env, 'run', 'publish-draft', '{}', '--id', 'orphan');
  await page.goto(url + '#/');
  await page.locator('#worker-warnings p[data-workflow="publish-draft"]').waitFor();
  check((await page.locator('#worker-warnings').innerText()).includes('No live worker runs publish-draft'),
    'the overview warns that no live worker runs publish-draft');
  check(await page.locator('#workflows tr[data-workflow="publish-draft"] .warn-tag').count() === 1,
    'the workflow\'s row is marked');
  await page.screenshot({ path: path.join(BUILD, 'dashboard-warning.png'), fullPage: true });
  await page.goto(url + '#/run/publish-draft:orphan');
  await page.locator('#run-state:text("queued")').waitFor();
  check(await page.locator('#run-warning').isVisible(), 'the queued run\'s page warns too');
  await page.goto(url + '#/run/publish-draft:browser-1');
  await page.locator('#run-state:text("completed")').waitFor();
  check(await page.locator('#run-warning').isHidden(), 'a finished run\'s page does not');

  check(pageErrors.length === 0, 'no JavaScript errors (' + pageErrors.join('; ') + ')');
}

const deadline = setTimeout(async () => {
  console.error('dashboard: gave up after ' + LIMIT_MS / 1000 + ' s');
  dumpLogs();
  await stopAll();
  process.exit(1);
}, LIMIT_MS);

let failed = false;
try {
  await main();
} catch (e) {
  failed = true;
  console.error('not ok - ' + (e && e.stack ? e.stack : e));
  dumpLogs();
} finally {
  await stopAll();
  clearTimeout(deadline);
}
console.log(failed ? 'dashboard: FAILED after ' + checks + ' checks' : 'dashboard: ' + checks + ' checks passed');
process.exit(failed ? 1 : 0);
