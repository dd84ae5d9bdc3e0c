// Every dashboard query issue 20 lists, timed cold and warm, with the collector's peak RSS
// (docs/benchmarks.md, "Dashboard at 10 M events"): overview, 30-day chart, Explore with one
// filter and a group-by, a 3-step funnel over 30 days, 8-week retention, sessions (these three
// also with bots), Web Vitals p75, the Web page and the live tail (time to its first message).
// It changes nothing in the store. Two ways to run it:
//
// - Against any running collector (loopback only):
//     PULSELINE_BENCH_URL=http://127.0.0.1:18090 PULSELINE_BENCH_PASSWORD=… node dashboard/bench/queries.mjs
//   "cold" is then the first call of this run, and the peak RSS is read only when
//   PULSELINE_BENCH_PID names the collector's process.
// - Starting the collector itself: PULSELINE_BENCH_COLLECTOR (its binary) and
//   PULSELINE_DATABASE_URL (the filled store), plus PULSELINE_BENCH_PASSWORD. Before each query
//   the collector is restarted on a free loopback port, so "cold" is the first call after a
//   restart (the OS page cache stays warm: it cannot be dropped here), and the peak RSS (VmHWM)
//   is that query's own. Other PULSELINE_* settings pass through to the collector.
//
// Then ten warm calls; the table shows the cold call, the warm median and max, the collector's
// CPU time per warm call (with a known process), and the answer's gist (refusals show their status and message). PULSELINE_BENCH_JSON=file also writes the rows
// as JSON. PULSELINE_BENCH_PROJECT picks the project (default 1), PULSELINE_BENCH_EMAIL the login,
// PULSELINE_BENCH_WARM the number of warm calls (default 10), PULSELINE_BENCH_ONLY (a regular
// expression) the queries whose names match, PULSELINE_BENCH_END where the ranges end.
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { createInterface } from 'node:readline';

const DAY = 86_400_000, HOUR = 3_600_000;
const WARM = Number(process.env.PULSELINE_BENCH_WARM || 10);
if (!(WARM >= 2)) throw new Error('PULSELINE_BENCH_WARM must be at least 2');
const email = process.env.PULSELINE_BENCH_EMAIL || 'admin@localhost';
const password = process.env.PULSELINE_BENCH_PASSWORD;
if (!password) throw new Error('set PULSELINE_BENCH_PASSWORD (the admin password the first start printed)');
const project = process.env.PULSELINE_BENCH_PROJECT || '1';
const binary = process.env.PULSELINE_BENCH_COLLECTOR;
if (binary && !process.env.PULSELINE_DATABASE_URL) throw new Error('PULSELINE_BENCH_COLLECTOR needs PULSELINE_DATABASE_URL');

const loopback = (url) => {
  if (!/^http:\/\/(127\.\d+\.\d+\.\d+|\[::1\]|localhost)(:\d+)?$/.test(url)) {
    throw new Error(`PULSELINE_BENCH_URL must be a loopback http URL, not ${url}`);
  }
  return url;
};

/** VmHWM of a process in MB, or null when it cannot be read. */
const peakRss = (pid) => {
  try {
    const kb = Number(readFileSync(`/proc/${pid}/status`, 'utf8').match(/^VmHWM:\s+(\d+)/m)[1]);
    return Math.round(kb / 1024);
  } catch { return null; }
};
// The collector's CPU time so far (user + system, ms): per warm call it moves less with the
// machine's load than the wall time does.
const cpuMs = (pid) => {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return (Number(fields[11]) + Number(fields[12])) * 10; // utime, stime: ticks of 10 ms (USER_HZ)
  } catch { return null; }
};

// ---- the collector: given, or started (and restarted) here -------------------------------
let child = null;
let base = binary ? null : loopback(process.env.PULSELINE_BENCH_URL || 'http://127.0.0.1:8080');
let pid = binary ? null : process.env.PULSELINE_BENCH_PID || null;

async function start() {
  child = spawn(binary, ['serve'], {
    env: { ...process.env, PULSELINE_LISTEN: '127.0.0.1:0', PULSELINE_LOG: process.env.PULSELINE_LOG || 'warn' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const exited = new Promise((_, fail) => child.once('exit', (code) => fail(new Error(`the collector exited (${code})`))));
  const listening = (async () => {
    for await (const line of createInterface({ input: child.stdout })) {
      const m = line.match(/^Listening on (http:\/\/\S+)/);
      if (m) return m[1];
    }
    throw new Error('the collector closed its output before listening');
  })();
  base = loopback(await Promise.race([listening, exited]));
  child.stdout.resume();
  pid = child.pid;
  // Ready = migrations done and the store answers.
  for (const deadline = Date.now() + 120_000; ;) {
    const r = await fetch(`${base}/readyz`).catch(() => null);
    if (r?.ok) return;
    if (Date.now() > deadline) throw new Error('the collector was not ready within 120 s');
    await new Promise((ok) => setTimeout(ok, 100));
  }
}

async function stop() {
  if (!child || child.exitCode !== null) return;
  const done = new Promise((ok) => child.once('exit', ok));
  child.kill('SIGTERM');
  await done;
}

let cookie = null;
async function login() {
  const r = await fetch(`${base}/api/dash/session`, { method: 'POST',
    headers: { 'content-type': 'application/json', origin: base }, body: JSON.stringify({ email, password }) });
  if (!r.ok) throw new Error(`login: ${r.status} ${await r.text()}`);
  cookie = r.headers.get('set-cookie').split(';')[0];
}

// ---- the queries --------------------------------------------------------------------------
// The ranges end now, or at PULSELINE_BENCH_END (unix ms): the end of a partly filled store's
// data (the overview, the Web page and the tail always read the present).
const now = Number(process.env.PULSELINE_BENCH_END || Date.now());
const last = (days) => `from=${now - days * DAY}&to=${now}`;
const steps = encodeURIComponent('Product Viewed,Added to Cart,Order Completed');
const coverage = (a) => (a.coverage ? `; covers from ${new Date(a.coverage.from).toISOString().slice(0, 16)}` : '');
const queries = [
  ['overview', '/overview', (a) => `today ${a.events_today}, DAU ${a.dau} / WAU ${a.wau} / MAU ${a.mau}`],
  ['30-day chart, all events by day', `/series?${last(30)}&bucket=${DAY}`,
    (a) => `${a.series[0].values.reduce((s, v) => s + (v ?? 0), 0)} events${coverage(a)}`],
  ['30-day chart, Product Viewed by hour', `/series?event=Product%20Viewed&${last(30)}&bucket=${HOUR}`, coverage],
  ['Explore 30 days: Product Viewed, plan=pro, by country', `/series?event=Product%20Viewed&${last(30)}&bucket=${DAY}&filter_property=plan&filter_value=pro&group_by=country`,
    (a) => `${a.series.length} series${coverage(a)}`],
  ['Explore 30 days: all events, plan=pro, by country', `/series?${last(30)}&bucket=${DAY}&filter_property=plan&filter_value=pro&group_by=country`,
    (a) => `${a.series.length} series${coverage(a)}`],
  ['3-step funnel, 30 days', `/funnel?steps=${steps}&${last(30)}`,
    (a) => `users ${a.map((s) => s.users).join(' → ')}`],
  ['retention, 8 weeks by week', `/retention?${last(56)}&period=week`, (a) => `${a.length} cohorts of ${a.reduce((s, c) => s + c.users, 0)} users`],
  ['sessions, 7 days', `/sessions?${last(7)}`, (a) => `${a.sessions} sessions`],
  ['sessions, 30 days', `/sessions?${last(30)}`, (a) => `${a.sessions} sessions`],
  // The same three with bots counted in (`include_bots=true`: bots' rollups since migration 0052).
  ['3-step funnel, 30 days, with bots', `/funnel?steps=${steps}&${last(30)}&include_bots=true`,
    (a) => `users ${a.map((s) => s.users).join(' → ')}`],
  ['retention, 8 weeks by week, with bots', `/retention?${last(56)}&period=week&include_bots=true`,
    (a) => `${a.length} cohorts of ${a.reduce((s, c) => s + c.users, 0)} users`],
  ['sessions, 30 days, with bots', `/sessions?${last(30)}&include_bots=true`, (a) => `${a.sessions} sessions`],
  ['Web Vitals p75, 30 days', `/vitals?${last(30)}`,
    (a) => a.metrics.map((m) => `${m.vital.metric} ${Math.round(m.overall.p75 * 100) / 100}`).join(', ')],
  ['Web page, 30 days', '/web?period=30d', (a) => (a.behind ? `fold behind by ${a.behind.pageviews} page views` : '')],
  ['live tail, first message', '/tail', null],
];

/** One call: [ms, gist or error]. The tail is timed to its first `events` message. */
async function call(path, gist) {
  const url = `${base}/api/dash/projects/${project}${path}`;
  for (const deadline = Date.now() + 30_000; ;) {
    const ac = new AbortController();
    const started = performance.now();
    const r = await fetch(url, { headers: { cookie }, signal: ac.signal });
    if (r.status === 429 && Date.now() < deadline) {
      // A tail slot is freed once the server notices the previous stream closed.
      await r.arrayBuffer();
      await new Promise((ok) => setTimeout(ok, 200));
      continue;
    }
    if (!r.ok) {
      const text = await r.text();
      return [performance.now() - started, `${r.status}: ${text.slice(0, 80)}`, false];
    }
    if (!gist) {
      const reader = r.body.getReader();
      const decoder = new TextDecoder();
      let seen = '';
      const message = /^event: ?events\r?\ndata: ?(.*)\r?\n/m;
      while (!message.test(seen)) {
        const { value, done } = await reader.read();
        if (done) break;
        seen += decoder.decode(value, { stream: true });
      }
      const ms = performance.now() - started;
      ac.abort();
      let count = '?';
      try { count = JSON.parse(seen.match(message)[1]).length; } catch { /* the gist is a convenience */ }
      return [ms, `${count} events in the first message`, true];
    }
    const body = await r.json();
    const ms = performance.now() - started;
    let summary = '';
    try { summary = gist(body); } catch { /* the gist is a convenience, not the measure */ }
    return [ms, summary, true];
  }
}

const rows = [];
const load = () => readFileSync('/proc/loadavg', 'utf8').split(' ')[0];
try {
  if (!binary) await login();
  const only = new RegExp(process.env.PULSELINE_BENCH_ONLY || '', 'i');
  for (const [name, path, gist] of queries.filter(([name]) => only.test(name))) {
    if (binary) {
      await stop();
      await start();
      await login();
    }
    const loadBefore = load();
    const [cold, answer, ok] = await call(path, gist);
    const warm = [];
    const cpuBefore = pid ? cpuMs(pid) : null;
    for (let i = 0; i < WARM; i++) warm.push((await call(path, gist))[0]);
    const cpuAfter = pid ? cpuMs(pid) : null;
    warm.sort((a, b) => a - b);
    const median = warm.length % 2 ? warm[(warm.length - 1) / 2] : (warm[warm.length / 2 - 1] + warm[warm.length / 2]) / 2;
    const row = { query: name, 'cold ms': Math.round(cold), 'warm median ms': Math.round(median),
      'warm max ms': Math.round(warm[WARM - 1]),
      'warm CPU ms': cpuBefore === null || cpuAfter === null ? null : Math.round((cpuAfter - cpuBefore) / WARM),
      'peak RSS MB': pid ? peakRss(pid) : null, load1: loadBefore,
      answer: ok ? answer : `REFUSED ${answer}` };
    rows.push(row);
    console.error(JSON.stringify(row));
  }
} finally {
  await stop();
}
console.log(`collector ${binary ? `${binary} on ${process.env.PULSELINE_DATABASE_URL}` : base}, project ${project}, ` +
  `${new Date(now).toISOString()}; cold = ${binary ? 'first call after a restart' : 'first call of this run'}; warm = median of ${WARM}`);
console.table(rows);
if (process.env.PULSELINE_BENCH_JSON) writeFileSync(process.env.PULSELINE_BENCH_JSON, JSON.stringify(rows, null, 1));
