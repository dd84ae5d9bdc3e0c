// The dashboard under load, in headless Chromium against the real collector binary (issue 20):
// a card refused for load (503 `overloaded`) counts down and asks again by itself, at most
// three times, then shows the error with a "Try again" button; a query over its time budget
// (503 `query_timeout`) is not asked again by itself but shows the advice and the button.
// The project's only heavy-query slot is held by a person's export the test does not read
// (an export holds its slot while it streams), so the refusals are certain, not timed.
import { spawn } from 'node:child_process';
import { mkdtempSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import assert from 'node:assert/strict';
import { chromium } from 'playwright-core';

const root = resolve(import.meta.dirname, '../..');
const bin = process.env.PULSELINE_COLLECTOR_BIN || join(root, 'target/debug/pulseline-collector');
const shots = join(root, 'target/dashboard-screenshots');
mkdirSync(shots, { recursive: true });

const collectors = [];
async function startCollector(env) {
  const data = mkdtempSync(join(tmpdir(), 'pulseline-busy-'));
  const collector = spawn(bin, [], {
    env: { ...process.env, PULSELINE_LISTEN: '127.0.0.1:0', PULSELINE_DATABASE_URL: `sqlite://${data}/p.db`,
      PULSELINE_SQLITE_SYNCHRONOUS: 'normal', RUST_LOG: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  collectors.push({ collector, data, exited: new Promise((ok) => collector.once('exit', ok)) });
  let out = '';
  const { base, password } = await new Promise((ok, fail) => {
    collector.stdout.on('data', (d) => {
      out += d;
      const port = out.match(/Listening on http:\/\/127\.0\.0\.1:(\d+)/);
      const pw = out.match(/password:\s+(\S+)/);
      if (port && pw) ok({ base: `http://127.0.0.1:${port[1]}`, password: pw[1] });
    });
    collector.on('exit', (c) => fail(new Error(`collector exited (${c}): ${out}`)));
    setTimeout(() => fail(new Error(`collector did not start: ${out}`)), 30000);
  });
  // A project and its write key, through the dashboard's API as the admin.
  const login = await fetch(`${base}/api/dash/session`, { method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ email: 'admin@localhost', password }) });
  assert.equal(login.status, 200);
  const cookie = login.headers.get('set-cookie').split(';')[0];
  const { csrf_token: csrf } = await login.json();
  const created = await (await fetch(`${base}/api/dash/projects`, { method: 'POST',
    headers: { 'content-type': 'application/json', cookie, 'x-csrf-token': csrf, origin: base },
    body: JSON.stringify({ name: 'Busy' }) })).json();
  const ingest = async (batch) => {
    const sent = await fetch(`${base}/v1/batch`, { method: 'POST', body: JSON.stringify({ batch }), headers: {
      'content-type': 'application/json', authorization: `Basic ${Buffer.from(`${created.write_key}:`).toString('base64')}` } });
    assert.equal(sent.status, 200, await sent.text());
  };
  return { base, password, cookie, project: created.id, ingest };
}

// `n` events of `user`, each with a `pad` of `bytes` characters, in the last hour.
async function send(app, user, n, bytes) {
  const now = Date.now();
  for (let first = 0; first < n; first += 2000) {
    const batch = [];
    for (let i = first; i < Math.min(n, first + 2000); i++) {
      batch.push({ type: 'track', userId: user, event: 'buy', messageId: `${user}-${i}`,
        timestamp: new Date(now - 3600000 + i).toISOString(), properties: { plan: 'pro', pad: 'x'.repeat(bytes) } });
    }
    await app.ingest(batch);
  }
}

async function loggedIn(browser, app) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, colorScheme: 'light' });
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  // A 503 is logged by the browser as a failed resource: expected here, not an error.
  page.on('console', (m) => { if (m.type() === 'error' && !/status of 503/.test(m.text())) errors.push(m.text()); });
  // Whether a card ever showed the busy countdown.
  await page.addInitScript(() => {
    new MutationObserver(() => { if (document.querySelector('.busy')) window.sawBusy = true; })
      .observe(document, { childList: true, subtree: true });
  });
  const series = [];
  page.on('request', (r) => { if (r.url().includes('/series?')) series.push(r.url()); });
  await page.goto(app.base);
  await page.fill('input[name=email]', 'admin@localhost');
  await page.fill('input[name=password]', app.password);
  await page.click('button[type=submit]');
  await page.waitForSelector('#events-today');
  errors.length = 0; // the logged-out start's 401 from /api/dash/session is expected
  return { page, errors, series };
}

// Explore with a property filter: read from the raw events, a heavy query.
const heavy = (app) => `${app.base}/#/p/${app.project}/explore?event=buy&filter_property=plan&filter_value=pro`;

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync'],
});
let failed = false;
try {
  // ---- busy: one heavy query per project, held by an export nobody reads --------------------
  const busy = await startCollector({ PULSELINE_DASHBOARD_QUERIES_PER_PROJECT: '1', PULSELINE_DASHBOARD_QUERY_WAIT_MS: '0',
    PULSELINE_MAX_REQUEST_BYTES: String(16 << 20) });
  // 32 MB of one person's events: far more than the sockets buffer, so the export stays open.
  await send(busy, 'whale', 8000, 4000);
  // Held responses stay referenced: a fetch body nobody reads is cancelled when it is garbage
  // collected, which would free the slot at a time no test chose.
  const held = [];
  const hold = async () => {
    // The page's own heavy reads (the chart, then the events table) may hold the slot a moment
    // after the chart is drawn: ask until the export gets it.
    for (let tries = 0; ; tries++) {
      const stop = new AbortController();
      const resp = await fetch(`${busy.base}/api/dash/projects/${busy.project}/persons/export?user_id=whale`,
        { headers: { cookie: busy.cookie }, signal: stop.signal });
      if (resp.status === 200) {
        held.push(resp);
        return () => stop.abort();
      }
      assert.equal(resp.status, 503, await resp.text());
      assert.ok(tries < 100, 'the heavy-query slot never came free for the export');
      await new Promise((ok) => setTimeout(ok, 100));
    }
  };
  const { page, errors, series } = await loggedIn(browser, busy);

  // Refused, the card counts down and asks again; once the slot is free, the chart comes.
  let release = await hold();
  await page.goto(heavy(busy));
  await page.waitForSelector('#explore-chart .busy:has-text("The server is busy; retrying in 2 s…")');
  await page.screenshot({ path: join(shots, 'busy-retrying.png') });
  release();
  await page.waitForSelector('#explore-chart canvas', { timeout: 30000 });
  assert.equal(await page.locator('#explore-chart .error').count(), 0);

  // Refused four times (the first ask and three more), the card shows the error and a button.
  release = await hold();
  series.length = 0;
  await page.reload();
  await page.waitForSelector('#explore-chart .try-again', { timeout: 30000 });
  assert.equal(series.length, 4, `one ask and three retries: ${series.length}`);
  assert.match(await page.textContent('#explore-chart .error'), /PULSELINE_DASHBOARD_QUERIES_PER_PROJECT = 1/);
  await page.screenshot({ path: join(shots, 'busy-refused.png') });
  release();
  // The button asks again; whether the export's slot is free yet or not, the card ends with
  // the chart (a refusal now counts down and asks again).
  await page.click('#explore-chart .try-again');
  await page.waitForSelector('#explore-chart canvas', { timeout: 30000 });
  assert.deepEqual(errors, []);

  // A person's export refused for load says why on the page (it used to fail inside the
  // browser's download list); once the slot is free, the same button downloads it.
  await page.goto(`${busy.base}/#/p/${busy.project}/persons`);
  await page.waitForSelector('#person-id');
  await page.fill('#person-id', 'whale');
  release = await hold();
  await page.click('#person-export');
  await page.waitForSelector('#person-msg.error', { timeout: 30000 });
  assert.match(await page.textContent('#person-msg'), /PULSELINE_DASHBOARD_QUERIES_PER_PROJECT = 1/);
  await page.screenshot({ path: join(shots, 'busy-export-refused.png') });
  release();
  // The aborted export may hold the slot a moment longer: click until the download comes.
  let download = null;
  for (let tries = 0; !download; tries++) {
    assert.ok(tries < 50, 'the export never got the slot back');
    const got = page.waitForEvent('download', { timeout: 60000 }).catch(() => null);
    await page.click('#person-export');
    const outcome = await Promise.race([got, page.waitForSelector('#person-msg.error', { timeout: 60000 }).then(() => null)]);
    if (outcome) download = outcome;
    else await page.waitForTimeout(200);
  }
  const lines = readFileSync(await download.path(), 'utf8').trim().split('\n');
  assert.equal(lines.length, 8000, 'every event of the person is in the download');
  assert.equal(JSON.parse(lines[0]).userId, 'whale');
  assert.match(await page.textContent('#person-msg'), /^Exported [\d,]+ KB/);
  assert.deepEqual(errors, []);

  // ---- over the time budget: 1 ms -------------------------------------------------------------
  const slow = await startCollector({ PULSELINE_DASHBOARD_QUERY_TIMEOUT_MS: '1' });
  await send(slow, 'u', 20000, 10);
  const s = await loggedIn(browser, slow);
  await s.page.goto(heavy(slow));
  await s.page.waitForSelector('#explore-chart .try-again', { timeout: 30000 });
  const message = await s.page.textContent('#explore-chart .error');
  assert.match(message, /longer than 1 ms/);
  assert.match(message, /choose a shorter range or fewer filters/);
  assert.equal(s.series.length, 1, 'a query over its budget is not asked again by itself');
  assert.equal(await s.page.evaluate(() => window.sawBusy ?? false), false, 'no countdown for a timeout');
  await s.page.screenshot({ path: join(shots, 'busy-timeout.png') });
  // "Try again" asks once more, and the same query answers the same.
  const first = await s.page.$('#explore-chart .try-again');
  await Promise.all([s.page.waitForRequest((r) => r.url().includes('/series?')), first.click()]);
  await s.page.waitForFunction((el) => !el.isConnected, first);
  await s.page.waitForSelector('#explore-chart .try-again');
  assert.equal(s.series.length, 2);
  assert.match(await s.page.textContent('#explore-chart .error'), /shorter range or fewer filters/);
  // A person whose events cannot be counted in time can still be deleted (a deletion has no
  // time budget): the confirmation says so instead of ending in the error.
  await s.page.goto(`${slow.base}/#/p/${slow.project}/persons`);
  await s.page.waitForSelector('#person-id');
  await s.page.fill('#person-id', 'u');
  await s.page.click('#person-delete');
  await s.page.waitForSelector('#person-confirm-text');
  assert.match(await s.page.textContent('#person-confirm-text'), /were not counted\. Delete every event of u and of the ids linked to it/);
  await s.page.screenshot({ path: join(shots, 'busy-delete-uncounted.png') });
  await s.page.click('#person-confirm-delete');
  await s.page.waitForSelector('#person-msg >> text=Deleted 20,000 events of u', { timeout: 60000 });
  assert.deepEqual(s.errors, []);
  console.log('busy and over-budget cards: ok');
} catch (e) {
  failed = true;
  console.error(e);
} finally {
  await browser.close();
  for (const { collector, data, exited } of collectors) {
    collector.kill();
    await exited;
    // The collector's database is kept for a look only when the test failed.
    if (failed) console.error(`collector data: ${data}`);
    else rmSync(data, { recursive: true, force: true });
  }
}
process.exit(failed ? 1 : 0);
