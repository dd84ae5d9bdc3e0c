// Churn next to retention (docs/dashboard.md#churn): of the users active in each week or month,
// the share that churned in the next one, by inactivity or by an event, as a uPlot chart.
import uPlot from '/assets/uplot.esm.js';

import { api, card, cssVar, fmt, h, iso, loadInto, pct } from '/assets/ui.js';

let current = null; // the chart on screen, resized with the page

addEventListener('resize', () => {
  if (current?.box.isConnected) current.u.setSize({ width: Math.max(current.box.clientWidth, 280), height: 220 });
});

function draw(box, points, period) {
  box.textContent = '';
  // Half a period either side, so the first and latest points sit inside the plot.
  const pad = (period === 'week' ? 3.5 : 15) * 86400;
  const xs = points.map((p) => p.start / 1000);
  const [lo, hi] = xs.length ? [xs[0] - pad, xs.at(-1) + pad] : [Date.now() / 1000 - 2 * pad, Date.now() / 1000];
  const opts = {
    width: Math.max(box.clientWidth || 300, 280), height: 220,
    scales: { x: { time: true, auto: false, range: () => [lo, hi] }, y: { range: (_u, _min, max) => [0, Math.max(10, Math.ceil(max / 10) * 10)] } },
    // Ticks on whole days at least, labelled by date: a period starts at 00:00 UTC.
    axes: [{ stroke: cssVar('--muted'), grid: { stroke: cssVar('--line') }, incrs: [86400, 7 * 86400, 28 * 86400, 91 * 86400, 364 * 86400],
      values: (_u, ticks) => ticks.map((t) => iso(t * 1000).slice(0, 10)) },
      { stroke: cssVar('--muted'), grid: { stroke: cssVar('--line') }, size: 60, values: (_u, ticks) => ticks.map((t) => `${t}%`) }],
    series: [{}, { label: 'Churned', stroke: cssVar('--bad'), width: 2, fill: `${cssVar('--bad')}22`,
      points: { show: true }, value: (_u, v) => (v == null ? '–' : `${v.toFixed(1)}%`) }],
  };
  const data = [xs, points.map((p) => (p.rate == null ? null : p.rate * 100))];
  current = { u: new uPlot(opts, data, box), box };
}

/// The churn card and its loader: a period, an optional event that defines churn, the chart
/// and a line on the latest complete period.
export function churnCard(project) {
  const period = h('select', { id: 'churn-period' },
    h('option', { value: 'week' }, 'by week'), h('option', { value: 'month' }, 'by month'));
  const event = h('input', { id: 'churn-event', size: 28, placeholder: 'empty: not active at all',
    value: localStorage.getItem(`churn-event-${project.id}`) || '' });
  const box = h('div', { id: 'churn-chart' });
  const summary = h('p', { id: 'churn-last', class: 'muted' });
  const load = async () => {
    const name = event.value.trim();
    localStorage.setItem(`churn-event-${project.id}`, name);
    const q = new URLSearchParams({ period: period.value });
    if (name) q.set('event', name);
    summary.textContent = '';
    await loadInto(box, async () => {
      const s = await api(`/api/dash/projects/${project.id}/churn?${q}`);
      // Periods before anyone was active say nothing: the chart starts at the first active one.
      const first = s.points.findIndex((p) => p.active > 0);
      draw(box, first < 0 ? s.points : s.points.slice(first), s.period);
      const last = s.points.filter((p) => p.rate != null).at(-1);
      const how = s.event ? `did “${s.event}” in the next ${s.period}` : `were not active in the next ${s.period}`;
      summary.textContent = last
        ? `${s.period === 'week' ? 'Week' : 'Month'} of ${iso(last.start).slice(0, 10)}: ${pct(last.rate)} of ${fmt(last.active)} active users ${how}.`
        : `No complete ${s.period} with active users yet: a ${s.period} shows once the next one is over.`;
    });
  };
  const form = h('form', { class: 'row', onsubmit: (e) => { e.preventDefault(); load(); } },
    h('label', {}, 'Period', period),
    h('label', {}, 'Churned = did this event in the next period', event),
    h('button', { type: 'submit' }, 'Show'));
  return { el: card('Churn: share of active users who churned in the next period', form, box, summary), load };
}
