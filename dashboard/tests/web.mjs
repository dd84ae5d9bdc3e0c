// The dashboard's Web page in headless Chromium against the real collector binary (issue 21):
// a seeded week of traffic shows the expected visitors, bounce rate and top rows; clicking a
// source filters the page; the URL reproduces the view; screenshots at desktop, phone and dark
// land in target/dashboard-screenshots/web-*.png.
// The week ends three days before the run and is viewed as a custom range of fixed dates, so a
// run across midnight (UTC, the project's zone) sees the same numbers.
import { spawn } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import assert from 'node:assert/strict';
import { chromium } from 'playwright-core';

const root = resolve(import.meta.dirname, '../..');
const bin = process.env.PULSELINE_COLLECTOR_BIN || join(root, 'target/debug/pulseline-collector');
const shots = join(root, 'target/dashboard-screenshots');
mkdirSync(shots, { recursive: true });
const data = mkdtempSync(join(tmpdir(), 'pulseline-web-'));
const DAY = 86400000, MIN = 60000;

const collector = spawn(bin, [], {
  env: { ...process.env, PULSELINE_LISTEN: '127.0.0.1:0', PULSELINE_DATABASE_URL: `sqlite://${data}/p.db`,
    PULSELINE_SQLITE_SYNCHRONOUS: 'normal', RUST_LOG: 'warn' },
  stdio: ['ignore', 'pipe', 'inherit'],
});
const collectorExited = new Promise((ok) => collector.once('exit', ok));
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
  body: JSON.stringify({ name: 'Shop' }) })).json();
const project = created.id;

// The week: seven UTC days ending three days before today. Visitor i comes on day i % 7 at
// 10:00 + i minutes; visitors 0-7 view /, /pricing and /signup five minutes apart, the other
// twelve only / (bounces). Every fourth came from Google. Ten visitors in the week before,
// all bounces. A crawler's page views are left out.
const today = new Date().setUTCHours(0, 0, 0, 0);
const first = today - 9 * DAY;
const isoDay = (ms) => new Date(ms).toISOString().slice(0, 10);
const agents = {
  desktop: 'Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0',
  mobile: 'Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1',
};
const batch = [];
const view = (who, ts, path, extra = {}) => batch.push({ type: 'page', anonymousId: who, name: path,
  timestamp: new Date(ts).toISOString(), context: { page: { path, url: `https://shop.example${path}`,
    referrer: extra.referrer || '' }, userAgent: extra.agent || agents.desktop, ...extra.context } });
for (let i = 0; i < 20; i++) {
  const start = first + (i % 7) * DAY + 10 * 60 * MIN + i * MIN;
  const google = i % 4 === 0;
  const context = {
    source: google ? { name: 'Google', medium: 'search' } : { name: 'Direct / None', medium: 'none' },
    location: { country: i < 10 ? 'DE' : 'US' },
    device: { type: i < 15 ? 'desktop' : 'mobile' },
  };
  const extra = { context, referrer: google ? 'https://www.google.com/' : '', agent: i < 15 ? agents.desktop : agents.mobile };
  view(`vis-${i}`, start, '/', extra);
  if (i < 8) {
    view(`vis-${i}`, start + 5 * MIN, '/pricing', { ...extra, referrer: 'https://shop.example/' });
    view(`vis-${i}`, start + 10 * MIN, '/signup', { ...extra, referrer: 'https://shop.example/pricing' });
  }
}
for (let i = 0; i < 10; i++) view(`old-${i}`, first - 7 * DAY + i * DAY / 2 + 12 * 60 * MIN, '/');
for (let d = 0; d < 7; d++) {
  batch.push({ type: 'page', anonymousId: 'crawler', timestamp: new Date(first + d * DAY + 3 * 60 * MIN).toISOString(),
    context: { bot: true, page: { path: '/robots-only' } } });
}
const sent = await fetch(`${base}/v1/batch`, { method: 'POST', body: JSON.stringify({ batch }), headers: {
  'content-type': 'application/json', authorization: `Basic ${Buffer.from(`${created.write_key}:`).toString('base64')}` } });
assert.equal(sent.status, 200, await sent.text());
// The background fold counts page views into the page's rollups within
// PULSELINE_WEB_FOLD_DELAY_MS; wait until the API says nothing is left to count.
for (let waited = 0; ; waited += 100) {
  const web = await fetch(`${base}/api/dash/projects/${project}/web?period=today&country=ZZ`, { headers: { cookie } });
  assert.equal(web.status, 200, await web.clone().text());
  if ((await web.json()).behind === null) break;
  assert.ok(waited < 60_000, 'the fold did not catch up within 60 s');
  await new Promise((ok) => setTimeout(ok, 100));
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync'],
});
let failed = false;
let page = null;
try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, colorScheme: 'light' });
  page = await context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  await page.goto(base);
  await page.fill('input[name=email]', 'admin@localhost');
  await page.fill('input[name=password]', password);
  await page.click('button[type=submit]');
  await page.waitForSelector('#events-today');
  errors.length = 0; // the logged-out start's 401 from /api/dash/session is expected

  const week = `period=custom&from=${isoDay(first)}&to=${isoDay(first + 6 * DAY)}`;
  await page.goto(`${base}/#/p/${project}/web?${week}`);
  await page.waitForSelector('#web-visitors');
  const value = (id) => page.textContent(`#web-${id} .value`);
  const rows = (key) => page.$$eval(`table.breakdown[data-key="${key}"] tbody tr`,
    (trs) => trs.map((tr) => [...tr.querySelectorAll('td')].map((td) => td.textContent.trim())));
  assert.equal(await value('visitors'), '20');
  assert.equal(await value('visits'), '20');
  assert.equal(await value('pageviews'), '36');
  assert.equal(await value('bounce-rate'), '60.0%');
  assert.equal(await value('duration'), '4m 00s');
  assert.match(await page.textContent('#web-visitors .label'), /↑100%/, 'twice the previous week');
  assert.deepEqual(await rows('page'), [['/', '20', '20'], ['/pricing', '8', '8'], ['/signup', '8', '8']]);
  assert.deepEqual(await rows('source'), [['Direct / None', '15', '15'], ['Google', '5', '5']]);
  assert.deepEqual(await rows('country'), [['DE', '10', '10'], ['US', '10', '10']]);
  // The map above the table colours exactly the seeded countries; no GeoIP database is set
  // (the seed brings its own locations), and the card says so.
  await page.waitForSelector('#web-country-map path[data-code="DE"][data-visitors]');
  assert.deepEqual(await page.$$eval('#web-country-map path[data-visitors]',
    (ps) => ps.map((p) => [p.dataset.code, p.dataset.visitors]).sort()), [['DE', '10'], ['US', '10']]);
  const fills = await page.$$eval('#web-country-map path', (ps) =>
    Object.fromEntries(ps.filter((p) => ['DE', 'US', 'FR'].includes(p.dataset.code)).map((p) => [p.dataset.code, p.getAttribute('fill')])));
  assert.notEqual(fills.DE, fills.FR, `a visited country is coloured: ${JSON.stringify(fills)}`);
  assert.equal(fills.DE, fills.US, 'the same visitors, the same colour');
  assert.match(await page.textContent('#web-no-geo'), /No GeoIP database configured/);
  await page.click('#web-pages a[data-tab=exit_page]');
  assert.deepEqual(await rows('exit_page'), [['/', '12', '12'], ['/signup', '8', '8']]);
  await page.screenshot({ path: join(shots, 'web-desktop.png'), fullPage: true });

  // A click on a source filters the whole page; the chip and the URL say so.
  await page.click('table.breakdown[data-key="source"] a:has-text("Google")');
  await page.waitForSelector('#web-filters .chip[data-key=source]');
  assert.equal(await value('visitors'), '5');
  assert.equal(await value('pageviews'), '9');
  assert.equal(await value('bounce-rate'), '60.0%');
  assert.deepEqual(await rows('source'), [['Google', '5', '5']]);
  const shared = page.url();
  assert.match(shared, /source=Google/);

  // The URL alone reproduces the view, in a fresh page (a teammate's browser).
  const other = await context.newPage();
  await other.goto(shared);
  await other.waitForSelector('#web-filters .chip[data-key=source]');
  assert.equal(await other.textContent('#web-visitors .value'), '5');
  await other.close();

  // A second filter combines with the first; removing a chip removes only that filter. The
  // country's comes from a click on the map.
  const us = await page.$eval('#web-country-map path[data-code="US"]', (path) => {
    // A point inside the country's shape (its box's centre may be another country's).
    path.closest('#web-country-map').scrollIntoView({ block: 'center' });
    const b = path.getBBox(), m = path.getScreenCTM();
    const inside = [];
    for (let i = 1; i < 20; i++) for (let j = 1; j < 20; j++) {
      const pt = new DOMPoint(b.x + b.width * i / 20, b.y + b.height * j / 20);
      if (path.isPointInFill(pt)) inside.push(pt.matrixTransform(m));
    }
    const hit = inside.find((pt) => document.elementFromPoint(pt.x, pt.y) === path);
    return hit && { x: hit.x, y: hit.y };
  });
  assert.ok(us, 'the US is on the map, where a pointer can reach it');
  await page.mouse.click(us.x, us.y);
  await page.waitForSelector('#web-filters .chip[data-key=country]');
  assert.match(await page.textContent('#web-filters .chip[data-key=country]'), /Country: US/);
  assert.equal(await value('visitors'), '2', 'Google and US: visitors 12 and 16');
  await page.click('#web-filters .chip[data-key=source]');
  await page.waitForFunction(() => !document.querySelector('#web-filters .chip[data-key=source]'));
  await page.waitForFunction(() => document.querySelector('#web-visitors .value')?.textContent === '10');

  // Phone and dark screenshots of the unfiltered week.
  await page.goto(`${base}/#/p/${project}/web?${week}`);
  await page.waitForFunction(() => document.querySelector('#web-visitors .value')?.textContent === '20');
  await page.setViewportSize({ width: 390, height: 844 });
  await page.waitForTimeout(100); // uPlot resizes on the resize event
  await page.screenshot({ path: join(shots, 'web-phone.png'), fullPage: true });
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - innerWidth);
  assert.ok(overflow <= 1, `no sideways scrolling on a phone (${overflow}px)`);
  await page.setViewportSize({ width: 1280, height: 900 });
  await page.evaluate(() => localStorage.setItem('pulseline-theme', 'dark'));
  await page.reload();
  await page.waitForSelector('#web-visitors');
  await page.screenshot({ path: join(shots, 'web-dark.png'), fullPage: true });
  assert.deepEqual(errors, [], 'no errors in the browser console');
  console.log('web page: ok');
} catch (e) {
  failed = true;
  console.error(e);
  await page?.screenshot({ path: join(shots, 'web-failure.png'), fullPage: true }).catch(() => {});
  console.error(`screenshot: ${join(shots, 'web-failure.png')}; page errors: ${JSON.stringify(page && await page.evaluate(() => document.querySelector('#main')?.innerText).catch(() => null))}`);
} finally {
  await browser.close();
  collector.kill('SIGTERM');
  await collectorExited;
  // The collector's database is kept for a look only when the test failed.
  if (failed) console.error(`collector data: ${data}`);
  else rmSync(data, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);
