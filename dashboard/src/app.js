// The Pulseline dashboard: plain ES modules, no build step. Charts: uPlot (from npm, embedded
// by collector/build.rs). Every change carries the session's CSRF token.
import uPlot from '/assets/uplot.esm.js';

import { $, DAY, HOUR, api, card, cssVar, errorBox, fmt, h, iso, loadInto, parseExact, pct, plain, setCsrf } from '/assets/ui.js';
import * as alerting from '/assets/alerts.js';
import { churnCard } from '/assets/churn.js';
import { inbound } from '/assets/inbound.js';
import { web } from '/assets/web.js';
import * as sharing from '/assets/share.js';
import { digest } from '/assets/digest.js';
import { botNote, wantBots } from '/assets/bots.js';

const main = $('#main');
// The login form has its own element: a page still loading when its user logs out renders into
// the hidden `main`, never over the form.
const login = $('#login');
// Bumped by every route and every login form: a route whose number is no longer current stops.
let routeSeq = 0;
let session = null;
let projects = [];
let tail = null;
const charts = [];

// ---- helpers -------------------------------------------------------------------------------
const PALETTE = ['--accent', '--good', '--warn', '--bad', '--muted'];

// A uPlot chart that fills its container, follows the theme and resizes with the page.
function chart(container, xs, series, { onZoom, thresholds = [], timeZone } = {}) {
  container.textContent = '';
  const width = Math.max(container.clientWidth || 300, 280);
  const opts = {
    width, height: 240,
    // Days drawn in the project's time zone, not the browser's, when the page has one.
    ...(timeZone ? { tzDate: (ts) => uPlot.tzDate(new Date(ts * 1000), timeZone) } : {}),
    scales: { x: { time: true } },
    axes: [{ stroke: cssVar('--muted'), grid: { stroke: cssVar('--line') } },
           { stroke: cssVar('--muted'), grid: { stroke: cssVar('--line') }, size: 60 }],
    series: [{}, ...series.map((s, i) => ({
      label: s.name, stroke: cssVar(PALETTE[i % PALETTE.length]), width: 2,
      fill: series.length === 1 ? cssVar('--accent') + '22' : undefined, spanGaps: false,
    }))],
    cursor: { drag: { x: true, y: false } },
    hooks: {
      setSelect: [(u) => {
        if (u.select.width > 5 && onZoom) {
          onZoom(Math.round(u.posToVal(u.select.left, 'x') * 1000),
                 Math.round(u.posToVal(u.select.left + u.select.width, 'x') * 1000));
        }
      }],
      draw: [(u) => {
        const ctx = u.ctx;
        for (const t of thresholds) {
          const y = u.valToPos(t.value, 'y', true);
          if (!Number.isFinite(y)) continue;
          ctx.save();
          ctx.strokeStyle = cssVar(t.color);
          ctx.setLineDash([6, 4]);
          ctx.beginPath(); ctx.moveTo(u.bbox.left, y); ctx.lineTo(u.bbox.left + u.bbox.width, y); ctx.stroke();
          ctx.restore();
        }
      }],
    },
  };
  const data = [xs.map((x) => x / 1000), ...series.map((s) => s.values)];
  const u = new uPlot(opts, data, container);
  charts.push({ u, container });
  return u;
}

addEventListener('resize', () => {
  for (const { u, container } of charts) {
    if (container.isConnected) u.setSize({ width: Math.max(container.clientWidth, 280), height: 240 });
  }
});

// ---- theme ---------------------------------------------------------------------------------
function applyTheme() {
  const t = localStorage.getItem('pulseline-theme');
  if (t) document.documentElement.dataset.theme = t;
  else delete document.documentElement.dataset.theme;
  $('#theme').textContent = t === 'dark' ? '☾' : t === 'light' ? '☀' : '◐';
  $('#theme').title = `Theme: ${t || 'system'} (click to change)`;
}
$('#theme').addEventListener('click', () => {
  const order = [null, 'light', 'dark'];
  const cur = localStorage.getItem('pulseline-theme');
  const next = order[(order.indexOf(cur) + 1) % order.length];
  if (next) localStorage.setItem('pulseline-theme', next); else localStorage.removeItem('pulseline-theme');
  applyTheme();
  route();
});
applyTheme();

// ---- session and shell ---------------------------------------------------------------------
async function loadSession() {
  try { session = await api('/api/dash/session'); } catch { session = null; }
  setCsrf(session?.csrf_token);
  return session;
}

// `next` is the page asked for: the hash when the form is shown (a deep link opened logged
// out, or the page whose session ended), so logging in lands there.
function loginPage(message, next = location.hash) {
  routeSeq++;
  $('#top').hidden = true;
  $('#banner').hidden = true;
  main.hidden = true;
  login.hidden = false;
  const err = h('p', { class: 'error', role: 'alert' }, message || '');
  const form = h('form', {
    onsubmit: async (e) => {
      e.preventDefault();
      try {
        session = await api('/api/dash/session', { method: 'POST',
          body: { email: form.email.value, password: form.password.value } });
        setCsrf(session.csrf_token);
        projects = await api('/api/dash/projects');
      } catch (x) { err.textContent = x.message; return; }
      // Route once: a changed hash routes through `hashchange`, an unchanged one here.
      if (location.hash === next) route(); else location.hash = next;
    },
  },
  h('label', {}, 'E-mail', h('input', { name: 'email', type: 'email', autocomplete: 'username', required: true })),
  h('label', {}, 'Password', h('input', { name: 'password', type: 'password', autocomplete: 'current-password', required: true })),
  h('button', { type: 'submit' }, 'Log in'), err);
  login.replaceChildren(h('div', { class: 'card login' }, h('h1', {}, 'Pulseline'), form,
    h('p', { class: 'muted' }, 'The first admin’s password was printed when the collector first started. More users: ',
      h('code', {}, 'pulseline-collector user create'))));
}

$('#logout').addEventListener('click', async () => {
  await api('/api/dash/session', { method: 'DELETE' }).catch(() => {});
  session = null;
  setCsrf(null);
  alerting.stopBell();
  // Whoever logs in next starts from their own first project, not this user's page.
  loginPage('Logged out.', '#/');
});

$('#new-project').addEventListener('click', async () => {
  const name = prompt('Name of the new project');
  if (!name) return;
  try {
    const p = await api('/api/dash/projects', { method: 'POST', body: { name } });
    sessionStorage.setItem(`new-keys-${p.id}`, JSON.stringify(p));
    projects = await api('/api/dash/projects');
    location.hash = `#/p/${p.id}/keys`;
  } catch (e) { alert(e.message); }
});

$('#project').addEventListener('change', (e) => {
  const page = location.hash.split('/')[3] || 'overview';
  location.hash = `#/p/${e.target.value}/${page}`;
});

const PAGES = [['overview', 'Overview'], ['web', 'Web'], ['explore', 'Explore'], ['vitals', 'Web Vitals'],
  ['product', 'Funnels & retention'], ['alerts', 'Alerts'], ['inbound', 'Inbound'], ['keys', 'Keys'], ['members', 'Members'], ['persons', 'Persons'], ['audit', 'Audit log'],
  ['report', 'Report'], ['digest', 'Digest'], ['share', 'Share'], ['settings', 'Settings']];

function shell(project, page) {
  $('#top').hidden = false;
  $('#who').textContent = session.email;
  const sel = $('#project');
  sel.replaceChildren(...projects.map((p) => h('option', { value: p.id, selected: p.id === project.id }, p.name)));
  $('#nav').replaceChildren(...PAGES.map(([id, label]) =>
    h('a', { href: `#/p/${project.id}/${id}`,
      class: id === page || (id === 'alerts' && page in alerting.pages) ? 'active' : '' }, label)));
  alerting.startBell(project, session);
}

async function usageBanner(project, seq) {
  const b = $('#banner');
  try {
    const u = await api(`/api/dash/projects/${project.id}/usage`);
    if (seq !== routeSeq) return u;
    if (u.over_quota) {
      b.replaceChildren(`This project is over its monthly quota: ${fmt(u.events_this_month)} of ${fmt(u.quota)} events on plan “${u.plan}”. New events are refused (429) until ${iso(Date.parse(u.resets_at))} UTC or a plan change.`);
      b.hidden = false;
    } else b.hidden = true;
    return u;
  } catch { b.hidden = true; return null; }
}

async function start() {
  if (!(await loadSession())) return loginPage();
  projects = await api('/api/dash/projects');
  route();
}

// A shared page (/s/{token}) routes itself (share.js).
addEventListener('hashchange', () => { if (!sharing.isSharedPage()) route(); });

async function route() {
  if (tail) { tail.close(); tail = null; }
  charts.length = 0;
  if (!session) return loginPage();
  const seq = ++routeSeq;
  login.hidden = true;
  main.hidden = false;
  const m = location.hash.match(/^#\/p\/(\d+)\/(\w+)/);
  if (!m) {
    if (!projects.length) {
      $('#top').hidden = false;
      $('#nav').replaceChildren();
      alerting.stopBell();
      main.replaceChildren(card('No projects yet', h('p', {}, 'Create one with “New project”, or accept an invitation.')));
      const inv = await invitationsCard();
      if (inv && seq === routeSeq) main.prepend(inv);
      return;
    }
    location.hash = `#/p/${projects[0].id}/overview`;
    return;
  }
  const project = projects.find((p) => p.id === Number(m[1]));
  if (!project) { main.replaceChildren(card('Not found', h('p', {}, 'No such project among yours.'))); return; }
  const page = m[2];
  shell(project, page);
  main.replaceChildren(h('p', { class: 'muted' }, 'Loading…'));
  const usage = await usageBanner(project, seq);
  if (seq !== routeSeq) return;
  const view = { overview, web, explore, vitals, product, inbound, keys, members, persons, audit, report, digest, share: sharing.sharesPage, settings: settingsPage, ...alerting.pages }[page] || overview;
  try {
    // A page that is one heavy query (Web Vitals, Web) waits out a busy server like a card.
    await loadInto(main, () => view(project, usage), { wanted: () => seq === routeSeq });
    if (seq !== routeSeq) return;
    const inv = await invitationsCard();
    if (inv && seq === routeSeq) main.prepend(inv);
  } catch (e) {
    if (seq !== routeSeq) return;
    if (e.status === 401) return loginPage('Your session ended: log in again.');
    main.replaceChildren(errorBox(e));
  }
}

// Invitations addressed to the logged-in user, shown above every page until answered.
async function invitationsCard() {
  const list = await api('/api/dash/invitations').catch(() => []);
  if (!list.length) return null;
  const answer = (i, verb) => async () => {
    try {
      const joined = await api(`/api/dash/invitations/${i.id}/${verb}`, { method: 'POST', body: {} });
      projects = await api('/api/dash/projects');
      const next = verb === 'accept' ? `#/p/${joined.id}/overview` : location.hash;
      if (location.hash === next) route(); else location.hash = next;
    } catch (e) { alert(e.message); }
  };
  return card('Invitations', h('ul', { id: 'my-invitations' }, list.map((i) => h('li', {},
    `${i.invited_by || 'A member'} invites you to “${i.project_name}” as ${i.role}. `,
    h('button', { type: 'button', onclick: answer(i, 'accept') }, 'Accept'), ' ',
    h('button', { type: 'button', class: 'ghost', onclick: answer(i, 'decline') }, 'Decline')))));
}

// ---- overview ------------------------------------------------------------------------------
function stat(label, value, id) {
  return h('div', { class: 'card stat' }, h('div', { class: 'value', id }, fmt(value)), h('div', { class: 'label' }, label));
}

// Where a page's data comes from: the project's API, or a shared link's (share.js).
const apiBase = (project) => project.api || `/api/dash/projects/${project.id}`;

async function overview(project, usage) {
  const bots = wantBots(project);
  const o = await api(`${apiBase(project)}/overview${bots ? '?include_bots=true' : ''}`);
  const botsNote = botNote(project, bots, o.bot_events, 'in the last 30 days');
  const volume = h('div', { class: 'chart', id: 'volume-chart' });
  const dauChart = h('div', { class: 'chart' });
  const max = Math.max(1, ...o.top_events.map((e) => e[1]));
  const tailBox = h('div', { class: 'tail', id: 'live-tail' }, h('div', { class: 'muted' }, 'Waiting for events…'));
  main.replaceChildren(
    h('h1', {}, project.name),
    h('p', { class: 'muted', id: 'overview-zone' }, `Days in ${o.timezone}, the project's time zone.`),
    botsNote,
    h('div', { class: 'grid' },
      stat('Events today', o.events_today, 'events-today'), stat('DAU', o.dau), stat('WAU', o.wau), stat('MAU', o.mau),
      usage ? stat(usage.quota ? `This month of ${fmt(usage.quota)}` : 'Events this month', usage.events_this_month) : ''),
    card('Events per hour, last 24 hours', volume),
    project.shared ? '' : card('Live tail', tailBox),
    card('Top events, last 30 days', h('div', { class: 'bars' }, o.top_events.length ? o.top_events.map(([name, n]) =>
      h('div', { class: 'bar' }, project.shared ? h('span', {}, name) : h('a', { href: `#/p/${project.id}/explore?event=${encodeURIComponent(name)}` }, name),
        h('span', {}, h('span', { class: 'fill', style: `width:${(100 * n / max).toFixed(1)}%` })), h('span', {}, fmt(n))))
      : h('p', { class: 'muted' }, 'No events yet.'))),
    card('Daily active users, last 30 days', dauChart));
  const timeZone = o.timezone;
  chart(volume, o.hourly.map((r) => r[0]), [{ name: 'events', values: o.hourly.map((r) => r[1]) }], { timeZone });
  chart(dauChart, o.daily_active.map((r) => r[0]), [{ name: 'active users', values: o.daily_active.map((r) => r[1]) }], { timeZone });
  if (!project.shared) startTail(project, tailBox);
}

function startTail(project, box) {
  tail = new EventSource(`/api/dash/projects/${project.id}/tail`);
  let first = true;
  tail.addEventListener('events', (e) => {
    const events = parseExact(e.data);
    if (!events.length) return;
    if (first) { box.textContent = ''; first = false; }
    for (const ev of events) {
      const name = ev.event || ev.name || `$${ev.type}`;
      const who = plain(ev.userId || ev.anonymousId || '');
      const props = ev.properties ? JSON.stringify(ev.properties) : '';
      box.prepend(h('div', { title: props }, `${iso(Date.parse(ev.receivedAt || ev.timestamp))}  ${name}  ${who}  ${props}`));
    }
    while (box.childElementCount > 200) box.lastElementChild.remove();
  });
  // Sent once the session or the membership is gone; the server then closes the stream.
  tail.addEventListener('end', (e) => {
    tail.close();
    tail = null;
    box.prepend(h('div', { class: 'error', id: 'tail-ended' }, `Live tail ended: ${e.data}.`));
  });
}

// ---- explore -------------------------------------------------------------------------------
const PRESETS = [['1h', HOUR], ['24h', DAY], ['7d', 7 * DAY], ['30d', 30 * DAY], ['90d', 90 * DAY]];

function exploreState() {
  const q = new URLSearchParams(location.hash.split('?')[1] || '');
  const now = Date.now();
  const to = Number(q.get('to')) || now;
  const from = Number(q.get('from')) || to - 7 * DAY;
  return { q, from, to };
}

function setExplore(project, params) {
  const q = new URLSearchParams(location.hash.split('?')[1] || '');
  for (const [k, v] of Object.entries(params)) { if (v === '' || v == null) q.delete(k); else q.set(k, v); }
  location.hash = `#/p/${project.id}/explore?${q}`;
}

const toLocalInput = (ms) => new Date(ms - new Date(ms).getTimezoneOffset() * 60000).toISOString().slice(0, 16);

async function explore(project) {
  const { q, from, to } = exploreState();
  const names = await api(`/api/dash/projects/${project.id}/event-names`);
  const field = (name, label, input) => h('label', {}, label, input);
  const ev = h('select', { name: 'event' }, h('option', { value: '' }, 'All events'),
    ...names.map(([n]) => h('option', { value: n, selected: n === q.get('event') }, n)));
  const agg = h('select', { name: 'agg' }, ...['count', 'unique', 'sum', 'avg', 'min', 'max', 'p50', 'p75', 'p95']
    .map((a) => h('option', { value: a, selected: a === (q.get('agg') || 'count') }, a)));
  const prop = h('input', { name: 'property', placeholder: 'e.g. amount', value: q.get('property') || '', size: 10 });
  const bucket = h('select', { name: 'bucket' }, h('option', { value: '' }, 'auto'),
    ...[['5 min', 300000], ['hour', HOUR], ['day', DAY], ['week', 7 * DAY]]
      .map(([l, v]) => h('option', { value: v, selected: String(v) === q.get('bucket') }, l)));
  const fprop = h('input', { name: 'filter_property', placeholder: 'property', value: q.get('filter_property') || '', size: 9 });
  const fval = h('input', { name: 'filter_value', placeholder: 'value', value: q.get('filter_value') || '', size: 9 });
  const group = h('input', { name: 'group_by', placeholder: 'property', value: q.get('group_by') || '', size: 9 });
  const fromIn = h('input', { type: 'datetime-local', value: toLocalInput(from) });
  const toIn = h('input', { type: 'datetime-local', value: toLocalInput(to) });
  const apply = () => setExplore(project, {
    event: ev.value, agg: agg.value, property: prop.value, bucket: bucket.value, filter_property: fprop.value,
    filter_value: fval.value, group_by: group.value, from: new Date(fromIn.value).getTime(), to: new Date(toIn.value).getTime(),
  });
  const params = new URLSearchParams({ from, to });
  for (const k of ['event', 'agg', 'property', 'bucket', 'filter_property', 'filter_value', 'group_by']) {
    if (q.get(k)) params.set(k, q.get(k));
  }
  const bots = wantBots(project);
  if (bots) params.set('include_bots', 'true');
  const botBox = h('div', {});
  const base = `/api/dash/projects/${project.id}`;
  const chartBox = h('div', { class: 'chart', id: 'explore-chart' });
  const table = h('div', { class: 'scroll' });
  main.replaceChildren(
    h('h1', {}, 'Explore'),
    botBox,
    h('div', { class: 'row' },
      ...PRESETS.map(([l, span]) => h('button', { class: 'ghost', type: 'button',
        onclick: () => setExplore(project, { from: Date.now() - span, to: Date.now(), bucket: '' }) }, l)),
      field('from', 'From', fromIn), field('to', 'To', toIn)),
    h('div', { class: 'row' }, field('event', 'Event', ev), field('agg', 'Aggregate', agg), field('property', 'Of property', prop),
      field('bucket', 'Bucket', bucket), field('filter', 'Where', fprop), field('fv', '=', fval), field('group', 'Group by (top 5)', group),
      h('button', { type: 'button', onclick: apply, id: 'apply' }, 'Apply')),
    card(null, chartBox, h('p', { class: 'muted no-print' }, 'Hover to read values; drag across the chart to zoom in.'),
      h('div', { class: 'row' },
        h('a', { href: `${base}/series?${params}&format=csv`, download: 'series.csv', id: 'series-csv' }, 'Download series (CSV)'),
        h('a', { href: `${base}/events?${params}&format=csv`, download: 'events.csv', id: 'events-csv' }, 'Download events (CSV)'))),
    card('Events', table));
  await loadInto(chartBox, async () => {
    const s = await api(`${base}/series?${params}`);
    botBox.replaceChildren(botNote(project, bots, s.bot_events, 'in this range'));
    chart(chartBox, s.buckets, s.series, { onZoom: (a, b) => setExplore(project, { from: a, to: b, bucket: '' }) });
    // A raw-event answer reads a bounded number of events, newest first: say what it covered.
    if (s.coverage) chartBox.after(h('p', { class: 'error', id: 'explore-coverage' },
      `Covers ${iso(s.coverage.from)} – ${iso(s.coverage.to)} only: a filter, group-by, unique count or sub-hour bucket reads at most ${fmt(s.coverage.scan_rows)} events, newest first. Narrow the range or pick an event to see all of it.`));
    // A filter or group-by on tracked properties answers from their rollup, the whole range.
    if (s.source === 'rollups' && (q.get('filter_property') || q.get('group_by'))) chartBox.after(h('p', { class: 'muted', id: 'explore-source' },
      'From the tracked-property rollup: the whole range (Settings → Tracked properties).'));
    if (s.groups_capped) chartBox.after(h('p', { class: 'muted', id: 'explore-groups-capped' },
      'More than 1,000 distinct values: values met after the first 1,000 count under “(other)”.'));
  });
  await loadInto(table, async () => {
    const rows = await api(`${base}/events?${params}`, { exact: true });
    table.replaceChildren(h('table', { id: 'events-table' },
      h('thead', {}, h('tr', {}, h('th', {}, 'Time (UTC)'), h('th', {}, 'Event'), h('th', {}, 'User'), h('th', {}, 'Properties'))),
      h('tbody', {}, rows.map((r) => h('tr', {}, h('td', {}, iso(r.timestamp)), h('td', {}, r.event), h('td', {}, r.user || ''),
        h('td', {}, h('code', {}, JSON.stringify(r.properties))))))),
    rows.length ? '' : h('p', { class: 'muted' }, 'No events in this range.'));
  });
}

// ---- project settings ----------------------------------------------------------------------
// The time zone (also on the Web page) and the tracked properties: the keys Explore filters and
// groups by from rollups (docs/dashboard.md#tracked-properties).
const MAX_TRACKED_PROPERTIES = 8;

async function settingsPage(project) {
  const base = `/api/dash/projects/${project.id}/settings`;
  const s = await api(base);
  const canAdmin = ['owner', 'admin'].includes(project.role);
  const err = h('p', { class: 'error', role: 'alert', id: 'settings-error' });
  const zone = h('input', { name: 'timezone', value: s.timezone, size: 24, disabled: !canAdmin });
  const tracked = h('input', { name: 'tracked_properties', value: s.tracked_properties.join(', '), size: 60,
    placeholder: 'e.g. plan, country, context.os', disabled: !canAdmin });
  const pendingText = (keys) => `Being filled from the stored events: ${keys.join(', ')}. Until then Explore reads raw events for them.`;
  const pending = s.tracked_properties_pending.length
    ? h('p', { class: 'muted', id: 'tracked-pending' }, pendingText(s.tracked_properties_pending))
    : '';
  const save = h('button', { type: 'button', id: 'settings-save', hidden: !canAdmin, onclick: async () => {
    err.textContent = '';
    const keys = tracked.value.split(',').map((k) => k.trim()).filter(Boolean);
    try {
      await api(base, { method: 'POST', body: { timezone: zone.value.trim(), tracked_properties: keys } });
      await settingsPage(project);
    } catch (e) { err.textContent = e.message; }
  } }, 'Save');
  main.replaceChildren(h('h1', {}, 'Settings'),
    card('Time zone', h('p', {}, h('label', {}, 'IANA name (e.g. Europe/Berlin) ', zone)),
      h('p', { class: 'muted' }, 'Decides what “today” and each day are on the Overview and Web pages.')),
    card('Tracked properties', h('p', {}, h('label', {}, `Property keys, comma-separated (at most ${MAX_TRACKED_PROPERTIES}) `, tracked)),
      pending,
      h('p', { class: 'muted' }, 'Explore counts filtered by one of these and/or grouped by one of them come from rollups, whole, over any range. Other filters and group-bys read a bounded number of raw events.')),
    h('div', { class: 'row' }, save), err);
  if (pending) followFill(base, pending, pendingText);
}

// New tracked keys are filled in the background: the note follows the fill (every 2 s) while
// the page shows it, and goes once every key is filled.
async function followFill(base, note, text) {
  while (note.isConnected) {
    await new Promise((ok) => setTimeout(ok, 2000));
    if (!note.isConnected) return;
    let keys;
    try { keys = (await api(base)).tracked_properties_pending; } catch { return; }
    if (!keys.length) { note.remove(); return; }
    note.textContent = text(keys);
  }
}

// ---- web vitals ----------------------------------------------------------------------------
async function vitals(project) {
  const to = Date.now(), from = to - 28 * DAY;
  const bots = wantBots(project);
  const v = await api(`${apiBase(project)}/vitals?from=${from}&to=${to}&bucket=${DAY}${bots ? '&include_bots=true' : ''}`);
  const unit = (m, x) => x == null ? '–' : m.unit === 'ms' ? `${fmt(Math.round(x))} ms` : fmt(x);
  const rating = (m, x) => x == null ? '' : x <= m.good ? 'good' : x > m.poor ? 'poor' : 'ni';
  const shares = (s) => h('div', { class: 'share', title: `good ${pct(s.good)}, needs improvement ${pct(s.needs_improvement)}, poor ${pct(s.poor)}` },
    h('span', { class: 'g', style: `width:${s.good * 100}%` }), h('span', { class: 'n', style: `width:${s.needs_improvement * 100}%` }),
    h('span', { class: 'p', style: `width:${s.poor * 100}%` }));
  main.replaceChildren(h('h1', {}, 'Web Vitals'), h('p', { class: 'muted' }, 'p75 of the last 28 days (the CrUX convention), from the browser SDK’s “Web Vital” events.'),
    botNote(project, bots, v.bot_events, 'in the last 28 days'));
  for (const m of v.metrics) {
    const c = h('div', { class: 'chart' });
    main.append(card(`${m.vital.metric}: ${unit(m.vital, m.overall.p75)}`,
      h('p', {}, h('span', { class: rating(m.vital, m.overall.p75) }, rating(m.vital, m.overall.p75) === 'ni' ? 'needs improvement' : rating(m.vital, m.overall.p75)),
        ` · ${fmt(m.overall.samples)} samples · good ≤ ${unit(m.vital, m.vital.good)}, poor > ${unit(m.vital, m.vital.poor)}`),
      shares(m.overall), c,
      m.pages.length ? h('div', { class: 'scroll' }, h('table', {},
        h('thead', {}, h('tr', {}, h('th', {}, 'Page'), h('th', { class: 'num' }, 'p75'), h('th', { class: 'num' }, 'Samples'), h('th', {}, 'good / NI / poor'))),
        h('tbody', {}, m.pages.slice(0, 20).map(([path, s]) => h('tr', {}, h('td', {}, path),
          h('td', { class: `num ${rating(m.vital, s.p75)}` }, unit(m.vital, s.p75)), h('td', { class: 'num' }, fmt(s.samples)), h('td', {}, shares(s))))))) : ''));
    if (m.overall.samples) {
      chart(c, v.buckets, [{ name: `${m.vital.metric} p75`, values: m.trend }],
        { thresholds: [{ value: m.vital.good, color: '--good' }, { value: m.vital.poor, color: '--bad' }] });
    } else c.replaceChildren(h('p', { class: 'muted' }, 'No samples yet.'));
  }
}

// ---- funnels, retention, sessions ----------------------------------------------------------
async function product(project) {
  const names = (await api(`/api/dash/projects/${project.id}/event-names`)).map((n) => n[0]);
  const steps = h('input', { size: 40, value: localStorage.getItem(`funnel-${project.id}`) || names.slice(0, 3).join(', ') });
  const days = h('select', {}, ...[7, 14, 30, 90].map((d) => h('option', { value: d, selected: d === 30 }, `${d} days`)));
  const period = h('select', {}, h('option', { value: 'day' }, 'by day'), h('option', { value: 'week' }, 'by week (from Monday)'));
  const funnelBox = h('div', {}), retBox = h('div', { class: 'scroll' }), sessBox = h('div', { class: 'grid' });
  const base = `/api/dash/projects/${project.id}`;
  const churn = churnCard(project);
  const bots = wantBots(project);
  const withBots = bots ? '&include_bots=true' : '';
  const botBox = h('div', {});
  // Cohorts start at local midnight: name their day in the project's time zone.
  const { timezone } = await api(`${base}/settings`);
  const localDay = new Intl.DateTimeFormat('en-CA', { timeZone: timezone });
  const load = async () => {
    const to = Date.now(), from = to - Number(days.value) * DAY;
    localStorage.setItem(`funnel-${project.id}`, steps.value);
    await loadInto(funnelBox, async () => {
      const f = await api(`${base}/funnel?steps=${encodeURIComponent(steps.value)}&from=${from}&to=${to}${withBots}`);
      const max = Math.max(1, f[0]?.users || 0);
      funnelBox.replaceChildren(h('div', { class: 'bars' }, f.map((s, i) => h('div', { class: 'bar' }, `${i + 1}. ${s.event}`,
        h('span', {}, h('span', { class: 'fill', style: `width:${100 * s.users / max}%` })),
        h('span', {}, `${fmt(s.users)} · ${pct(s.conversion)}${i ? ` · −${fmt(s.drop_off)}` : ''}`)))));
    });
    await loadInto(retBox, async () => {
      const r = await api(`${base}/retention?from=${from}&to=${to}&period=${period.value}${withBots}`);
      const width = Math.max(0, ...r.map((c) => c.share.length));
      retBox.replaceChildren(h('table', {}, h('thead', {}, h('tr', {}, h('th', {}, 'Cohort'), h('th', { class: 'num' }, 'Users'),
        ...Array.from({ length: Math.min(width, 14) }, (_, i) => h('th', { class: 'num' }, `+${i}`)))),
        h('tbody', {}, r.map((c) => h('tr', {}, h('td', {}, localDay.format(new Date(c.start))), h('td', { class: 'num' }, fmt(c.users)),
          ...c.share.slice(0, 14).map((s) => h('td', { class: 'num' }, pct(s))))))));
    });
    await loadInto(sessBox, async () => {
      const s = await api(`${base}/sessions?from=${from}&to=${to}${withBots}`);
      botBox.replaceChildren(botNote(project, bots, s.bot_events, 'in this range'));
      sessBox.replaceChildren(stat('Sessions', s.sessions), stat('Average length (s)', s.avg_length_secs), h('div', { class: 'card stat' },
        h('div', { class: 'value' }, pct(s.bounce_rate)), h('div', { class: 'label' }, 'Bounce rate')));
    });
  };
  main.replaceChildren(h('h1', {}, 'Funnels, retention and sessions'), botBox,
    h('div', { class: 'row' }, h('label', {}, 'Funnel steps (comma-separated, in order)', steps), h('label', {}, 'Range', days),
      h('label', {}, 'Retention', period), h('button', { type: 'button', onclick: load }, 'Apply')),
    card('Funnel (steps within a day of the first)', funnelBox), card('Retention: share of each cohort back in later periods', retBox),
    churn.el, card('Sessions (30 minutes of inactivity end one)', sessBox));
  await Promise.all([load(), churn.load()]);
}

// ---- keys ----------------------------------------------------------------------------------
function snippets(key, host) {
  return [
    ['Python', `pip install pulseline\n\nimport pulseline\nclient = pulseline.Client("${key}", host="${host}")\nclient.track("user-42", "Signed Up", {"plan": "pro"})`],
    ['Node', `npm install pulseline\n\nconst { Client } = require('pulseline')\nconst client = new Client({ writeKey: '${key}', host: '${host}' })\nclient.track({ userId: 'user-42', event: 'Signed Up', properties: { plan: 'pro' } })`],
    ['Rust', `cargo add pulseline\n\nlet client = pulseline::Client::builder("${key}").host("${host}").build()?;\nclient.track(pulseline::Track::new("user-42", "Signed Up").properties(serde_json::json!({"plan": "pro"})))?;`],
    ['Browser', `<!-- in <head>: loads the SDK after the page, queues calls until then; Web Vitals on -->\n<script src="${host}/sdk/v1/loader.js" data-write-key="${key}"></script>\n<script>\n  pulseline.track("Signed Up", { plan: "pro" });\n</script>`],
    ['curl', `curl -u ${key}: -H 'Content-Type: application/json' \\\n  -d '{"type":"track","userId":"user-42","event":"Signed Up"}' ${host}/v1/track`],
  ];
}

function copyButton(text, label = 'Copy') {
  const b = h('button', { type: 'button', class: 'ghost copy', onclick: async () => {
    try { await navigator.clipboard.writeText(text); b.textContent = 'Copied'; } catch { b.textContent = 'Select and copy'; }
  } }, label);
  return b;
}

function snippetList(key) {
  return snippets(key, location.origin).map(([lang, code]) => h('div', {}, h('strong', {}, lang), ' ', copyButton(code), h('pre', {}, code)));
}

function shownOnce(kind, key) {
  return h('div', { class: 'secret', id: 'new-key' },
    kind === 'write' ? h('p', {}, h('strong', {}, 'Your new write key.'), ' Write keys are public (every page that sends events carries one): this page shows it at any time.')
      : h('p', {}, h('strong', {}, 'Your new secret key — shown once. Copy it now.')),
    h('p', {}, h('code', { class: 'key', 'data-kind': kind }, key), ' ', copyButton(key, 'Copy key')),
    kind === 'write' ? snippetList(key)
      : h('p', { class: 'muted' }, 'Secret keys read data server-side (Authorization: Bearer). Never ship them to browsers or apps.'));
}

// How long a rotated key keeps working beside its replacement (hours; the API allows up to 720).
const GRACE_CHOICES = [[0, 'stops at once'], [1, 'works 1 more hour'], [24, 'works 24 more hours'], [168, 'works 7 more days'], [720, 'works 30 more days']];

function keyStatus(k) {
  if (!k.revoked_at) return 'active';
  return k.active ? `active until ${iso(Date.parse(k.revoked_at))}` : `revoked ${iso(Date.parse(k.revoked_at))}`;
}

async function keys(project) {
  const base = `/api/dash/projects/${project.id}/keys`;
  const list = await api(base);
  const canManage = ['owner', 'admin', 'developer'].includes(project.role);
  const fresh = h('div', {});
  const created = sessionStorage.getItem(`new-keys-${project.id}`);
  if (created) {
    sessionStorage.removeItem(`new-keys-${project.id}`);
    const p = JSON.parse(created);
    fresh.append(shownOnce('write', p.write_key), shownOnce('secret', p.secret_key));
  }
  const show = (k) => { if (k.key) $('#fresh-keys').replaceChildren(shownOnce(k.kind, k.key)); };
  const rotate = (k) => {
    // Write keys sit in customers' pages: a day's grace by default, so none breaks meanwhile.
    const grace = h('select', { 'aria-label': `When the old key ${k.prefix}… stops` },
      ...GRACE_CHOICES.map(([hours, label]) => h('option', { value: hours, selected: hours === (k.kind === 'write' ? 24 : 0) }, `old key ${label}`)));
    return [grace, ' ', h('button', { type: 'button', class: 'ghost', onclick: async () => {
      const hours = Number(grace.value);
      if (!confirm(`Rotate ${k.kind} key ${k.prefix}…? The old key ${GRACE_CHOICES.find(([x]) => x === hours)[1]}.`)) return;
      try {
        const fresh = await api(`${base}/${k.id}/rotate`, { method: 'POST', body: { grace_hours: hours } });
        await keys(project);
        show(fresh);
      } catch (e) { alert(e.message); }
    } }, 'Rotate')];
  };
  const revoke = (k) => h('button', { type: 'button', class: 'danger', onclick: async () => {
    if (!confirm(`Revoke ${k.kind} key ${k.prefix}…? It stops working at once.`)) return;
    try { await api(`${base}/${k.id}/revoke`, { method: 'POST', body: {} }); await keys(project); } catch (e) { alert(e.message); }
  } }, 'Revoke');
  const writeKeys = list.filter((k) => k.kind === 'write' && k.active);
  const snippetCards = writeKeys.map((k) => (k.key
    ? card(`Install snippets — write key ${k.prefix}…`, h('p', {}, h('code', { class: 'key', 'data-kind': 'write', 'data-key-id': k.id }, k.key), ' ', copyButton(k.key, 'Copy key')),
      h('div', { class: 'snippets' }, snippetList(k.key)))
    : card(`Write key ${k.prefix}…`, h('p', { class: 'muted legacy-key' }, 'This write key was issued before Pulseline kept write keys, so it cannot be shown. ',
      'Rotate it with a grace period: the new key is shown here at any time, and pages that carry the old one keep working until the grace period ends.'))));
  main.replaceChildren(h('h1', {}, 'Keys'), h('div', { id: 'fresh-keys' }, fresh),
    canManage ? h('div', { class: 'row' }, ...['write', 'secret'].map((kind) => h('button', { type: 'button', id: `create-${kind}`, onclick: async () => {
      try {
        const k = await api(base, { method: 'POST', body: { kind } });
        await keys(project);
        show(k);
      } catch (e) { alert(e.message); }
    } }, `New ${kind} key`))) : h('p', { class: 'muted' }, 'Viewers can see keys and snippets; developers and up manage them.'),
    card(null, h('div', { class: 'scroll' }, h('table', { id: 'keys-table' }, h('thead', {}, h('tr', {}, h('th', {}, 'Kind'), h('th', {}, 'Prefix'), h('th', {}, 'Created'), h('th', {}, 'Created by'), h('th', {}, 'Status'), h('th', {}, ''))),
      h('tbody', {}, list.map((k) => h('tr', { 'data-key-id': k.id }, h('td', {}, k.kind), h('td', {}, h('code', {}, `${k.prefix}…`)), h('td', {}, iso(Date.parse(k.created_at))),
        h('td', { title: k.created_by ? '' : 'the CLI or the first start' }, k.created_by || '–'),
        h('td', {}, keyStatus(k)),
        h('td', {}, canManage && k.active ? [...(k.revoked_at ? [] : rotate(k)), ' ', revoke(k)] : ''))))))),
    ...(snippetCards.length ? snippetCards : [card('Install snippets', h('p', { class: 'muted' }, 'No active write key: create one to get snippets carrying it.'))]),
    card(null, h('p', { class: 'muted' }, 'Each snippet points at this collector (', location.origin, '). Secret keys are stored as hashes and shown only when created.')));
}

// ---- members and audit ---------------------------------------------------------------------
const ROLES = ['viewer', 'developer', 'admin', 'owner'];

async function members(project) {
  const base = `/api/dash/projects/${project.id}/members`;
  const invitations = `/api/dash/projects/${project.id}/invitations`;
  const list = await api(base);
  const canManage = ['owner', 'admin'].includes(project.role);
  const pending = canManage ? await api(invitations) : [];
  const err = h('p', { class: 'error' });
  const email = h('input', { type: 'email', name: 'email', placeholder: 'name@example.com', required: true });
  const role = h('select', { name: 'role' }, ...ROLES.map((r) => h('option', { value: r }, r)));
  const invite = async () => {
    try {
      const i = await api(invitations, { method: 'POST', body: { email: email.value, role: role.value } });
      await members(project);
      $('#member-note').replaceChildren(h('p', {}, `Invited ${i.email} as ${i.role}. Whoever logs in with that address can accept until ${iso(Date.parse(i.expires_at))} UTC.`));
    } catch (e) { err.textContent = e.message; }
  };
  const roleOf = (m) => (canManage && m.user_id !== session.user_id ? h('select', { 'aria-label': `Role of ${m.email}`, onchange: async (e) => {
    try { await api(base, { method: 'POST', body: { email: m.email, role: e.target.value } }); await members(project); } catch (x) { err.textContent = x.message; e.target.value = m.role; }
  } }, ...ROLES.map((r) => h('option', { value: r, selected: r === m.role }, r))) : m.role);
  const remove = (m) => async () => {
    if (!confirm(`Remove ${m.email} from ${project.name}?`)) return;
    try {
      const r = await api(`${base}/${m.user_id}`, { method: 'DELETE' });
      await members(project);
      if (r.keys_to_rotate.length) $('#member-note').replaceChildren(rotateSuggestion(project, m.email, r.keys_to_rotate));
    } catch (e) { err.textContent = e.message; }
  };
  const cancel = (i) => async () => {
    try { await api(`${invitations}/${i.id}`, { method: 'DELETE' }); await members(project); } catch (e) { err.textContent = e.message; }
  };
  main.replaceChildren(h('h1', {}, 'Members'),
    canManage ? h('form', { class: 'row', id: 'invite-form', onsubmit: (e) => { e.preventDefault(); invite(); } },
      h('label', {}, 'Invite by e-mail', email), h('label', {}, 'Role', role), h('button', { type: 'submit' }, 'Invite')) : '',
    err, h('div', { id: 'member-note' }),
    card(null, h('div', { class: 'scroll' }, h('table', { id: 'members-table' }, h('thead', {}, h('tr', {}, h('th', {}, 'User'), h('th', {}, 'Role'), h('th', {}, 'Since'), h('th', {}, ''))),
      h('tbody', {}, list.map((m) => h('tr', {}, h('td', {}, m.email), h('td', {}, roleOf(m)), h('td', {}, iso(Date.parse(m.since))),
        h('td', {}, canManage && m.user_id !== session.user_id ? h('button', { type: 'button', class: 'ghost', onclick: remove(m) }, 'Remove') : ''))))))),
    canManage ? card('Pending invitations', pending.length ? h('div', { class: 'scroll' }, h('table', { id: 'invitations-table' },
      h('thead', {}, h('tr', {}, h('th', {}, 'E-mail'), h('th', {}, 'Role'), h('th', {}, 'Invited by'), h('th', {}, 'Expires (UTC)'), h('th', {}, ''))),
      h('tbody', {}, pending.map((i) => h('tr', {}, h('td', {}, i.email), h('td', {}, i.role), h('td', {}, i.invited_by || '–'),
        h('td', {}, iso(Date.parse(i.expires_at))), h('td', {}, h('button', { type: 'button', class: 'ghost', onclick: cancel(i) }, 'Cancel')))))))
      : h('p', { class: 'muted' }, 'None.')) : '',
    card('Roles', h('p', {}, 'Viewers read. Developers also manage keys and alerting (rules, channels, categories, test notifications). Admins also invite and manage members. Owners also make owners. New members join by accepting an invitation.')),
    card('Your password', passwordForm()));
}

// After a removal: the secret keys the removed member issued still work (they may have kept a
// copy), each with a one-click rotation.
function rotateSuggestion(project, email, keysLeft) {
  const rows = keysLeft.map((k) => {
    const cell = h('td', {});
    cell.append(h('button', { type: 'button', onclick: async () => {
      try {
        const fresh = await api(`/api/dash/projects/${project.id}/keys/${k.id}/rotate`, { method: 'POST', body: {} });
        cell.replaceChildren(shownOnce(fresh.kind, fresh.key));
      } catch (e) { alert(e.message); }
    } }, 'Rotate'));
    return h('tr', {}, h('td', {}, k.kind), h('td', {}, h('code', {}, `${k.prefix}…`)), h('td', {}, iso(Date.parse(k.created_at))), cell);
  });
  return card(`Keys ${email} issued`, h('p', {}, `${email} issued these secret keys, which still work. Rotate them so that a copy they kept stops working.`),
    h('div', { class: 'scroll' }, h('table', { id: 'rotate-table' }, h('tbody', {}, rows))));
}

function auditTable(id, list) {
  return h('div', { class: 'scroll' }, h('table', { id }, h('thead', {}, h('tr', {}, h('th', {}, 'When (UTC)'), h('th', {}, 'Who'), h('th', {}, 'Action'), h('th', {}, 'What'), h('th', {}, 'From'))),
    h('tbody', {}, list.map((a) => h('tr', {}, h('td', {}, iso(Date.parse(a.at))), h('td', {}, a.actor), h('td', {}, a.action), h('td', {}, a.target), h('td', {}, a.ip || ''))))));
}

function passwordForm() {
  const cur = h('input', { type: 'password', autocomplete: 'current-password' });
  const next = h('input', { type: 'password', autocomplete: 'new-password', minlength: 10 });
  const msg = h('p', {});
  return h('form', { class: 'row', onsubmit: async (e) => {
    e.preventDefault();
    try {
      await api('/api/dash/password', { method: 'POST', body: { current_password: cur.value, new_password: next.value } });
      msg.textContent = 'Changed. Your other sessions were logged out.';
      msg.className = '';
    } catch (x) { msg.textContent = x.message; msg.className = 'error'; }
  } }, h('label', {}, 'Current', cur), h('label', {}, 'New (10+ characters)', next), h('button', { type: 'submit' }, 'Change password'), msg);
}

// ---- one person's data: export, delete (with a confirmation), suppressions ------------------
async function persons(project) {
  const base = `/api/dash/projects/${project.id}/persons`;
  if (!['owner', 'admin'].includes(project.role)) {
    main.replaceChildren(h('h1', {}, 'Persons'), card(null, h('p', {}, 'Exporting and deleting a person’s data needs the admin or owner role in this project.')));
    return;
  }
  const kind = h('select', { id: 'person-kind' }, h('option', { value: 'user_id' }, 'User id'), h('option', { value: 'anonymous_id' }, 'Anonymous id'));
  const id = h('input', { id: 'person-id', required: true, maxlength: 200, placeholder: 'user-42' });
  const suppress = h('input', { type: 'checkbox', id: 'person-suppress' });
  const msg = h('p', { id: 'person-msg', role: 'status' });
  const confirmBox = h('div', { id: 'person-confirm' });
  const query = () => `${kind.value}=${encodeURIComponent(id.value.trim())}`;
  const fail = (e) => { msg.textContent = e.message; msg.className = 'error'; };
  const say = (text) => { msg.textContent = text; msg.className = ''; };
  const exportIt = async () => {
    const who = id.value.trim();
    if (!who) return fail(new Error('Enter the person’s id first.'));
    // Fetched rather than linked, so a refusal (a busy server, a wrong id) shows its message
    // here instead of failing inside the browser's download list.
    say('Exporting…');
    let resp;
    try { resp = await fetch(`${base}/export?${query()}`, { credentials: 'same-origin' }); } catch (e) { return fail(e); }
    if (!resp.ok) {
      const data = await resp.json().catch(() => null);
      return fail(new Error(data?.message || `The export failed (HTTP ${resp.status}).`));
    }
    const parts = [];
    let bytes = 0;
    try {
      for (const reader = resp.body.getReader(); ;) {
        const { done, value } = await reader.read();
        if (done) break;
        parts.push(value);
        bytes += value.length;
        say(`Exporting… ${fmt(Math.round(bytes / 1024))} KB`);
      }
    } catch (e) { return fail(new Error(`The export stopped before its end (${e.message}); nothing was saved. Try again.`)); }
    const url = URL.createObjectURL(new Blob(parts, { type: 'application/x-ndjson' }));
    h('a', { href: url, download: `person-${who}.ndjson` }).click();
    setTimeout(() => URL.revokeObjectURL(url), 60_000);
    say(`Exported ${fmt(Math.round(bytes / 1024))} KB: one JSON event per line.`);
  };
  const deleteIt = async () => {
    confirmBox.replaceChildren();
    say('');
    if (!id.value.trim()) return fail(new Error('Enter the person’s id first.'));
    const q = query(), s = suppress.checked;
    // Names exactly what goes: every linked id and the number of events. Counting reads all of
    // the project's events under the query time budget; the deletion has none, so a count that
    // ran out of time still leaves the deletion possible, said plainly.
    let what;
    try {
      const p = await api(`${base}?${q}`);
      what = `Delete ${fmt(p.events)} events of ${p.ids.join(', ')}`;
    } catch (e) {
      if (e.code !== 'query_timeout') return fail(e);
      what = `Finding this person's events took longer than the server gives a preview, so they were not counted. Delete every event of ${id.value.trim()} and of the ids linked to it (the deletion has no time limit and may take a while)`;
    }
    confirmBox.replaceChildren(card('Confirm deletion',
      h('p', { id: 'person-confirm-text' }, `${what}, with their rollups and notifications? This cannot be undone.${s ? ' Their future events will be dropped.' : ''}`),
      h('div', { class: 'row' },
        h('button', { type: 'button', id: 'person-confirm-delete', class: 'danger', onclick: async () => {
          try {
            const r = await api(`${base}?${q}&suppress=${s}`, { method: 'DELETE' });
            confirmBox.replaceChildren();
            say(`Deleted ${fmt(r.deleted.events)} events of ${r.ids.join(', ')}${r.suppressed ? '; future events are suppressed' : ''}.`);
            await suppressions();
          } catch (e) { fail(e); }
        } }, 'Delete'),
        h('button', { type: 'button', class: 'ghost', onclick: () => confirmBox.replaceChildren() }, 'Cancel'))));
  };
  const list = h('div', { id: 'suppressions' });
  const suppressions = async () => {
    let page;
    try { page = await api(`${base}/suppressions`); } catch (e) { list.replaceChildren(errorBox(e)); return; }
    list.replaceChildren(page.suppressions.length ? h('table', {}, h('thead', {}, h('tr', {}, h('th', {}, 'Id'), h('th', {}, 'Since (UTC)'), h('th', {}, ''))),
      h('tbody', {}, page.suppressions.map((s) => h('tr', {}, h('td', {}, s.person_id), h('td', {}, iso(Date.parse(s.created_at))),
        h('td', {}, h('button', { type: 'button', class: 'ghost', onclick: async () => {
          try { await api(`${base}/suppressions?user_id=${encodeURIComponent(s.person_id)}`, { method: 'DELETE' }); await suppressions(); } catch (e) { fail(e); }
        } }, 'Lift')))))) : h('p', { class: 'muted' }, 'No suppressed ids.'));
  };
  main.replaceChildren(h('h1', {}, 'Persons'),
    h('p', { class: 'muted' }, 'Export or delete every stored event of one person. Ids linked by identify or alias are included.'),
    h('form', { class: 'row', onsubmit: (e) => { e.preventDefault(); deleteIt(); } },
      h('label', {}, 'Id', kind), h('label', {}, 'Value', id),
      h('label', {}, suppress, ' Drop their future events'),
      h('button', { type: 'button', id: 'person-export', class: 'ghost', onclick: exportIt }, 'Export'),
      h('button', { type: 'submit', id: 'person-delete' }, 'Delete…')),
    msg, confirmBox, card('Suppressed ids', list));
  await suppressions();
}

async function audit(project) {
  const account = await api('/api/dash/audit').catch(() => []);
  const accountCard = card(session.is_admin ? 'Account events of every user (instance admin)' : 'Your account events',
    h('p', { class: 'muted' }, 'Logins, logouts and password changes, with the address they came from.'),
    auditTable('account-audit-table', account));
  let list;
  try { list = await api(`/api/dash/projects/${project.id}/audit`); } catch (e) {
    main.replaceChildren(h('h1', {}, 'Audit log'), errorBox(e), accountCard);
    return;
  }
  main.replaceChildren(h('h1', {}, 'Audit log'), h('p', { class: 'muted' }, 'Append-only: what was done in this project, by whom and from where.'),
    card(null, auditTable('audit-table', list)), accountCard);
}

// ---- printable report ----------------------------------------------------------------------
async function report(project, usage) {
  await overview(project, usage);
  if (tail) { tail.close(); tail = null; }
  $('#live-tail')?.closest('.card')?.remove();
  main.prepend(h('p', { class: 'muted' }, `Report generated ${iso(Date.now())} UTC. `,
    h('button', { type: 'button', onclick: () => print() }, 'Print')));
}

if (sharing.isSharedPage()) sharing.startShare({ overview, vitals, web }); else start();
