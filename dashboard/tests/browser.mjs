// Browser test of the dashboard against the real collector binary, in headless Debian Chromium
// (playwright-core, no browser download). Logs in, creates a project, copies its write key,
// sends events with it through the Segment HTTP API, sees them in the live tail and on the
// chart, exports CSV, and saves screenshots of the main pages to target/dashboard-screenshots.
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, mkdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import assert from 'node:assert/strict';
import { chromium } from 'playwright-core';

const root = resolve(import.meta.dirname, '../..');
const bin = process.env.PULSELINE_COLLECTOR_BIN || join(root, 'target/debug/pulseline-collector');
const shots = join(root, 'target/dashboard-screenshots');
mkdirSync(shots, { recursive: true });
const data = mkdtempSync(join(tmpdir(), 'pulseline-dash-'));

const collector = spawn(bin, [], {
  env: { ...process.env, PULSELINE_LISTEN: '127.0.0.1:0', PULSELINE_DATABASE_URL: `sqlite://${data}/p.db`,
    PULSELINE_SQLITE_SYNCHRONOUS: 'normal', RUST_LOG: 'warn' },
  stdio: ['ignore', 'pipe', 'inherit'],
});
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
try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, acceptDownloads: true,
    colorScheme: 'light' });
  await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: base });
  const page = await context.newPage();
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
  const projectUrl = page.url().replace(/\/keys$/, '');

  // Events from the copied key, through the Segment HTTP API.
  await page.goto(`${projectUrl}/overview`);
  await page.waitForSelector('#live-tail');
  const now = Date.now();
  const batch = [];
  for (let i = 0; i < 25; i++) {
    batch.push({ type: 'track', userId: `user-${i % 5}`, event: 'Browser Test Event',
      properties: { plan: i % 2 ? 'pro' : 'free', amount: i }, timestamp: new Date(now - i * 60000).toISOString() });
  }
  for (const [metric, value] of [['LCP', 1800], ['LCP', 2600], ['LCP', 4500], ['INP', 120], ['CLS', 0.05], ['FCP', 1500], ['TTFB', 600]]) {
    batch.push({ type: 'track', anonymousId: 'anon-1', event: 'Web Vital',
      properties: { metric, value, rating: 'good', delta: value, navigationType: 'navigate', path: '/pricing' } });
  }
  const resp = await fetch(`${base}/v1/batch`, { method: 'POST',
    headers: { authorization: `Basic ${Buffer.from(`${copied}:`).toString('base64')}`, 'content-type': 'application/json' },
    body: JSON.stringify({ batch }) });
  assert.equal(resp.status, 200, await resp.text());

  // The live tail shows them without a reload.
  await page.waitForSelector('#live-tail >> text=Browser Test Event', { timeout: 15000 });
  await page.reload();
  await page.waitForFunction(() => document.querySelector('#events-today')?.textContent === '32');
  await page.waitForSelector('#live-tail >> text=Browser Test Event', { timeout: 15000 });
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

  for (const p of ['vitals', 'product', 'members', 'audit', 'report']) {
    await page.goto(`${projectUrl}/${p}`);
    await page.waitForFunction(() => !document.querySelector('main p.muted')?.textContent.startsWith('Loading'));
    await page.waitForTimeout(300);
    await page.screenshot({ path: join(shots, `${p}.png`), fullPage: true });
  }
  await page.goto(`${projectUrl}/vitals`);
  await page.waitForSelector('text=LCP: 4,500 ms');
  await page.goto(`${projectUrl}/audit`);
  await page.waitForSelector('#audit-table >> text=key.created').catch(() => {});
  await page.waitForSelector('#audit-table >> text=project.created');

  // Dark mode (the system's choice) and a phone-width screen.
  await page.emulateMedia({ colorScheme: 'dark' });
  await page.goto(`${projectUrl}/overview`);
  await page.waitForSelector('#events-today');
  await page.screenshot({ path: join(shots, 'overview-dark.png'), fullPage: true });
  await page.setViewportSize({ width: 390, height: 844 });
  await page.reload();
  await page.waitForSelector('#events-today');
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - innerWidth);
  assert.ok(overflow <= 1, `no horizontal scrolling at phone width (${overflow}px)`);
  await page.screenshot({ path: join(shots, 'overview-phone.png'), fullPage: true });
  await page.emulateMedia({ media: 'print', colorScheme: 'light' });
  await page.setViewportSize({ width: 1000, height: 1200 });
  await page.goto(`${projectUrl}/report`);
  await page.waitForSelector('#events-today');
  await page.screenshot({ path: join(shots, 'report-print.png'), fullPage: true });

  // Over quota: the operator moves the project to a 10-event plan (the real CLI, same database);
  // ingest answers 429 and the dashboard says so on every page (on screen; print hides it).
  await page.emulateMedia({ media: 'screen' });
  const projectId = projectUrl.match(/#\/p\/(\d+)/)[1];
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
  assert.ok(banner.includes('32 of 10') && banner.includes('tiny'), banner);
  await page.screenshot({ path: join(shots, 'over-quota.png'), fullPage: false });

  // Logout ends the session.
  await page.emulateMedia({ media: 'screen' });
  await page.goto(`${projectUrl}/overview`);
  await page.click('#logout');
  await page.waitForSelector('input[name=password]');
  const after = await page.evaluate(async () => (await fetch('/api/dash/session')).status);
  assert.equal(after, 401);
  assert.deepEqual(errors.filter((e) => !e.includes('401')), [], 'no script errors');
  console.log(`ok: dashboard browser test passed; screenshots in ${shots}`);
} catch (e) {
  failed = true;
  console.error(e);
} finally {
  await browser.close();
  collector.kill('SIGTERM');
}
process.exit(failed ? 1 : 0);
