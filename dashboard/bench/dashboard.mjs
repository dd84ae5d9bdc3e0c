// Dashboard benchmark, against a running collector (fill it first, e.g. with
// `pulseline-loadgen --spread-days 90 --users 100000`; README "Dashboard benchmark"):
//   1. server time of the overview and of 30-day charts (all events by day, the top event by
//      hour), measured from the browser with the Resource Timing API, cold call and 10 warm ones;
//      and of the Web page's calls (today, 7 and 30 days, a filter, realtime);
//   2. the dashboard's own Web Vitals (LCP, FCP, TTFB), measured in headless Chromium with
//      Google's web-vitals library injected before the page's own scripts.
// It changes nothing in the store. Usage:
//   PULSELINE_BENCH_URL=http://127.0.0.1:8080 PULSELINE_BENCH_PASSWORD=… node dashboard/bench/dashboard.mjs
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { chromium } from 'playwright-core';

const base = process.env.PULSELINE_BENCH_URL || 'http://127.0.0.1:8080';
if (!/^http:\/\/(127\.\d+\.\d+\.\d+|\[::1\]|localhost)(:\d+)?$/.test(base)) {
  throw new Error(`PULSELINE_BENCH_URL must be a loopback http URL, not ${base}`);
}
const email = process.env.PULSELINE_BENCH_EMAIL || 'admin@localhost';
const password = process.env.PULSELINE_BENCH_PASSWORD;
if (!password) throw new Error('set PULSELINE_BENCH_PASSWORD (the admin password the first start printed)');
// The IIFE build (global `webVitals`) sits beside the package's CommonJS entry.
const webVitals = readFileSync(join(dirname(createRequire(import.meta.url).resolve('web-vitals')), 'web-vitals.iife.js'), 'utf8');

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync'],
});
try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  // Every page of this context reports its vitals into window.__vitals as they change.
  await context.addInitScript(`${webVitals};
    window.__vitals = {};
    for (const name of ['LCP', 'FCP', 'TTFB', 'CLS']) {
      webVitals['on' + name]((m) => { window.__vitals[m.name] = Math.round(m.value * 1000) / 1000; },
        { reportAllChanges: true });
    }`);
  const page = await context.newPage();

  const vitals = async () => {
    await page.waitForLoadState('networkidle');
    await page.waitForTimeout(500);
    return page.evaluate(() => window.__vitals);
  };
  await page.goto(base);
  const login = await vitals();
  await page.fill('input[name=email]', email);
  await page.fill('input[name=password]', password);
  await page.click('button[type=submit]');
  await page.waitForSelector('#events-today');
  const project = page.url().match(/#\/p\/(\d+)\//)[1];

  // A fresh navigation to the overview of a logged-in user: the page users open most.
  await page.goto('about:blank');
  await page.goto(`${base}/#/p/${project}/overview`);
  await page.waitForSelector('#events-today');
  const overview = await vitals();

  const api = `${base}/api/dash/projects/${project}`;
  const now = Date.now();
  const day = 86_400_000;
  const top = await page.evaluate(async (u) => (await (await fetch(u)).json()).top_events?.[0]?.[0], `${api}/overview`);
  const calls = {
    overview: `${api}/overview`,
    '30 days, all events by day': `${api}/series?from=${now - 30 * day}&to=${now}&bucket=${day}`,
    [`30 days, "${top}" by hour`]: `${api}/series?event=${encodeURIComponent(top)}&from=${now - 30 * day}&to=${now}&bucket=3600000`,
    '8 weeks, retention by week': `${api}/retention?from=${now - 56 * day}&to=${now}&period=week`,
    // The steps of bench/funnel-seed.mjs; over other data the funnel is still read, mostly empty.
    '30 days, 3-step funnel': `${api}/funnel?steps=${encodeURIComponent('Product Viewed,Added to Cart,Order Completed')}&from=${now - 30 * day}&to=${now}`,
    // The Web page (docs/dashboard-web.md); fill it with bench/web-seed.mjs.
    'web, today': `${api}/web?period=today`,
    'web, last 7 days': `${api}/web?period=7d`,
    'web, last 30 days': `${api}/web?period=30d`,
    'web, 30 days, source=Google': `${api}/web?period=30d&source=Google`,
    'web, 30 days, page=/pricing': `${api}/web?period=30d&page=%2Fpricing`,
    'web, realtime': `${api}/web/realtime`,
  };
  const rows = [];
  for (const [name, url] of Object.entries(calls)) {
    // Resource Timing: request sent → last byte, without the page's own scheduling.
    const times = await page.evaluate(async (u) => {
      const out = [];
      for (let i = 0; i < 11; i++) {
        const url = new URL(u);
        url.searchParams.set('_', String(i)); // a distinct entry per call
        const r = await fetch(url);
        if (!r.ok) throw new Error(`${url}: ${r.status} ${await r.text()}`);
        await r.arrayBuffer();
        const [t] = performance.getEntriesByName(url.href);
        out.push(t.responseEnd - t.requestStart);
        performance.clearResourceTimings();
      }
      return out;
    }, url);
    const warm = times.slice(1).sort((a, b) => a - b);
    rows.push({ call: name, 'cold ms': times[0].toFixed(1), 'warm median ms': warm[5].toFixed(1),
      'warm max ms': warm[9].toFixed(1) });
  }
  const stats = await page.evaluate(async (u) => (await fetch(u)).json(), `${api}/usage`).catch(() => ({}));
  console.log(`collector ${base}, project ${project}${stats.events_this_month !== undefined ? `, ${stats.events_this_month} events this month` : ''}`);
  console.table(rows);
  console.table([{ page: 'login', ...login }, { page: 'overview (logged in)', ...overview }]);
} finally {
  await browser.close();
}
