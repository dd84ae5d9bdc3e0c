// Fills a collector with product events for the funnel benchmark (docs/benchmarks.md, "Funnels
// from the per-user-event-day rollup"): PULSELINE_SEED_EVENTS events (default 10,000,000) over
// the last 30 days, in time order, from PULSELINE_SEED_USERS users (default 100,000) who come
// in visits of one to eight events; event names follow a Zipf law over 20 names, so the
// funnel's steps ("Product Viewed" → "Added to Cart" → "Order Completed", ranks 2, 4 and 7)
// often happen several times a user and day, before and after one another. With
// PULSELINE_SEED_BOT_SHARE (default 0), that share of the visits are crawlers' (their own ids,
// `context.bot = true`), for the dashboard's `include_bots=true` views. Loopback only.
//   PULSELINE_BENCH_URL=http://127.0.0.1:18090 PULSELINE_WRITE_KEY=plw_… node dashboard/bench/funnel-seed.mjs
import { benchTarget, generator, sendAll } from './seed-common.mjs';

const target = benchTarget();
const { base } = target;
const total = Number(process.env.PULSELINE_SEED_EVENTS || 10_000_000);
const users = Number(process.env.PULSELINE_SEED_USERS || 100_000);
const botShare = Number(process.env.PULSELINE_SEED_BOT_SHARE || 0);
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
    // Drawn only when asked for, so that the default dataset stays what it was.
    const bot = botShare > 0 && rnd() < botShare;
    const user = `${bot ? 'crawler' : 'user'}-${Math.floor(rnd() * users)}`;
    const length = 1 + Math.floor(rnd() * rnd() * 8);
    for (let e = 0; e < length && made < total; e++, made++) {
      yield { type: 'track', userId: user, event: name(), timestamp: new Date(Math.min(ts, now)).toISOString(),
        properties: { plan: rnd() < 0.2 ? 'pro' : 'free', value: Math.floor(rnd() * 100) },
        ...(bot ? { context: { bot: true } } : {}) };
      ts += Math.floor(rnd() * 90_000);
    }
  }
}

await sendAll(target, events(), { batch: BATCH, conns: CONNS, every: 500_000, unit: 'events' });
