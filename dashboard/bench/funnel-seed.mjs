// Fills a collector with product events for the funnel benchmark (docs/benchmarks.md, "Funnels
// from the per-user-event-day rollup"): PULSELINE_SEED_EVENTS events (default 10,000,000) over
// the last 30 days, in time order, from PULSELINE_SEED_USERS users (default 100,000) who come
// in visits of one to eight events; event names follow a Zipf law over 20 names, so the
// funnel's steps ("Product Viewed" → "Added to Cart" → "Order Completed", ranks 2, 4 and 7)
// often happen several times a user and day, before and after one another. Loopback only.
//   PULSELINE_BENCH_URL=http://127.0.0.1:18090 PULSELINE_WRITE_KEY=plw_… node dashboard/bench/funnel-seed.mjs
import { benchTarget, generator, sendAll } from './seed-common.mjs';

const target = benchTarget();
const { base } = target;
const total = Number(process.env.PULSELINE_SEED_EVENTS || 10_000_000);
const users = Number(process.env.PULSELINE_SEED_USERS || 100_000);
const BATCH = 500, CONNS = 4, DAY = 86_400_000;

const rnd = generator(7);
const names = ['Page Viewed', 'Product Viewed', 'Search', 'Added to Cart', 'Logged In', 'Product List Viewed',
  'Order Completed', 'Checkout Started', 'Signed Up', 'Coupon Applied', 'Removed from Cart', 'Wishlist Added',
  'Review Posted', 'Shared', 'Plan Upgraded', 'Support Opened', 'Invite Sent', 'Export Downloaded',
  'Settings Changed', 'Logged Out'];
// Cumulative Zipf weights (1/rank).
const weights = names.map((_, i) => 1 / (i + 1));
const sum = weights.reduce((a, b) => a + b, 0);
const cumulative = weights.map(((acc) => (w) => (acc += w / sum))(0));
const name = () => { const r = rnd(); return names[cumulative.findIndex((c) => r <= c)] ?? names[names.length - 1]; };
const now = Date.now();
const first = now - 30 * DAY;

function* events() {
  let made = 0;
  while (made < total) {
    // Visits start in time order; their events follow within minutes.
    let ts = first + Math.floor((made / total) * 30 * DAY);
    const user = `user-${Math.floor(rnd() * users)}`;
    const length = 1 + Math.floor(rnd() * rnd() * 8);
    for (let e = 0; e < length && made < total; e++, made++) {
      yield { type: 'track', userId: user, event: name(), timestamp: new Date(Math.min(ts, now)).toISOString(),
        properties: { plan: rnd() < 0.2 ? 'pro' : 'free', value: Math.floor(rnd() * 100) } };
      ts += Math.floor(rnd() * 90_000);
    }
  }
}

await sendAll(target, events(), { batch: BATCH, conns: CONNS, every: 500_000, unit: 'events' });
