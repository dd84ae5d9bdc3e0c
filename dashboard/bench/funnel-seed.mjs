// Fills a collector with product events for the funnel benchmark (docs/benchmarks.md, "Funnels
// from the per-user-event-day rollup"): PULSELINE_SEED_EVENTS events (default 10,000,000) over
// the last 30 days, in time order, from PULSELINE_SEED_USERS users (default 100,000) who come
// in visits of one to eight events; event names follow a Zipf law over 20 names, so the
// funnel's steps ("Product Viewed" → "Added to Cart" → "Order Completed", ranks 2, 4 and 7)
// often happen several times a user and day, before and after one another. Loopback only.
//   PULSELINE_BENCH_URL=http://127.0.0.1:18090 PULSELINE_WRITE_KEY=plw_… node dashboard/bench/funnel-seed.mjs
const base = process.env.PULSELINE_BENCH_URL || 'http://127.0.0.1:8080';
if (!/^http:\/\/(127\.\d+\.\d+\.\d+|\[::1\]|localhost)(:\d+)?$/.test(base)) {
  throw new Error(`PULSELINE_BENCH_URL must be a loopback http URL, not ${base}`);
}
const key = process.env.PULSELINE_WRITE_KEY;
if (!key) throw new Error('set PULSELINE_WRITE_KEY (a write key of the project to fill)');
const total = Number(process.env.PULSELINE_SEED_EVENTS || 10_000_000);
const users = Number(process.env.PULSELINE_SEED_USERS || 100_000);
const BATCH = 500, CONNS = 4, DAY = 86_400_000;

// A small deterministic generator (mulberry32), so two runs fill the same traffic. Not an LCG
// modulo 2^31: its low bits repeat with a short period, and users drawn from it collapse to a
// thousand.
let seed = 7;
const rnd = () => {
  seed = (seed + 0x6d2b79f5) | 0;
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
};
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

const auth = `Basic ${Buffer.from(`${key}:`).toString('base64')}`;
const source = events();
let sent = 0;
const started = Date.now();
async function worker() {
  for (;;) {
    const batch = [];
    for (let i = 0; i < BATCH; i++) {
      const n = source.next();
      if (n.done) break;
      batch.push(n.value);
    }
    if (!batch.length) return;
    for (;;) {
      const r = await fetch(`${base}/v1/batch`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: auth },
        body: JSON.stringify({ batch }) });
      if (r.ok) break;
      if (r.status !== 429 && r.status !== 503) throw new Error(`${r.status} ${await r.text()}`);
      await new Promise((ok) => setTimeout(ok, 1000));
    }
    sent += batch.length;
    if (sent % 500_000 < BATCH) console.log(`${sent} events, ${Math.round(sent / ((Date.now() - started) / 1000))}/s`);
  }
}
await Promise.all(Array.from({ length: CONNS }, worker));
console.log(`sent ${sent} events in ${((Date.now() - started) / 1000).toFixed(0)} s`);
