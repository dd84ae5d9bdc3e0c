// A shared overview in headless Chromium, logged out (issue 24, docs/sharing.md): the link
// renders the project's numbers with no navigation to other pages and no live tail, and says so
// within its refresh once revoked; a password-protected link shows its form first and the page
// after the right password. The admin's Share page publishes a link (shown once) and revokes it.
// Screenshots: target/dashboard-screenshots/share-overview.png and share-page.png.
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
const data = mkdtempSync(join(tmpdir(), 'pulseline-share-'));

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

// As the admin: a project with four events today, and two links to its overview.
const login = await fetch(`${base}/api/dash/session`, { method: 'POST', headers: { 'content-type': 'application/json' },
  body: JSON.stringify({ email: 'admin@localhost', password }) });
assert.equal(login.status, 200);
const cookie = login.headers.get('set-cookie').split(';')[0];
const { csrf_token: csrf } = await login.json();
const asAdmin = { 'content-type': 'application/json', cookie, 'x-csrf-token': csrf, origin: base };
const created = await (await fetch(`${base}/api/dash/projects`, { method: 'POST', headers: asAdmin,
  body: JSON.stringify({ name: 'Acme status' }) })).json();
const now = new Date().toISOString();
const sent = await fetch(`${base}/v1/batch`, { method: 'POST',
  headers: { 'content-type': 'application/json', authorization: `Bearer ${created.write_key}` },
  body: JSON.stringify({ batch: ['signup', 'signup', 'purchase', 'signup'].map((event, i) =>
    ({ type: 'track', userId: `u${i}`, event, timestamp: now })) }) });
assert.equal(sent.status, 200, await sent.text());
const publish = async (body) => {
  const r = await fetch(`${base}/api/dash/projects/${created.id}/shares`, { method: 'POST', headers: asAdmin, body: JSON.stringify(body) });
  assert.equal(r.status, 200);
  return `${base}${(await r.json()).path}`;
};
const open = await publish({ page: 'overview' });
const locked = await publish({ page: 'overview', password: 'status page 2026' });

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync'],
});
let failed = false;
let page = null;
try {
  // A fresh context: no session cookie.
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, colorScheme: 'light' });
  page = await context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  // The page's own clock, so its minute of refresh passes at once.
  await page.clock.install();
  await page.goto(open);
  await page.waitForSelector('#events-today', { timeout: 30000 });
  assert.equal(await page.textContent('#events-today'), '4');
  assert.match(await page.textContent('#shared-bar'), /Acme status · Overview · read-only/);
  assert.equal(await page.isVisible('#top'), false, 'no header, project picker or nav');
  assert.equal(await page.locator('a[href^="#/p/"]').count(), 0, 'no links to other pages');
  assert.equal(await page.locator('#live-tail').count(), 0, 'no live tail');
  assert.equal(await page.locator('input[type=password]').count(), 0);
  await page.screenshot({ path: join(shots, 'share-overview.png'), fullPage: true });

  // Revoked while open: the next refresh says so instead of showing the numbers.
  const [{ id: openId }] = await (await fetch(`${base}/api/dash/projects/${created.id}/shares`, { headers: asAdmin })).json();
  const revoked = await fetch(`${base}/api/dash/projects/${created.id}/shares/${openId}`, { method: 'DELETE', headers: asAdmin });
  assert.equal(revoked.status, 200);
  await page.clock.runFor(61000);
  await page.waitForSelector('#share-gone', { timeout: 30000 });
  assert.equal(await page.locator('#events-today').count(), 0);
  assert.match(await page.textContent('#share-gone'), /revoked/);

  await page.goto(locked);
  await page.waitForSelector('#share-password');
  assert.equal(await page.locator('#events-today').count(), 0);
  await page.fill('#share-password input', 'not the password');
  await page.click('#share-password button');
  await page.waitForFunction(() => document.querySelector('#share-password .error')?.textContent.includes('wrong password'));
  await page.fill('#share-password input', 'status page 2026');
  await page.click('#share-password button');
  await page.waitForSelector('#events-today', { timeout: 30000 });
  assert.equal(await page.textContent('#events-today'), '4');
  assert.deepEqual(errors, []);

  // The admin's Share page: publish a Web link with an origin, see it once, revoke it.
  const adminContext = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const [name, value] = cookie.split('=');
  await adminContext.addCookies([{ name, value, url: base }]);
  const admin = await adminContext.newPage();
  admin.on('dialog', (d) => d.accept());
  await admin.goto(`${base}/#/p/${created.id}/share`);
  await admin.waitForSelector('#share-form');
  await admin.selectOption('#share-form select[name=page]', 'web');
  await admin.fill('#share-form input[name=origins]', 'https://status.example.com');
  await admin.click('#share-form button[type=submit]');
  const link = await (await admin.waitForSelector('#share-link')).textContent();
  assert.match(link, new RegExp(`^${base}/s/plsh_\\w{32}$`));
  assert.equal(await admin.locator('#shares-table tbody tr').count(), 2);
  await admin.screenshot({ path: join(shots, 'share-page.png'), fullPage: true });
  assert.equal((await fetch(link)).headers.get('content-security-policy').endsWith('frame-ancestors https://status.example.com'), true);
  await admin.click('#shares-table tbody tr:last-child button.danger');
  await admin.waitForFunction(() => document.querySelectorAll('#shares-table tbody tr').length === 1);
  assert.equal((await fetch(link)).status, 404);
  console.log(`shared overview rendered logged out; screenshot ${join(shots, 'share-overview.png')}`);
} catch (e) {
  failed = true;
  console.error(e);
  await page?.screenshot({ path: join(shots, 'share-failure.png'), fullPage: true }).catch(() => {});
} finally {
  await browser.close();
  collector.kill('SIGTERM');
  await collectorExited;
  // The collector's database is kept for a look only when the test failed.
  if (failed) console.error(`collector data: ${data}`);
  else rmSync(data, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);
