// Fills a collector with page views for the Web page's benchmark (docs/dashboard-web.md):
// PULSELINE_SEED_VIEWS page views (default 1,000,000) over the last PULSELINE_SEED_DAYS days
// (default 30), through the ingest API with a write key, from PULSELINE_SEED_VISITORS visitors
// (default 150,000) who come back in visits of one to six pages with realistic context (source,
// referrer, campaign, country, browser, OS, device), at random times over the period, or in
// time order with PULSELINE_SEED_ORDER=time (as live traffic arrives). Loopback only. With
// PULSELINE_BENCH_PASSWORD (the admin's) it then watches the Web page of PULSELINE_BENCH_PROJECT
// (default 1) until the background fold (collector/src/store/visits.rs) has caught up, and
// reports how long that took. Ten million:
//   PULSELINE_BENCH_URL=http://127.0.0.1:18090 PULSELINE_WRITE_KEY=plw_… PULSELINE_SEED_VIEWS=10000000 \
//     PULSELINE_SEED_VISITORS=1000000 PULSELINE_SEED_DAYS=90 PULSELINE_BENCH_PASSWORD=… \
//     node dashboard/bench/web-seed.mjs
import { benchTarget, generator, sendAll } from './seed-common.mjs';

const target = benchTarget();
const { base } = target;
const total = Number(process.env.PULSELINE_SEED_VIEWS || 1_000_000);
const visitors = Number(process.env.PULSELINE_SEED_VISITORS || 150_000);
const days = Number(process.env.PULSELINE_SEED_DAYS || 30);
const order = process.env.PULSELINE_SEED_ORDER || 'random';
if (!['random', 'time'].includes(order)) throw new Error(`PULSELINE_SEED_ORDER is random or time, not ${order}`);
const BATCH = 500, CONNS = 4, DAY = 86_400_000, MIN = 60_000;

const rnd = generator(42);
const pick = (xs) => xs[Math.floor(rnd() * xs.length)];
const paths = Array.from({ length: 200 }, (_, i) => (i < 10 ? ['/', '/pricing', '/docs', '/blog', '/signup', '/login', '/about', '/features', '/changelog', '/contact'][i] : `/blog/post-${i}`));
const sources = [
  [{ name: 'Google', medium: 'search' }, 'https://www.google.com/'], [{ name: 'Direct / None', medium: 'none' }, ''],
  [{ name: 'Hacker News', medium: 'social' }, 'https://news.ycombinator.com/'], [{ name: 'Bing', medium: 'search' }, 'https://www.bing.com/'],
  [{ name: 'GitHub', medium: 'referral' }, 'https://github.com/'], [{ name: 'Reddit', medium: 'social' }, 'https://www.reddit.com/'],
];
const agents = [[{ name: 'Chrome' }, { name: 'Windows' }, 'desktop'], [{ name: 'Firefox' }, { name: 'Linux' }, 'desktop'],
  [{ name: 'Safari' }, { name: 'iOS' }, 'mobile'], [{ name: 'Chrome' }, { name: 'Android' }, 'mobile'], [{ name: 'Safari' }, { name: 'macOS' }, 'desktop']];
const countries = ['US', 'DE', 'FR', 'GB', 'IN', 'BR', 'JP', 'CA', 'NL', 'ES'];
const now = Date.now();

function* visits() {
  let made = 0;
  while (made < total) {
    const visitor = `bench-${Math.floor(rnd() * visitors)}`;
    const [source, referrer] = pick(sources);
    const [browser, os, device] = pick(agents);
    const context = { source, browser, os, device: { type: device }, location: { country: pick(countries) } };
    if (rnd() < 0.1) context.campaign = { source: 'newsletter', medium: 'email', name: pick(['spring', 'launch', 'weekly']) };
    let ts = order === 'time'
      ? now - days * DAY + Math.floor((made / total) * days * DAY)
      : now - Math.floor(rnd() * days * DAY);
    const pages = 1 + Math.floor(rnd() * rnd() * 6);
    for (let p = 0; p < pages && made < total; p++, made++) {
      const path = pick(paths);
      yield { type: 'page', messageId: `web-seed-${made}`, anonymousId: visitor, name: path, timestamp: new Date(Math.min(ts, now)).toISOString(),
        context: { ...context, page: { path, url: `https://site.example${path}`, referrer: p ? 'https://site.example/' : referrer } } };
      ts += Math.floor(rnd() * 4 * MIN);
    }
  }
}

await sendAll(target, visits(), { batch: BATCH, conns: CONNS, every: 100_000, unit: 'page views' });

// The background fold catches up after ingest (the page never folds): poll the page's
// "behind" note until it is gone and report how long that took after the last acknowledgement.
const password = process.env.PULSELINE_BENCH_PASSWORD;
if (password) {
  const email = process.env.PULSELINE_BENCH_EMAIL || 'admin@localhost';
  const login = await fetch(`${base}/api/dash/session`, { method: 'POST',
    headers: { 'content-type': 'application/json', origin: base }, body: JSON.stringify({ email, password }) });
  if (!login.ok) throw new Error(`login: ${login.status} ${await login.text()}`);
  const cookie = login.headers.get('set-cookie').split(';')[0];
  const project = process.env.PULSELINE_BENCH_PROJECT || 1;
  const acked = Date.now();
  let first = null;
  for (;;) {
    // A filtered one-day view: cheap, and it carries the same note.
    const r = await fetch(`${base}/api/dash/projects/${project}/web?period=today&country=ZZ`, { headers: { cookie } });
    if (!r.ok) throw new Error(`web: ${r.status} ${await r.text()}`);
    const { behind } = await r.json();
    if (first === null) first = behind ? behind.pageviews : 0;
    if (!behind) break;
    await new Promise((ok) => setTimeout(ok, 500));
  }
  const secs = (Date.now() - acked) / 1000;
  console.log(`${first} page views were queued at the last acknowledgement; the fold caught up ${secs.toFixed(1)} s later`);
}
