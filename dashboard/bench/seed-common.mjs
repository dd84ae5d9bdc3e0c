// What the bench seeders share: the loopback-only target, a deterministic generator, and the
// batched sender that retries what the collector asks to retry (429, 503).

/** The collector to fill (PULSELINE_BENCH_URL), refused unless it is on loopback. */
export function benchTarget() {
  const base = process.env.PULSELINE_BENCH_URL || 'http://127.0.0.1:8080';
  if (!/^http:\/\/(127\.\d+\.\d+\.\d+|\[::1\]|localhost)(:\d+)?$/.test(base)) {
    throw new Error(`PULSELINE_BENCH_URL must be a loopback http URL, not ${base}`);
  }
  const key = process.env.PULSELINE_WRITE_KEY;
  if (!key) throw new Error('set PULSELINE_WRITE_KEY (a write key of the project to fill)');
  return { base, key };
}

/**
 * mulberry32 from `seed`: two runs fill the same traffic. Not an LCG in doubles: its low bits
 * repeat with a short period, and ids drawn from it collapse to about a thousand.
 */
export function generator(seed) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Sends every message of `source` (an iterator) in batches over `conns` connections. */
export async function sendAll({ base, key }, source, { batch = 500, conns = 4, every, unit }) {
  const auth = `Basic ${Buffer.from(`${key}:`).toString('base64')}`;
  let sent = 0;
  const started = Date.now();
  async function worker() {
    for (;;) {
      const messages = [];
      for (let i = 0; i < batch; i++) {
        const n = source.next();
        if (n.done) break;
        messages.push(n.value);
      }
      if (!messages.length) return;
      for (let refused = 0; ; ) {
        // A collector restarting (another build swapped in) refuses connections for a while:
        // the batch is sent again, and its message ids keep it from being stored twice.
        const r = await fetch(`${base}/v1/batch`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: auth },
          body: JSON.stringify({ batch: messages }) }).catch((e) => {
          if (++refused > 120) throw e;
          return null;
        });
        if (r?.ok) break;
        if (r && r.status !== 429 && r.status !== 503) throw new Error(`${r.status} ${await r.text()}`);
        await new Promise((ok) => setTimeout(ok, 1000));
      }
      sent += messages.length;
      if (sent % every < batch) console.log(`${sent} ${unit}, ${Math.round(sent / ((Date.now() - started) / 1000))}/s`);
    }
  }
  await Promise.all(Array.from({ length: conns }, worker));
  console.log(`sent ${sent} ${unit} in ${((Date.now() - started) / 1000).toFixed(0)} s`);
  return sent;
}
