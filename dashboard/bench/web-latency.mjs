// Times the Web page's API calls (docs/dashboard-web.md, "Measured latency") against a running
// collector filled by web-seed.mjs: each call once cold, then ten times warm, from request to
// last byte over loopback (Node's fetch, one connection). It changes nothing in the store.
//   PULSELINE_BENCH_URL=http://127.0.0.1:18090 PULSELINE_BENCH_PASSWORD=… node dashboard/bench/web-latency.mjs
// PULSELINE_BENCH_PROJECT picks the project (default 1). A call whose answer still carries
// `behind` (the fold has not caught up) is reported as such: the figures are for a folded store.
import { benchTarget } from './seed-common.mjs';

process.env.PULSELINE_WRITE_KEY ||= 'unused';
const { base } = benchTarget();
const email = process.env.PULSELINE_BENCH_EMAIL || 'admin@localhost';
const password = process.env.PULSELINE_BENCH_PASSWORD;
if (!password) throw new Error('set PULSELINE_BENCH_PASSWORD (the admin password the first start printed)');
const project = process.env.PULSELINE_BENCH_PROJECT || 1;

const login = await fetch(`${base}/api/dash/session`, { method: 'POST',
  headers: { 'content-type': 'application/json', origin: base }, body: JSON.stringify({ email, password }) });
if (!login.ok) throw new Error(`login: ${login.status} ${await login.text()}`);
const cookie = login.headers.get('set-cookie').split(';')[0];

const api = `${base}/api/dash/projects/${project}`;
const calls = {
  'web, today': `${api}/web?period=today`,
  'web, last 7 days': `${api}/web?period=7d`,
  'web, last 30 days': `${api}/web?period=30d`,
  'web, last 90 days': `${api}/web?period=90d`,
  'web, 30 days, country=DE (one chip)': `${api}/web?period=30d&country=DE`,
  'web, realtime': `${api}/web/realtime`,
};

async function timed(url) {
  const started = process.hrtime.bigint();
  const r = await fetch(url, { headers: { cookie } });
  const body = await r.text();
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  if (!r.ok) throw new Error(`${url}: ${r.status} ${body}`);
  return { ms, body: JSON.parse(body) };
}

const rows = [];
for (const [call, url] of Object.entries(calls)) {
  const cold = await timed(url);
  const warm = [];
  for (let i = 0; i < 10; i++) warm.push((await timed(url)).ms);
  warm.sort((a, b) => a - b);
  rows.push({ call, 'cold ms': cold.ms.toFixed(0), 'warm median ms': ((warm[4] + warm[5]) / 2).toFixed(0),
    'warm max ms': warm[9].toFixed(0), note: cold.body.behind ? 'fold behind' : (cold.body.coverage_from ? 'partial coverage' : '') });
}
console.log(`collector ${base}, project ${project}`);
console.table(rows);
