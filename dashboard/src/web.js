// The Web page (docs/dashboard-web.md): visitors, visits, page views, bounce rate and visit
// duration against the previous period, the visitors chart, breakdowns that filter the page
// when clicked, and realtime. The whole view lives in the URL's hash, so a link reproduces it.
import uPlot from '/assets/uplot.esm.js';

import { $, api, card, cssVar, errorBox, fmt, h, pct } from '/assets/ui.js';
import { countryMap } from '/assets/web-map.js';

const PERIODS = [['today', 'Today'], ['yesterday', 'Yesterday'], ['7d', 'Last 7 days'], ['30d', 'Last 30 days'],
  ['90d', 'Last 90 days'], ['month', 'This month'], ['custom', 'Custom']];
const LABELS = { page: 'Page', entry_page: 'Entry page', exit_page: 'Exit page', source: 'Source', referrer: 'Referrer',
  utm_source: 'UTM source', utm_medium: 'UTM medium', utm_campaign: 'UTM campaign', country: 'Country',
  browser: 'Browser', os: 'OS', device: 'Device' };
const VIEW_KEYS = ['period', 'from', 'to'];
// The breakdown cards: tabs of one card share its space.
const CARDS = [
  ['Pages', [['page', 'Top pages', 'Views'], ['entry_page', 'Entry pages', 'Entrances'], ['exit_page', 'Exit pages', 'Exits']]],
  ['Sources', [['source', 'Sources', 'Visits'], ['referrer', 'Referrers', 'Visits'], ['utm_source', 'UTM sources', 'Visits'],
    ['utm_medium', 'UTM mediums', 'Visits'], ['utm_campaign', 'UTM campaigns', 'Visits']]],
  ['Countries', [['country', 'Countries', 'Visits']]],
  ['Devices', [['browser', 'Browsers', 'Visits'], ['os', 'Operating systems', 'Visits'], ['device', 'Devices', 'Visits']]],
];

let realtimeTimer = null;

const viewParams = () => new URLSearchParams(location.hash.split('?')[1] || '');
const hashFor = (project, q) => `#/p/${project.id}/web${[...q].length ? `?${q}` : ''}`;

function withParam(q, key, value) {
  const next = new URLSearchParams(q);
  if (value === null) next.delete(key); else next.set(key, value);
  return next;
}

const none = (key, v) => v !== '' ? v : key === 'referrer' ? 'Direct / none' : '(none)';

function duration(secs) {
  const s = Math.round(secs);
  return s >= 60 ? `${Math.floor(s / 60)}m ${String(s % 60).padStart(2, '0')}s` : `${s}s`;
}

// The change against the previous period; for the bounce rate, less is better.
function change(cur, prev, lowerIsBetter = false) {
  if (!prev) return h('span', { class: 'muted change' }, cur ? 'new' : '–');
  const d = (cur - prev) / prev;
  const good = lowerIsBetter ? d < 0 : d > 0;
  const cls = d === 0 ? 'muted' : good ? 'good' : 'poor';
  return h('span', { class: `change ${cls}`, title: 'against the previous period of the same length' },
    `${d > 0 ? '↑' : d < 0 ? '↓' : ''}${Math.abs(d * 100).toFixed(0)}%`);
}

function stats(r) {
  const c = r.current, p = r.previous;
  const tile = (id, label, value, ch) => h('div', { class: 'card stat', id: `web-${id}` },
    h('div', { class: 'value' }, value), h('div', { class: 'label' }, label, ' ', ch));
  return h('div', { class: 'grid web-stats' },
    tile('visitors', 'Unique visitors', fmt(c.visitors), change(c.visitors, p.visitors)),
    tile('visits', 'Visits', fmt(c.visits), change(c.visits, p.visits)),
    tile('pageviews', 'Page views', fmt(c.pageviews), change(c.pageviews, p.pageviews)),
    tile('views-per-visit', 'Views per visit', fmt(Math.round(c.views_per_visit * 100) / 100), change(c.views_per_visit, p.views_per_visit)),
    tile('bounce-rate', 'Bounce rate', pct(c.bounce_rate), change(c.bounce_rate, p.bounce_rate, true)),
    tile('duration', 'Visit duration', duration(c.visit_duration_secs), change(c.visit_duration_secs, p.visit_duration_secs)));
}

// Daily charts tick at the project's midnights, labelled with the date.
function dayTicks(r) {
  if (r.series.bucket !== 'day') return {};
  const label = new Intl.DateTimeFormat(undefined, { month: 'short', day: 'numeric', timeZone: r.timezone });
  const every = Math.ceil(r.series.buckets.length / 10);
  return { splits: () => r.series.buckets.filter((_, i) => i % every === 0).map((b) => b / 1000),
    values: (_u, splits) => splits.map((s) => label.format(new Date(s * 1000))) };
}

function chart(box, r) {
  const s = r.series;
  const width = Math.max(box.clientWidth || 300, 280);
  const opts = {
    width, height: 240,
    // Days and hours are the project's, whatever the browser's zone.
    tzDate: (ts) => uPlot.tzDate(new Date(ts * 1000), r.timezone),
    scales: { x: { time: true } },
    axes: [{ stroke: cssVar('--muted'), grid: { stroke: cssVar('--line') }, ...dayTicks(r) },
      { stroke: cssVar('--muted'), grid: { stroke: cssVar('--line') }, size: 50 }],
    series: [{}, { label: 'Visitors', stroke: cssVar('--accent'), width: 2, fill: `${cssVar('--accent')}22` },
      { label: 'Previous period', stroke: cssVar('--muted'), width: 1.5, dash: [6, 4] }],
  };
  box.textContent = '';
  const u = new uPlot(opts, [s.buckets.map((b) => b / 1000), s.visitors, s.previous], box);
  const onResize = () => {
    if (!box.isConnected) { removeEventListener('resize', onResize); return; }
    u.setSize({ width: Math.max(box.clientWidth, 280), height: 240 });
  };
  addEventListener('resize', onResize);
}

const NO_GEO = 'No GeoIP database configured (PULSELINE_GEOIP_DB): countries come only from messages that carry context.location.';

function breakdownTable(project, q, key, countLabel, rows, geo) {
  if (!rows.length) return h('p', { class: 'muted', id: key === 'country' && !geo ? 'web-no-geo' : undefined },
    key === 'country' && !geo ? NO_GEO : 'Nothing in this range.');
  const max = Math.max(1, ...rows.map((r) => r.visitors));
  return h('table', { class: 'breakdown', 'data-key': key },
    h('thead', {}, h('tr', {}, h('th', {}, LABELS[key]), h('th', { class: 'num' }, 'Visitors'), h('th', { class: 'num' }, countLabel))),
    h('tbody', {}, rows.map((r) => h('tr', {},
      h('td', { class: 'label-cell' },
        h('span', { class: 'meter', style: `width:${(100 * r.visitors / max).toFixed(1)}%` }),
        h('a', { href: hashFor(project, withParam(q, key, r.value)), title: `Filter by ${LABELS[key]}: ${none(key, r.value)}` },
          none(key, r.value))),
      h('td', { class: 'num' }, fmt(r.visitors)), h('td', { class: 'num' }, fmt(r.count))))));
}

function breakdownCard(project, q, r, geo, [title, tabs]) {
  const body = h('div', { class: 'scroll' });
  const bar = h('div', { class: 'tabs' });
  const show = (i) => {
    const [key, , countLabel] = tabs[i];
    bar.querySelectorAll('a').forEach((a, j) => a.classList.toggle('active', i === j));
    body.replaceChildren(breakdownTable(project, q, key, countLabel, r.breakdowns[key] || [], geo));
  };
  if (tabs.length > 1) {
    bar.append(...tabs.map(([key, label], i) => h('a', { href: '#', 'data-tab': key,
      onclick: (e) => { e.preventDefault(); show(i); } }, label)));
  }
  show(0);
  return h('section', { class: 'card web-breakdown', id: `web-${title.toLowerCase()}` }, h('h2', {}, title),
    tabs.length > 1 ? bar : '', tabs[0][0] === 'country' ? countries(project, q, r, geo) : '', body);
}

// Above the countries table: the map of the same rows, and a note when geo is off but some
// messages brought their own location.
function countries(project, q, r, geo) {
  const rows = r.breakdowns.country || [];
  if (!rows.length) return '';
  const box = h('div', { id: 'web-country-map', role: 'img', 'aria-label': 'Visitors by country (the table below lists them)',
    style: 'height:220px;margin-bottom:.5rem' });
  countryMap(box, rows, (code) => hashFor(project, withParam(q, 'country', code)))
    .catch((e) => box.replaceChildren(errorBox(e)));
  return h('div', {}, box, geo ? '' : h('p', { class: 'muted', id: 'web-no-geo' }, NO_GEO));
}

async function realtime(project, box) {
  try {
    const r = await api(`${project.api || `/api/dash/projects/${project.id}`}/web/realtime`);
    box.replaceChildren(h('p', {}, h('strong', { id: 'web-realtime-visitors' }, fmt(r.visitors)),
      ` visitor${r.visitors === 1 ? '' : 's'} in the last 5 minutes`),
    r.pages.length ? h('table', { id: 'web-realtime-pages' }, h('tbody', {}, r.pages.map(([path, n]) =>
      h('tr', {}, h('td', {}, path), h('td', { class: 'num' }, fmt(n)))))) : '');
  } catch (e) { box.replaceChildren(errorBox(e)); }
}

function controls(project, q, r, canAdmin) {
  const period = h('select', { id: 'web-period', 'aria-label': 'Period' },
    ...PERIODS.map(([v, label]) => h('option', { value: v, selected: v === (q.get('period') || '30d') }, label)));
  const day = (ms) => new Intl.DateTimeFormat('en-CA', { timeZone: r.timezone }).format(new Date(ms));
  const from = h('input', { type: 'date', id: 'web-from', value: q.get('from') || day(r.from) });
  const to = h('input', { type: 'date', id: 'web-to', value: q.get('to') || day(r.to - 1) });
  const custom = h('span', { class: 'row custom-range', hidden: period.value !== 'custom' },
    h('label', {}, 'From', from), h('label', {}, 'To', to),
    h('button', { type: 'button', id: 'web-apply', onclick: () => {
      let next = withParam(q, 'period', 'custom');
      next = withParam(withParam(next, 'from', from.value), 'to', to.value);
      location.hash = hashFor(project, next);
    } }, 'Apply'));
  period.addEventListener('change', () => {
    if (period.value === 'custom') { custom.hidden = false; return; }
    let next = withParam(q, 'period', period.value);
    next = withParam(withParam(next, 'from', null), 'to', null);
    location.hash = hashFor(project, next);
  });
  const tz = canAdmin ? h('button', { type: 'button', class: 'ghost', id: 'web-timezone', title: 'The project’s time zone decides the days',
    onclick: async () => {
      const name = prompt('Time zone of this project (IANA name, e.g. Europe/Berlin)', r.timezone);
      if (!name) return;
      try {
        await api(`/api/dash/projects/${project.id}/settings`, { method: 'POST', body: { timezone: name } });
        location.hash = hashFor(project, q);
        dispatchEvent(new HashChangeEvent('hashchange'));
      } catch (e) { alert(e.message); }
    } }, `Time zone: ${r.timezone}`) : h('span', { class: 'muted', id: 'web-timezone' }, `Time zone: ${r.timezone}`);
  return h('div', { class: 'row' }, h('label', {}, 'Period', period), custom, h('span', { class: 'spacer' }), tz);
}

function chips(project, q) {
  const active = [...q].filter(([k]) => !VIEW_KEYS.includes(k) && LABELS[k]);
  if (!active.length) return '';
  return h('div', { class: 'chips', id: 'web-filters' }, active.map(([k, v]) =>
    h('a', { class: 'chip', href: hashFor(project, withParam(q, k, null)), 'data-key': k, title: 'Remove this filter' },
      `${LABELS[k]}: ${none(k, v)} `, h('span', { 'aria-hidden': 'true' }, '✕'))),
  active.length > 1 ? h('a', { class: 'chip clear', href: hashFor(project, new URLSearchParams([...q].filter(([k]) => VIEW_KEYS.includes(k)))) }, 'Clear all') : '');
}

// What the numbers leave out (docs/dashboard-web.md): page views the background fold has not
// counted yet, a rebuild after a time zone change, or a filtered view past its read limit.
function notes(r) {
  const out = [];
  const b = r.behind;
  if (b && b.pageviews > 0) {
    const since = b.queued_since ? new Date(b.queued_since).toLocaleTimeString() : '';
    out.push(`Includes page views stored up to ${since}; ${fmt(b.pageviews)}${b.pageviews >= 100000 ? '+' : ''} more are being counted.`);
  }
  if (b && b.rebuilding) out.push('The time zone changed: the days are being recounted, so this view reads visits meanwhile.');
  if (r.coverage_from) {
    const since = new Date(r.coverage_from).toLocaleString();
    out.push(r.coverage_breakdowns_only
      ? `Too many visits to read them all: the totals and chart are whole, the breakdowns cover the visits since ${since}.`
      : `Too many visits to read them all: these numbers cover the visits since ${since}.`);
  }
  return out.length ? h('p', { class: 'muted', id: 'web-behind' }, out.join(' ')) : '';
}

export async function web(project) {
  const main = $('#main');
  if (realtimeTimer) { clearInterval(realtimeTimer); realtimeTimer = null; }
  const q = viewParams();
  const query = new URLSearchParams([...q].filter(([k]) => VIEW_KEYS.includes(k) || LABELS[k]));
  // Whether a GeoIP database is set; unknown (null) if this session may not ask (a shared link).
  const [r, settings] = await Promise.all([api(`${project.api || `/api/dash/projects/${project.id}`}/web?${query}`),
    project.api ? null : api('/api/dash/web-analytics').catch(() => null)]);
  const canAdmin = ['owner', 'admin'].includes(project.role);
  const chartBox = h('div', { class: 'chart', id: 'web-chart' });
  const live = h('div', { id: 'web-realtime' }, h('p', { class: 'muted' }, 'Loading…'));
  main.replaceChildren(h('h1', {}, `${project.name}: Web`), controls(project, q, r, canAdmin), chips(project, q),
    notes(r), stats(r), card('Visitors', chartBox),
    h('div', { class: 'web-grid' }, CARDS.map((c) => breakdownCard(project, q, r, settings?.geo ?? true, c))),
    card('Realtime', live));
  chart(chartBox, r);
  await realtime(project, live);
  realtimeTimer = setInterval(() => {
    if (!live.isConnected) { clearInterval(realtimeTimer); realtimeTimer = null; return; }
    realtime(project, live);
  }, 10000);
}
