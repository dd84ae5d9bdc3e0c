// Fills a collector with the dashboard benchmark's dataset (docs/benchmarks.md, "Dashboard at
// 10 M events"): PULSELINE_SEED_EVENTS events (default 10,000,000) over the last
// PULSELINE_SEED_DAYS days (default 90), in time order with a daily rhythm, from
// PULSELINE_SEED_USERS users (default 100,000) who arrive over the first two thirds of the
// range (so weekly cohorts differ) and come in visits of one to sixteen events: often a page
// view first, then product events whose names follow a Zipf law over 20 names (the funnel's
// "Product Viewed" → "Added to Cart" → "Order Completed" are ranks 2, 4 and 7) and now and then
// another page view; 40% of page views send a Web Vital sample. About 11% of the events are
// page views and 5% Web Vitals. Properties are plan (free/pro/enterprise), country (Zipf over 10),
// a numeric `value` and, on page views, the source/browser/OS/device context the Web page reads.
// Deterministic: message ids are `ds-<n>`, so a rerun stores nothing twice (the collector
// dedupes them). To resume an interrupted fill, give PULSELINE_SEED_FROM (the events already
// stored: they are generated again but not sent) and PULSELINE_SEED_END (the end of the range,
// unix ms, which the first run prints) so the rest lands where it would have. Loopback only.
//   PULSELINE_BENCH_URL=http://127.0.0.1:18090 PULSELINE_WRITE_KEY=plw_… node dashboard/bench/dataset.mjs
import { benchTarget, generator, sendAll } from './seed-common.mjs';

const target = benchTarget();
const total = Number(process.env.PULSELINE_SEED_EVENTS || 10_000_000);
const users = Number(process.env.PULSELINE_SEED_USERS || 100_000);
const days = Number(process.env.PULSELINE_SEED_DAYS || 90);
const DAY = 86_400_000, MIN = 60_000;

const rnd = generator(2020);
const pick = (xs) => xs[Math.floor(rnd() * xs.length)];
/** A sampler of `xs` with Zipf (1/rank) weights. */
const zipf = (xs) => {
  const w = xs.map((_, i) => 1 / (i + 1));
  const sum = w.reduce((a, b) => a + b, 0);
  let acc = 0;
  const cumulative = w.map((x) => (acc += x / sum));
  return () => { const r = rnd(); return xs[cumulative.findIndex((c) => r <= c)] ?? xs[xs.length - 1]; };
};
/** exp(N(ln median, sigma)): the long right tail of durations and amounts. */
const logNormal = (median, sigma) => median * Math.exp(sigma * Math.sqrt(-2 * Math.log(1 - rnd())) * Math.cos(2 * Math.PI * rnd()));

const productEvent = zipf(['Page Viewed', 'Product Viewed', 'Search', 'Added to Cart', 'Logged In', 'Product List Viewed',
  'Order Completed', 'Checkout Started', 'Signed Up', 'Coupon Applied', 'Removed from Cart', 'Wishlist Added',
  'Review Posted', 'Shared', 'Plan Upgraded', 'Support Opened', 'Invite Sent', 'Export Downloaded',
  'Settings Changed', 'Logged Out']);
const country = zipf(['US', 'DE', 'GB', 'IN', 'FR', 'BR', 'JP', 'CA', 'NL', 'ES']);
const path = zipf(['/', '/pricing', '/docs', '/blog', '/signup', '/login', '/features', '/about', '/changelog', '/contact',
  ...Array.from({ length: 190 }, (_, i) => `/blog/post-${i}`)]);
const sources = [
  [{ name: 'Google', medium: 'search' }, 'https://www.google.com/'], [{ name: 'Direct / None', medium: 'none' }, ''],
  [{ name: 'Hacker News', medium: 'social' }, 'https://news.ycombinator.com/'], [{ name: 'Bing', medium: 'search' }, 'https://www.bing.com/'],
  [{ name: 'GitHub', medium: 'referral' }, 'https://github.com/'], [{ name: 'Reddit', medium: 'social' }, 'https://www.reddit.com/'],
];
const agents = [[{ name: 'Chrome' }, { name: 'Windows' }, 'desktop'], [{ name: 'Firefox' }, { name: 'Linux' }, 'desktop'],
  [{ name: 'Safari' }, { name: 'iOS' }, 'mobile'], [{ name: 'Chrome' }, { name: 'Android' }, 'mobile'], [{ name: 'Safari' }, { name: 'macOS' }, 'desktop']];
// Medians and spreads near CrUX's for a typical site.
const vitals = [['LCP', 2200, 0.6, 2500, 4000], ['INP', 160, 0.7, 200, 500], ['CLS', 0.05, 1.0, 0.1, 0.25],
  ['FCP', 1400, 0.5, 1800, 3000], ['TTFB', 600, 0.6, 800, 1800]];

// A daily rhythm (busiest in the UTC afternoon): the minute a fraction of a day's events reaches.
const rhythm = Array.from({ length: 1440 }, (_, m) => 1 + 0.6 * Math.sin(2 * Math.PI * (m / 1440 - 0.375)));
const rhythmSum = rhythm.reduce((a, b) => a + b, 0);
const rhythmCdf = ((acc) => rhythm.map((w) => (acc += w / rhythmSum)))(0);
const minuteOf = (f) => { let lo = 0, hi = 1439; while (lo < hi) { const mid = (lo + hi) >> 1; if (rhythmCdf[mid] < f) lo = mid + 1; else hi = mid; } return lo; };

const now = Number(process.env.PULSELINE_SEED_END || Date.now());
const first = now - days * DAY;
const skip = Number(process.env.PULSELINE_SEED_FROM || 0);
console.log(`events ds-${skip}.. of ${total}, range end PULSELINE_SEED_END=${now}`);

function* events() {
  let made = 0;
  while (made < total) {
    const progress = made / total;
    const day = Math.floor(progress * days);
    const minute = minuteOf(progress * days - day);
    let ts = first + day * DAY + minute * MIN + Math.floor(rnd() * MIN);
    // Users arrive over the first two thirds of the range; the active ones come back more.
    const arrived = Math.max(0.2, Math.min(1, progress * 1.5));
    const user = `user-${Math.floor(users * arrived * rnd() ** 1.3)}`;
    const plan = rnd() < 0.75 ? 'free' : rnd() < 0.8 ? 'pro' : 'enterprise';
    const where = country();
    const [source, referrer] = pick(sources);
    const [browser, os, device] = pick(agents);
    const context = { source, browser, os, device: { type: device }, location: { country: where } };
    const length = 1 + Math.floor(rnd() * rnd() * 16);
    for (let e = 0; e < length && made < total; e++) {
      const at = new Date(Math.min(ts, now)).toISOString();
      const base = { messageId: `ds-${made}`, userId: user, timestamp: at };
      if (e === 0 ? rnd() < 0.4 : rnd() < 0.04) {
        const p = path();
        yield { ...base, type: 'page', name: p,
          context: { ...context, page: { path: p, url: `https://shop.example${p}`, referrer: e ? 'https://shop.example/' : referrer } } };
        made++;
        if (rnd() < 0.4 && made < total) {
          const [metric, median, sigma, good, poor] = pick(vitals);
          const value = Math.round(logNormal(median, sigma) * 1000) / 1000;
          const rating = value <= good ? 'good' : value <= poor ? 'needs-improvement' : 'poor';
          yield { messageId: `ds-${made}`, userId: user, timestamp: at, type: 'track', event: 'Web Vital',
            properties: { metric, value, rating, path: p, navigationType: 'navigate' } };
          made++;
        }
      } else {
        yield { ...base, type: 'track', event: productEvent(),
          properties: { plan, country: where, value: Math.round(logNormal(40, 0.8) * 100) / 100 } };
        made++;
      }
      ts += Math.floor(rnd() * 3 * MIN);
    }
  }
}

function* rest() {
  let n = 0;
  for (const e of events()) if (n++ >= skip) yield e;
}

await sendAll(target, rest(), { batch: 500, conns: 4, every: 500_000, unit: 'events' });
