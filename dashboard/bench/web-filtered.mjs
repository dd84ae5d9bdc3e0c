// Times the Web page's filtered views (docs/dashboard-web.md, "Filtered views") against a
// running collector filled by web-seed.mjs: for each view, one cold call then ten warm ones,
// timed on loopback, and the median and max of the warm ones. It changes nothing in the store.
//   PULSELINE_BENCH_URL=http://127.0.0.1:18090 PULSELINE_BENCH_PASSWORD=… node dashboard/bench/web-filtered.mjs
// PULSELINE_BENCH_VIEWS (optional) replaces the list: queries separated by spaces.
const base = process.env.PULSELINE_BENCH_URL || 'http://127.0.0.1:8080';
if (!/^http:\/\/(127\.\d+\.\d+\.\d+|\[::1\]|localhost)(:\d+)?$/.test(base)) {
  throw new Error(`PULSELINE_BENCH_URL must be a loopback http URL, not ${base}`);
}
const password = process.env.PULSELINE_BENCH_PASSWORD;
if (!password) throw new Error('set PULSELINE_BENCH_PASSWORD (the admin password the first start printed)');
const email = process.env.PULSELINE_BENCH_EMAIL || 'admin@localhost';
const project = process.env.PULSELINE_BENCH_PROJECT || 1;
const WARM = 10;

// The seed's values (web-seed.mjs, web-seed-sqlite.sh): Google is a sixth of the visits, DE a
// tenth, /pricing one of 200 paths, mobile two fifths.
const views = (process.env.PULSELINE_BENCH_VIEWS || [
  'period=30d',
  'period=30d&source=Google',
  'period=30d&country=DE',
  'period=30d&page=%2Fpricing',
  'period=30d&source=Google&country=DE',
  'period=30d&page=%2Fpricing&device=mobile',
  'period=30d&device=mobile',
  'period=today&source=Google',
  // Unbounded dimensions (pair rows for their heavy value-days only, migration 0056): a sixth
  // of the visits come from google.com, a tenth from the newsletter, a thirtieth of the
  // campaign spring; each path starts and ends about one visit in 200.
  'period=30d&referrer=google.com',
  'period=30d&utm_source=newsletter',
  'period=30d&utm_campaign=spring',
  'period=30d&entry_page=%2F',
  'period=30d&exit_page=%2F',
].join(' ')).split(' ').filter(Boolean);

const login = await fetch(`${base}/api/dash/session`, {
  method: 'POST',
  headers: { 'content-type': 'application/json', origin: base },
  body: JSON.stringify({ email, password }),
});
if (!login.ok) throw new Error(`login: ${login.status} ${await login.text()}`);
const cookie = login.headers.get('set-cookie').split(';')[0];

async function timed(query) {
  const started = performance.now();
  const r = await fetch(`${base}/api/dash/projects/${project}/web?${query}`, { headers: { cookie } });
  const body = await r.json();
  if (!r.ok) throw new Error(`${query}: ${r.status} ${JSON.stringify(body)}`);
  return [performance.now() - started, body];
}

console.log('| view | cold ms | warm median ms | warm max ms | visits | coverage_from |');
console.log('|---|---|---|---|---|---|');
for (const query of views) {
  const [cold, body] = await timed(query);
  const warm = [];
  for (let i = 0; i < WARM; i++) warm.push((await timed(query))[0]);
  warm.sort((a, b) => a - b);
  const median = (warm[WARM / 2 - 1] + warm[WARM / 2]) / 2;
  const covered = body.coverage_from ? new Date(body.coverage_from).toISOString() : '—';
  console.log(`| ${query} | ${cold.toFixed(0)} | ${median.toFixed(0)} | ${warm[WARM - 1].toFixed(0)} | `
    + `${body.current.visits} | ${covered} |`);
}
