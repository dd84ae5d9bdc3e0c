// Browser test of the dashboard against the real collector binary, in headless Debian Chromium
// (playwright-core, no browser download). Logs in, creates a project, copies its write key,
// sends events with it through the Segment HTTP API and the Rust SDK, sees them in the live tail and on the
// chart, exports CSV, and saves screenshots of the main pages to target/dashboard-screenshots.
// Alerting: adds a webhook channel pointing at a local stand-in receiver and sends it a test,
// writes a threshold rule with its preview chart, sends events until it fires, and sees the
// alert in the bell and the history and its delivery in the log.
import { execFileSync, spawn } from 'node:child_process';
import { createServer } from 'node:http';
import { mkdtempSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import assert from 'node:assert/strict';
import { chromium } from 'playwright-core';

const root = resolve(import.meta.dirname, '../..');
const bin = process.env.PULSELINE_COLLECTOR_BIN || join(root, 'target/debug/pulseline-collector');
const shots = join(root, 'target/dashboard-screenshots');
mkdirSync(shots, { recursive: true });
const data = mkdtempSync(join(tmpdir(), 'pulseline-dash-'));

// The stand-in webhook receiver: /hook answers 200 and keeps what it got; /gone answers 404
// (a deleted webhook), which disables the channel.
const received = [];
const receiver = createServer((req, res) => {
  let body = '';
  req.on('data', (d) => { body += d; });
  req.on('end', () => {
    if (req.url === '/gone') { res.writeHead(404, { 'content-type': 'text/plain' }); res.end('Unknown Webhook'); return; }
    received.push({ headers: req.headers, body: JSON.parse(body) });
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end('{"received":true}');
  });
});
await new Promise((ok) => receiver.listen(0, '127.0.0.1', ok));
const hook = `http://127.0.0.1:${receiver.address().port}`;
const waitFor = async (what, check, ms = 30000) => {
  const until = Date.now() + ms;
  for (;;) {
    const got = await check();
    if (got) return got;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((ok) => setTimeout(ok, 250));
  }
};

const collector = spawn(bin, [], {
  env: { ...process.env, PULSELINE_LISTEN: '127.0.0.1:0', PULSELINE_DATABASE_URL: `sqlite://${data}/p.db`,
    PULSELINE_SQLITE_SYNCHRONOUS: 'normal', RUST_LOG: 'warn',
    // The receiver is on loopback; rules are evaluated every second instead of every 30.
    PULSELINE_ALLOW_PRIVATE_WEBHOOKS: 'true', PULSELINE_RULES_INTERVAL_SECS: '1',
    // Explore reads at most 30 raw events: all events grouped by a property goes past it.
    PULSELINE_DASHBOARD_SCAN_ROWS: '30' },
  stdio: ['ignore', 'pipe', 'inherit'],
});
const collectorExited = new Promise((ok) => collector.once('exit', ok));
let out = '';
const started = new Promise((ok, fail) => {
  collector.stdout.on('data', (d) => {
    out += d;
    const port = out.match(/Listening on http:\/\/127\.0\.0\.1:(\d+)/);
    const pw = out.match(/password:\s+(\S+)/);
    if (port && pw) ok({ base: `http://127.0.0.1:${port[1]}`, password: pw[1] });
  });
  collector.on('exit', (c) => fail(new Error(`collector exited (${c}): ${out}`)));
  setTimeout(() => fail(new Error(`collector did not start: ${out}`)), 30000);
});

const { base, password } = await started;
console.log(`collector at ${base}`);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync'],
});
let failed = false;
let page = null;
try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, acceptDownloads: true,
    colorScheme: 'light' });
  await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: base });
  page = await context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });

  // Log in (a wrong password first: the error is shown).
  await page.goto(base);
  await page.screenshot({ path: join(shots, 'login.png') });
  await page.fill('input[name=email]', 'admin@localhost');
  await page.fill('input[name=password]', 'not the password');
  await page.click('button[type=submit]');
  await page.waitForSelector('text=wrong e-mail or password');
  await page.fill('input[name=password]', password);
  await page.click('button[type=submit]');
  await page.waitForSelector('#events-today');

  // Create a project: its keys are shown once, with snippets carrying the key and host.
  page.once('dialog', (d) => d.accept('Browser Test'));
  await page.click('#new-project');
  await page.waitForSelector('code.key[data-kind=write]');
  const key = await page.textContent('code.key[data-kind=write]');
  assert.match(key, /^plw_/);
  await page.click('#new-key button:has-text("Copy key")');
  const copied = await page.evaluate(() => navigator.clipboard.readText());
  assert.equal(copied, key, 'the copy button puts the key on the clipboard');
  const snippet = await page.textContent('#new-key pre');
  assert.ok(snippet.includes(key) && snippet.includes(base), 'snippets carry the real key and host');
  await page.screenshot({ path: join(shots, 'keys.png'), fullPage: true });
  // Write keys are public: after the one-time view, the Keys page still shows it with snippets.
  await page.reload();
  await page.waitForSelector('.snippets pre');
  assert.equal(await page.textContent('code.key[data-kind=write]'), key, 'the write key is shown again');
  assert.ok((await page.textContent('.snippets pre')).includes(key), 'and so are its snippets');
  const projectUrl = page.url().replace(/\/keys$/, '');

  // Events from the copied key, through the Segment HTTP API.
  await page.goto(`${projectUrl}/overview`);
  await page.waitForSelector('#live-tail');
  const now = Date.now();
  // Spread over the last minutes, but never before today's midnight (UTC, the project's zone):
  // a run just after midnight would otherwise count some of them as yesterday's.
  const today = new Date(now).setUTCHours(0, 0, 0, 0);
  const batch = [];
  for (let i = 0; i < 25; i++) {
    batch.push({ type: 'track', userId: `user-${i % 5}`, event: 'Browser Test Event',
      properties: { plan: i % 2 ? 'pro' : 'free', amount: i }, timestamp: new Date(Math.max(now - i * 60000, today)).toISOString() });
  }
  for (const [metric, value] of [['LCP', 1800], ['LCP', 2600], ['LCP', 4500], ['INP', 120], ['CLS', 0.05], ['FCP', 1500], ['TTFB', 600]]) {
    batch.push({ type: 'track', anonymousId: 'anon-1', event: 'Web Vital',
      properties: { metric, value, rating: 'good', delta: value, navigationType: 'navigate', path: '/pricing' } });
  }
  const resp = await fetch(`${base}/v1/batch`, { method: 'POST',
    headers: { authorization: `Basic ${Buffer.from(`${copied}:`).toString('base64')}`, 'content-type': 'application/json' },
    body: JSON.stringify({ batch }) });
  assert.equal(resp.status, 200, await resp.text());
  // One with numbers a double would change (1.1, 3.402823669209385e+38): shown as sent.
  const exact = '{"price":1.10,"big":340282366920938463463374607431768211455}';
  const exactResp = await fetch(`${base}/v1/track`, { method: 'POST',
    headers: { authorization: `Basic ${Buffer.from(`${copied}:`).toString('base64')}`, 'content-type': 'application/json' },
    body: `{"userId":"user-exact","event":"Exact Numbers","properties":${exact}}` });
  assert.equal(exactResp.status, 200, await exactResp.text());

  // The live tail shows them without a reload.
  await page.waitForSelector('#live-tail >> text=Browser Test Event', { timeout: 15000 });
  await page.waitForFunction((t) => document.querySelector('#live-tail')?.textContent.includes(t), exact, { timeout: 15000 });
  await page.reload();
  await page.waitForFunction(() => document.querySelector('#events-today')?.textContent === '33');
  await page.waitForSelector('#live-tail >> text=Browser Test Event', { timeout: 15000 });

  // The Rust SDK (examples/rust-quickstart: identify, page, two tracks) with the copied key:
  // its events reach the live tail without a reload and count on the overview.
  const quickstart = process.env.PULSELINE_QUICKSTART_BIN || join(root, 'target/debug/rust-quickstart');
  const sdkOut = execFileSync(quickstart, [], { encoding: 'utf8', timeout: 30000,
    env: { ...process.env, PULSELINE_HOST: base, PULSELINE_WRITE_KEY: copied } });
  assert.match(sdkOut, /sent 4 of 4 events/, sdkOut);
  await page.waitForSelector('#live-tail >> text=order_completed', { timeout: 15000 });
  await page.reload();
  const eventsSoFar = 37; // 33 through the HTTP API, 4 from the Rust SDK
  await page.waitForFunction((n) => document.querySelector('#events-today')?.textContent === String(n), eventsSoFar);
  await page.screenshot({ path: join(shots, 'overview.png'), fullPage: true });

  // Explore: the chart and the table of the events behind it; CSV export.
  await page.goto(`${projectUrl}/explore?event=${encodeURIComponent('Browser Test Event')}&from=${now - 2 * 3600000}&to=${now + 60000}&bucket=300000`);
  await page.waitForSelector('#explore-chart canvas');
  await page.waitForSelector('#events-table tbody tr');
  assert.equal(await page.locator('#events-table tbody tr').count(), 25);
  // Hover shows the value of a bucket in the legend.
  const box = await page.locator('#explore-chart .u-over').boundingBox();
  await page.mouse.move(box.x + box.width - 30, box.y + box.height / 2);
  await page.screenshot({ path: join(shots, 'explore.png'), fullPage: true });
  const [download] = await Promise.all([page.waitForEvent('download'), page.click('#events-csv')]);
  const csv = readFileSync(await download.path(), 'utf8').trim().split('\n');
  assert.equal(csv[0], 'timestamp,event,user,message_id,properties');
  assert.equal(csv.length, 26, 'a header and 25 events');
  assert.ok(csv.slice(1).every((l) => l.includes(',Browser Test Event,user-')));
  const [seriesDownload] = await Promise.all([page.waitForEvent('download'), page.click('#series-csv')]);
  const series = readFileSync(await seriesDownload.path(), 'utf8').trim().split('\n');
  const total = series.slice(1).reduce((n, l) => n + Number(l.split(',')[1]), 0);
  assert.equal(total, 25, 'the series CSV counts every event');

  // Drag to zoom narrows the range.
  await page.mouse.move(box.x + box.width * 0.5, box.y + 40);
  await page.mouse.down();
  await page.mouse.move(box.x + box.width * 0.9, box.y + 40, { steps: 5 });
  await page.mouse.up();
  await page.waitForFunction(() => /from=\d+&to=\d+/.test(location.hash) && !location.hash.includes('bucket=300000'));

  // Grouped by plan.
  await page.goto(`${projectUrl}/explore?event=${encodeURIComponent('Browser Test Event')}&from=${now - 2 * 3600000}&to=${now + 60000}&group_by=plan`);
  await page.waitForSelector('#explore-chart canvas');
  await page.waitForSelector('.u-legend >> text=pro');
  assert.equal(await page.locator('#explore-coverage').count(), 0, 'the 25 events fit the scan budget');
  // All 37 events grouped by plan: past the scan budget (30), so the chart covers the newest
  // buckets only and says so.
  await page.goto(`${projectUrl}/explore?from=${now - 2 * 3600000}&to=${now + 60000}&bucket=300000&group_by=plan`);
  await page.waitForSelector('#explore-coverage');
  assert.match(await page.textContent('#explore-coverage'), /reads at most 30 events, newest first/);
  // Tracking plan (Settings) makes the same question by hour answer from its rollup, whole.
  await page.goto(`${projectUrl}/settings`);
  await page.fill('input[name=tracked_properties]', 'plan');
  // Saved, then the page shown again from the server's answer; its note on the fill follows
  // the fill by itself and goes when it is done (a goto to the same hash would not reload).
  const settingsCall = (method) => page.waitForResponse((r) => r.url().endsWith('/settings') && r.request().method() === method);
  await Promise.all([settingsCall('POST'), settingsCall('GET'), page.click('#settings-save')]);
  await waitFor('the plan rollup to be filled', async () =>
    (await page.inputValue('input[name=tracked_properties]')) === 'plan' && (await page.locator('#tracked-pending').count()) === 0);
  await page.screenshot({ path: join(shots, 'settings.png'), fullPage: true });
  await page.goto(`${projectUrl}/explore?from=${now - 2 * 3600000}&to=${now + 60000}&bucket=3600000&group_by=plan`);
  await page.waitForSelector('#explore-source');
  assert.equal(await page.locator('#explore-coverage').count(), 0, 'the rollup covers the whole range');
  await page.goto(`${projectUrl}/explore?event=${encodeURIComponent('Exact Numbers')}&from=${now - 2 * 3600000}&to=${now + 60000}`);
  await page.waitForSelector('#events-table tbody tr');
  assert.equal(await page.textContent('#events-table tbody td:last-child code'), exact);

  // A deep link opened logged out: logging in through the form lands on the page asked for.
  const deepLink = `${projectUrl}/explore?event=${encodeURIComponent('Browser Test Event')}&from=${now - 2 * 3600000}&to=${now + 60000}`;
  const outContext = await browser.newContext({ viewport: { width: 1280, height: 900 }, colorScheme: 'light' });
  const out = await outContext.newPage();
  out.on('pageerror', (e) => errors.push(`logged out: ${e.message}`));
  await out.goto(deepLink);
  await out.fill('input[name=email]', 'admin@localhost');
  await out.fill('input[name=password]', password);
  await out.click('button[type=submit]');
  await out.waitForSelector('#events-table tbody tr');
  assert.equal(out.url(), deepLink, 'still on the deep link after login');
  assert.equal(await out.textContent('#nav a.active'), 'Explore');
  await outContext.close();

  for (const p of ['vitals', 'product', 'members', 'audit', 'report']) {
    await page.goto(`${projectUrl}/${p}`);
    await page.waitForFunction(() => !document.querySelector('main p.muted')?.textContent.startsWith('Loading'));
    await page.waitForTimeout(300);
    await page.screenshot({ path: join(shots, `${p}.png`), fullPage: true });
  }
  // Churn next to retention: of 4 users active the week before last, 2 were not active last
  // week (50%), and 1 cancelled last week (25% when churn is defined by that event).
  const monday = new Date(now).setUTCHours(0, 0, 0, 0) - ((new Date(now).getUTCDay() + 6) % 7) * 86400000;
  const lastWeek = new Date(monday - 6 * 86400000).toISOString(), weekBefore = new Date(monday - 13 * 86400000).toISOString();
  const churnEvents = [...['a', 'b', 'c', 'd'].map((u) => ({ type: 'track', userId: `churn-${u}`, event: 'Churn Test', timestamp: weekBefore })),
    { type: 'track', userId: 'churn-a', event: 'Churn Test', timestamp: lastWeek },
    { type: 'track', userId: 'churn-b', event: 'subscription_cancelled', timestamp: lastWeek }];
  const churnResp = await fetch(`${base}/v1/batch`, { method: 'POST',
    headers: { authorization: `Basic ${Buffer.from(`${copied}:`).toString('base64')}`, 'content-type': 'application/json' },
    body: JSON.stringify({ batch: churnEvents }) });
  assert.equal(churnResp.status, 200, await churnResp.text());
  await page.goto(`${projectUrl}/product`);
  await page.waitForSelector('#churn-chart canvas');
  await page.waitForSelector('#churn-last >> text=50.0% of 4 active users were not active in the next week');
  await page.fill('#churn-event', 'subscription_cancelled');
  await page.click('form:has(#churn-event) button[type=submit]');
  await page.waitForSelector('#churn-last >> text=25.0% of 4 active users did “subscription_cancelled”');
  await page.screenshot({ path: join(shots, 'churn.png'), fullPage: true });

  // Inbound webhooks: a generic source shows its secret once and its URL; a wrongly signed
  // delivery to that URL shows as refused in the list; deleting it empties the list.
  await page.goto(`${projectUrl}/inbound`);
  await page.waitForSelector('#inbound-form');
  await page.selectOption('#inbound-form select[name=kind]', 'generic');
  await page.fill('#inbound-form input[name=name]', 'Shop');
  await page.fill('#inbound-form input[name=event_path]', 'type');
  await page.click('#inbound-form button[type=submit]');
  await page.waitForSelector('#inbound-secret');
  assert.match(await page.textContent('#inbound-secret'), /^whsec_/);
  const inboundUrl = await page.textContent('#inbound-table code.inbound-url');
  assert.ok(inboundUrl.startsWith(`${base}/v1/inbound/in_`), inboundUrl);
  const forged = await fetch(inboundUrl, { method: 'POST', headers: { 'content-type': 'application/json',
    'webhook-id': 'msg_1', 'webhook-timestamp': String(Math.floor(Date.now() / 1000)), 'webhook-signature': 'v1,AAAA' },
  body: '{"type":"order.paid"}' });
  assert.equal(forged.status, 401);
  await page.reload();
  await page.waitForSelector('#inbound-table .last-delivery >> text=refused 401');
  await page.screenshot({ path: join(shots, 'inbound.png'), fullPage: true });
  page.once('dialog', (d) => d.accept());
  await page.click('#inbound-table button:has-text("Delete")');
  await page.waitForSelector('text=No sources yet.');

  await page.goto(`${projectUrl}/vitals`);
  // p75 of 1800, 2600, 4500 ms, interpolated as PostgreSQL's percentile_cont: 3550 ms, read
  // from the vitals rollup's sketch within its 1% (docs/dashboard.md).
  const lcp = await page.waitForSelector('text=/LCP: 3,5\\d\\d ms/');
  const p75 = Number((await lcp.textContent()).match(/LCP: ([\d,]+) ms/)[1].replace(',', ''));
  assert.ok(Math.abs(p75 - 3550) <= 35.5, `LCP p75 ${p75} is not within 1% of 3550`);
  await page.goto(`${projectUrl}/audit`);
  await page.waitForSelector('#audit-table >> text=key.created').catch(() => {});
  await page.waitForSelector('#audit-table >> text=project.created');
  // The weekly digest page (docs/digest.md): the opt-in is stored on the server (a reload
  // shows it), and without an SMTP server the preview button is off and says why.
  await page.goto(`${projectUrl}/digest`);
  await page.click('#digest-subscribed');
  await page.waitForSelector('#digest-status >> text=You will get the digest');
  await page.reload();
  await page.waitForSelector('#digest-subscribed');
  assert.equal(await page.isChecked('#digest-subscribed'), true);
  assert.equal(await page.isDisabled('#digest-preview'), true);
  await page.waitForSelector('text=no SMTP server');
  await page.screenshot({ path: join(shots, 'digest.png'), fullPage: true });

  // ---- Members join by invitation --------------------------------------------------------
  // A user made with the CLI is invited as a developer; they are no member until they accept
  // in their own dashboard. They issue a secret key; the owner sees who issued it, removes
  // them, and rotates that key from the removal's suggestion; their live tail ends.
  execFileSync(bin, ['user', 'create', '--email', 'dev@example.com'], { encoding: 'utf8',
    env: { ...process.env, PULSELINE_DATABASE_URL: `sqlite://${data}/p.db`, PULSELINE_NEW_USER_PASSWORD: 'dev-password-123' } });
  await page.goto(`${projectUrl}/members`);
  await page.fill('#invite-form input[name=email]', 'dev@example.com');
  await page.selectOption('#invite-form select[name=role]', 'developer');
  await page.click('#invite-form button[type=submit]');
  await page.waitForSelector('#member-note >> text=Invited dev@example.com as developer');
  await page.waitForSelector('#invitations-table >> text=dev@example.com');
  assert.equal(await page.locator('#members-table tbody tr').count(), 1, 'no member before accepting');
  await page.screenshot({ path: join(shots, 'members-invited.png'), fullPage: true });
  const devContext = await browser.newContext({ viewport: { width: 1280, height: 900 }, colorScheme: 'light' });
  const dev = await devContext.newPage();
  dev.on('pageerror', (e) => errors.push(`dev: ${e.message}`));
  await dev.goto(base);
  await dev.fill('input[name=email]', 'dev@example.com');
  await dev.fill('input[name=password]', 'dev-password-123');
  await dev.click('button[type=submit]');
  await dev.waitForSelector('#my-invitations >> text=Browser Test');
  assert.match(await dev.textContent('#my-invitations'), /admin@localhost invites you to “Browser Test” as developer/);
  await dev.screenshot({ path: join(shots, 'invitation.png'), fullPage: true });
  await dev.click('#my-invitations button:has-text("Accept")');
  await dev.waitForSelector('#events-today');
  assert.equal(await dev.locator('#my-invitations').count(), 0, 'answered invitations are gone');
  await dev.goto(`${projectUrl}/keys`);
  await dev.click('#create-secret');
  await dev.waitForSelector('code.key[data-kind=secret]');
  await dev.goto(`${projectUrl}/overview`);
  await dev.waitForSelector('#live-tail');
  await page.goto(`${projectUrl}/keys`);
  await page.waitForSelector('tr:has-text("secret"):has-text("dev@example.com")');
  await page.goto(`${projectUrl}/members`);
  await page.waitForSelector('#members-table >> text=dev@example.com');
  page.once('dialog', (d) => d.accept());
  await page.click('#members-table tr:has-text("dev@example.com") button:has-text("Remove")');
  await page.waitForSelector('#rotate-table button:has-text("Rotate")');
  await page.screenshot({ path: join(shots, 'member-removed-rotate.png'), fullPage: true });
  await page.click('#rotate-table button:has-text("Rotate")');
  await page.waitForSelector('#rotate-table code.key[data-kind=secret]');
  await dev.waitForSelector('#tail-ended', { timeout: 15000 });
  await devContext.close();

  // ---- Alerting ----------------------------------------------------------------------------
  const projectId = projectUrl.match(/#\/p\/(\d+)/)[1];
  // A webhook channel at the stand-in receiver; its signing secret is shown once; "Send test"
  // reaches the receiver and the page says what it answered.
  await page.goto(`${projectUrl}/channels`);
  await page.waitForSelector('#channel-form');
  await page.fill('#channel-form input[name=name]', 'Ops webhook');
  await page.selectOption('#channel-form select[name=kind]', 'webhook');
  await page.fill('#channel-form input[name=target]', `${hook}/hook`);
  await page.click('#channel-form button[type=submit]');
  await page.waitForSelector('#channel-secret code.key');
  assert.match(await page.textContent('#channel-secret code.key'), /^whsec_/);
  await page.click('#channels-table tr:has-text("Ops webhook") button:has-text("Send test")');
  await page.waitForSelector('.test-result >> text=Delivered: HTTP 200');
  await waitFor('the test notification', () => received.find((r) => JSON.stringify(r.body).includes('test notification')));
  assert.ok(received[0].headers['webhook-signature']?.startsWith('v1,'), 'the test is signed');
  // A channel whose webhook is gone: the test disables it, and the page says why.
  await page.fill('#channel-form input[name=name]', 'Old hook');
  await page.selectOption('#channel-form select[name=kind]', 'webhook');
  await page.fill('#channel-form input[name=target]', `${hook}/gone`);
  await page.click('#channel-form button[type=submit]');
  await page.waitForSelector('#channels-table >> text=Old hook');
  await page.click('#channels-table tr:has-text("Old hook") button:has-text("Send test")');
  await page.waitForSelector('.test-result >> text=HTTP 404');
  await page.waitForSelector('#channels-table tr:has-text("Old hook") .reason');
  assert.match(await page.textContent('#channels-table tr:has-text("Old hook") .reason'), /404/);
  await page.screenshot({ path: join(shots, 'alerts-channels.png'), fullPage: true });

  // A category: payment events as notifications on the webhook.
  await page.goto(`${projectUrl}/categories`);
  await page.click('#new-category');
  await page.fill('#category-form input >> nth=0', 'Payments');
  await page.fill('#category-form input >> nth=1', 'payment.*');
  await page.click('#category-form button[type=submit]');
  await page.waitForSelector('#categories-table >> text=Payments');
  await page.screenshot({ path: join(shots, 'alerts-categories.png'), fullPage: true });

  // Events first (so the preview has a series): one every 10 s over the last 4 minutes, so
  // each minute has 6 (> 2) and the latest closed minute still has them when the rule is
  // evaluated a few seconds from now.
  const alertEvents = [];
  for (let s = 5; s <= 240; s += 10) {
    alertEvents.push({ type: 'track', userId: `u${s}`, event: 'Checkout Failed', properties: { amount: s },
      timestamp: new Date(Date.now() - s * 1000).toISOString() });
  }
  const sent = await fetch(`${base}/v1/batch`, { method: 'POST',
    headers: { authorization: `Basic ${Buffer.from(`${copied}:`).toString('base64')}`, 'content-type': 'application/json' },
    body: JSON.stringify({ batch: alertEvents }) });
  assert.equal(sent.status, 200, await sent.text());

  // A threshold rule, written in the form with its live preview (series + threshold line).
  await page.goto(`${projectUrl}/rules`);
  await page.click('#new-rule');
  await page.waitForSelector('#rule-form');
  await page.fill('#rule-form input[name=name]', 'Checkout failures');
  await page.fill('#rule-form input[name=event]', 'Checkout Failed');
  await page.selectOption('#rule-form select[name=bucket]', 'minute');
  await page.fill('#rule-form input[name=value]', '2');
  await page.check('#rule-form label:has-text("Ops webhook") input');
  await page.waitForSelector('#rule-preview canvas');
  await page.waitForSelector('#preview-note >> text=count of Checkout Failed per minute');
  await page.waitForSelector('.u-legend >> text=threshold > 2');
  await page.screenshot({ path: join(shots, 'alerts-rule-editor.png'), fullPage: true });
  await page.click('#save-rule');
  await page.waitForSelector('#rules-table >> text=Checkout failures');

  // The evaluator (every second) fires it: the alert reaches the receiver, the bell, the
  // history, and the delivery log.
  const alertBody = await waitFor('the alert at the receiver', () =>
    received.find((r) => JSON.stringify(r.body).includes('Checkout failures')), 60000);
  assert.ok(alertBody);
  await page.reload(); // the bell polls every 30 s; a reload asks at once
  await page.waitForSelector('#bell-count:not([hidden])');
  assert.equal(await page.textContent('#bell-count'), '1');
  await page.click('#bell');
  await page.waitForSelector('#bell-list >> text=Checkout failures');
  assert.match(await page.textContent('#bell-list li'), /firing/);
  await page.screenshot({ path: join(shots, 'alerts-bell.png') });
  await page.reload();
  await page.waitForSelector('#bell');
  assert.equal(await page.isHidden('#bell-count'), true, 'opening the bell marked the alert read');
  await page.goto(`${projectUrl}/rules`);
  await page.waitForSelector('#rules-table .pill.firing');
  await page.goto(`${projectUrl}/alerts`);
  await page.waitForSelector('#alerts-table >> text=Checkout failures');
  assert.match(await page.textContent('#alerts-table tbody tr'), /firing.*threshold/);
  await page.screenshot({ path: join(shots, 'alerts-history.png'), fullPage: true });
  await page.goto(`${projectUrl}/deliveries`);
  await page.waitForSelector('#deliveries-table');
  await waitFor('the delivered alert in the log', async () => {
    await page.reload();
    await page.waitForSelector('#deliveries-table');
    return page.locator('#deliveries-table tr:has-text("Checkout failures"):has-text("delivered")').count();
  });
  const logged = await page.textContent('#deliveries-table tr:has-text("Checkout failures")');
  assert.ok(logged.includes('HTTP 200') && logged.includes('{"received":true}'), logged);
  await page.screenshot({ path: join(shots, 'alerts-deliveries.png'), fullPage: true });
  // The rule's preview now shows the buckets over the threshold.
  await page.goto(`${projectUrl}/rules`);
  await page.click('#rules-table a:has-text("Edit")');
  await page.waitForSelector('#rule-preview canvas');
  await page.waitForFunction(() => /held in [1-9]/.test(document.querySelector('#preview-note')?.textContent));
  await page.screenshot({ path: join(shots, 'alerts-rule-preview.png'), fullPage: true });
  // Switching the draft to an anomaly rule redraws the preview with the expected value and band.
  await page.selectOption('#rule-form select[name=type]', 'anomaly');
  await page.waitForSelector('.u-legend >> text=expected');
  await page.waitForSelector('#preview-note >> text=shaded band');
  await page.screenshot({ path: join(shots, 'alerts-rule-anomaly.png'), fullPage: true });
  // Every change is in the audit log, with who made it.
  await page.goto(`${projectUrl}/audit`);
  for (const action of ['channel.created', 'channel.tested', 'category.created', 'rule.created']) {
    await page.waitForSelector(`#audit-table tr:has-text("${action}"):has-text("admin@localhost")`);
  }

  // Once a closed minute has no failures the alert resolves: the bell has news again.
  await waitFor('the alert to resolve', () => page.evaluate(async (id) =>
    (await (await fetch(`/api/dash/projects/${id}/alerts`)).json()).alerts[0]?.status === 'resolved', projectId), 180000);
  await page.goto(`${projectUrl}/alerts`);
  await page.waitForSelector('#bell-count:not([hidden])');
  await page.click('#bell');
  await page.waitForSelector('#bell-list li.unread >> text=resolved');
  await page.screenshot({ path: join(shots, 'alerts-bell-resolved.png') });

  // Bots: left out of the overview and counted; shown on request.
  const botResp = await fetch(`${base}/v1/track`, { method: 'POST',
    headers: { authorization: `Basic ${Buffer.from(`${copied}:`).toString('base64')}`, 'content-type': 'application/json' },
    body: JSON.stringify({ userId: 'crawler-1', event: 'Browser Test Event', context: { bot: true } }) });
  assert.equal(botResp.status, 200, await botResp.text());
  await page.goto(`${projectUrl}/overview`);
  await page.waitForSelector('#bot-note >> text=1 event from bots in the last 30 days left out');
  const humans = Number(await page.textContent('#events-today'));
  await page.click('#bot-note a');
  await page.waitForSelector('#bot-note >> text=Including 1 event from bots');
  await page.waitForFunction((n) => document.querySelector('#events-today')?.textContent === String(n), humans + 1);
  const botEvents = 1;
  // The overview names the time zone its days are in (UTC unless the project sets one).
  await page.waitForSelector("#overview-zone >> text=Days in UTC, the project's time zone.");
  // The same toggle on the other analytics pages, kept in the URL with the page's own parameters.
  await page.goto(`${projectUrl}/explore?event=${encodeURIComponent('Browser Test Event')}`);
  await page.waitForSelector('#bot-note >> text=1 event from bots in this range left out');
  await page.click('#bot-note a');
  await page.waitForSelector('#bot-note >> text=Including 1 event from bots in this range');
  assert.match(page.url(), /explore\?event=Browser\+Test\+Event&bots=1$/);
  await page.waitForSelector('#events-table >> text=crawler-1');
  await page.goto(`${projectUrl}/product`);
  await page.waitForSelector('#bot-note >> text=1 event from bots in this range left out');
  await page.click('#bot-note a');
  await page.waitForSelector('#bot-note >> text=Including 1 event from bots in this range');
  assert.match(page.url(), /product\?bots=1$/);

  // Dark mode (the system's choice) and a phone-width screen.
  await page.emulateMedia({ colorScheme: 'dark' });
  await page.goto(`${projectUrl}/overview`);
  await page.waitForSelector('#events-today');
  await page.screenshot({ path: join(shots, 'overview-dark.png'), fullPage: true });
  for (const p of ['channels', 'deliveries', 'alerts']) {
    await page.goto(`${projectUrl}/${p}`);
    await page.waitForSelector('table');
    await page.screenshot({ path: join(shots, `alerts-${p}-dark.png`), fullPage: true });
  }
  await page.goto(`${projectUrl}/rules`);
  await page.click('#rules-table a:has-text("Edit")');
  await page.waitForSelector('#rule-preview canvas');
  await page.waitForFunction(() => /held in/.test(document.querySelector('#preview-note')?.textContent));
  await page.screenshot({ path: join(shots, 'alerts-rule-preview-dark.png'), fullPage: true });
  await page.click('#bell');
  await page.waitForSelector('#bell-list');
  await page.screenshot({ path: join(shots, 'alerts-bell-dark.png') });
  await page.setViewportSize({ width: 390, height: 844 });
  await page.goto(`${projectUrl}/overview`);
  await page.waitForSelector('#events-today');
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - innerWidth);
  assert.ok(overflow <= 1, `no horizontal scrolling at phone width (${overflow}px)`);
  await page.screenshot({ path: join(shots, 'overview-phone.png'), fullPage: true });
  for (const p of ['alerts', 'deliveries', 'rules']) {
    await page.goto(`${projectUrl}/${p}`);
    await page.waitForSelector('table');
    const wide = await page.evaluate(() => document.documentElement.scrollWidth - innerWidth);
    assert.ok(wide <= 1, `no horizontal scrolling of ${p} at phone width (${wide}px)`);
  }
  await page.click('#bell');
  await page.waitForSelector('#bell-list');
  await page.screenshot({ path: join(shots, 'alerts-bell-phone.png') });
  await page.emulateMedia({ media: 'print', colorScheme: 'light' });
  await page.setViewportSize({ width: 1000, height: 1200 });
  await page.goto(`${projectUrl}/report`);
  await page.waitForSelector('#events-today');
  await page.screenshot({ path: join(shots, 'report-print.png'), fullPage: true });

  // Over quota: the operator moves the project to a 10-event plan (the real CLI, same database);
  // ingest answers 429 and the dashboard says so on every page (on screen; print hides it).
  await page.emulateMedia({ media: 'screen' });
  const cli = (...args) => execFileSync(bin, args, {
    env: { ...process.env, PULSELINE_DATABASE_URL: `sqlite://${data}/p.db` }, encoding: 'utf8' });
  cli('plan', 'set', 'tiny', '--events-per-month', '10', '--retention-days', 'forever');
  cli('project', 'set-plan', projectId, 'tiny');
  const refused = await fetch(`${base}/v1/batch`, { method: 'POST',
    headers: { authorization: `Basic ${Buffer.from(`${copied}:`).toString('base64')}`, 'content-type': 'application/json' },
    body: JSON.stringify({ batch: [{ type: 'track', userId: 'u', event: 'over' }] }) });
  assert.equal(refused.status, 429, 'ingest refuses a project over its quota');
  await page.goto(`${projectUrl}/explore`);
  await page.waitForSelector('#banner >> text=over its monthly quota');
  const banner = await page.textContent('#banner');
  assert.ok(banner.includes(`${eventsSoFar + alertEvents.length + churnEvents.length + botEvents} of 10`) && banner.includes('tiny'), banner);
  await page.screenshot({ path: join(shots, 'over-quota.png'), fullPage: false });

  // Persons: export one person's events, then delete them after a confirmation that names the
  // ids and the count (user-0 sent 5 of the 25 test events).
  await page.goto(`${projectUrl}/persons`);
  await page.waitForSelector('#person-id');
  await page.fill('#person-id', 'user-0');
  const [personExport] = await Promise.all([page.waitForEvent('download'), page.click('#person-export')]);
  const exported = readFileSync(await personExport.path(), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  assert.equal(exported.length, 5, 'the export holds user-0\'s events');
  assert.ok(exported.every((e) => e.userId === 'user-0'));
  await page.check('#person-suppress');
  await page.click('#person-delete');
  await page.waitForSelector('#person-confirm-text');
  const confirmText = await page.textContent('#person-confirm-text');
  assert.ok(confirmText.includes('Delete 5 events of user-0'), confirmText);
  await page.screenshot({ path: join(shots, 'persons.png'), fullPage: true });
  await page.click('#person-confirm-delete');
  await page.waitForSelector('#person-msg >> text=Deleted 5 events of user-0');
  await page.waitForSelector('#suppressions >> text=user-0');
  const left = await page.evaluate(async (p) => (await (await fetch(`/api/dash/projects/${p}/persons?user_id=user-0`)).json()).events, projectId);
  assert.equal(left, 0, 'no event of user-0 is left');

  // The API docs page (linked from the header) renders the collector's operations, from local files only.
  assert.equal(await page.getAttribute('#api-docs', 'href'), '/docs/api');
  const foreign = [];
  page.on('request', (r) => { if (!r.url().startsWith(base) && !r.url().startsWith('data:')) foreign.push(r.url()); });
  await page.goto(`${base}/docs/api`);
  await page.waitForSelector('.opblock-summary-path[data-path="/v1/batch"]', { timeout: 30000 });
  await page.waitForSelector('.opblock-summary-path[data-path="/v1/inbound/{token}"]');
  await page.waitForSelector('text=Sending events: the Segment HTTP Tracking API');
  await page.screenshot({ path: join(shots, 'api-docs.png') });
  assert.deepEqual(foreign, [], 'the API docs page loads nothing from outside the collector');

  // Logout ends the session, also while a page is still loading: the overview's answer is
  // held until after the logout, and arriving late it must not cover the login form.
  await page.emulateMedia({ media: 'screen' });
  let release;
  const held = new Promise((r) => { release = r; });
  let delivered;
  const late = new Promise((r) => { delivered = r; });
  await page.route(/\/api\/dash\/projects\/\d+\/overview(\?|$)/, async (route) => {
    const response = await route.fetch();
    await held;
    await route.fulfill({ response });
    delivered();
  });
  await page.goto(`${projectUrl}/overview`);
  await page.click('#logout');
  await page.waitForSelector('input[name=password]');
  release();
  await late;
  await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => setTimeout(r, 50))));
  assert.ok(await page.isVisible('input[name=password]'), 'the login form stays after a late page');
  await page.unrouteAll();
  const after = await page.evaluate(async () => (await fetch('/api/dash/session')).status);
  assert.equal(after, 401);
  assert.deepEqual(errors.filter((e) => !e.includes('401')), [], 'no script errors');
  console.log(`ok: dashboard browser test passed; screenshots in ${shots}`);
} catch (e) {
  failed = true;
  console.error(e);
  // What the page showed when it failed.
  await page?.screenshot({ path: join(shots, 'failure.png'), fullPage: true }).catch(() => {});
} finally {
  await browser.close();
  collector.kill('SIGTERM');
  await collectorExited;
  // The collector's database is kept for a look only when the test failed.
  if (failed) console.error(`collector data: ${data}`);
  else rmSync(data, { recursive: true, force: true });
  receiver.close();
}
process.exit(failed ? 1 : 0);
