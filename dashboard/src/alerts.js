// The Alerts section (history, rules with a preview chart, channels, categories, deliveries)
// and the notification bell in the header. Everything goes through
// /api/dash/projects/{id}/…: the same handlers as the secret-key /api/v1 routes, with the
// server checking the user's role (viewers read; developers and above change).
import uPlot from '/assets/uplot.esm.js';
import { $, api, card, cssVar, errorBox, fmt, h, iso, loadInto } from '/assets/ui.js';

const main = () => $('#main');
const base = (project) => `/api/dash/projects/${project.id}`;
const canChange = (project) => ['owner', 'admin', 'developer'].includes(project.role);
const when = (s) => s ? iso(Date.parse(s)) : '–';
const pill = (text, kind = text) => h('span', { class: `pill ${kind}` }, text);

const TABS = [['alerts', 'History'], ['rules', 'Rules'], ['channels', 'Channels'], ['categories', 'Categories'],
  ['deliveries', 'Deliveries']];

function section(project, page, title, ...body) {
  main().replaceChildren(
    h('nav', { class: 'tabs', 'aria-label': 'Alerts' }, TABS.map(([id, label]) =>
      h('a', { href: `#/p/${project.id}/${id}`, class: id === page ? 'active' : '' }, label))),
    h('h1', {}, title), ...body);
}

function readOnlyNote(project) {
  return canChange(project) ? '' : h('p', { class: 'muted', id: 'read-only' },
    `You are a ${project.role} here: you can read alerting, and a developer or above can change it.`);
}

// ---- history -------------------------------------------------------------------------------
async function history(project) {
  const rows = [];
  const body = h('tbody', {});
  const more = h('button', { type: 'button', class: 'ghost', hidden: true }, 'Older alerts');
  let cursor = null;
  const load = async () => {
    const page = await api(`${base(project)}/alerts?limit=100${cursor ? `&cursor=${cursor}` : ''}`);
    rows.push(...page.alerts);
    cursor = page.next_cursor;
    more.hidden = !cursor;
    body.append(...page.alerts.map((a) => h('tr', {},
      h('td', {}, pill(a.status)), h('td', {}, a.rule_name), h('td', {}, a.reason),
      h('td', {}, when(a.started_at)), h('td', {}, when(a.resolved_at)),
      h('td', { class: 'num' }, fmt(a.value)), h('td', { class: 'num' }, fmt(a.expected)),
      h('td', { class: 'explain' }, a.explanation))));
  };
  more.addEventListener('click', () => load().catch((e) => more.replaceWith(errorBox(e))));
  await load();
  section(project, 'alerts', 'Alert history',
    h('p', { class: 'muted' }, 'Every time a rule fired, newest first, and when it resolved. Times in UTC.'),
    card(null, rows.length ? h('div', { class: 'scroll' }, h('table', { id: 'alerts-table' },
      h('thead', {}, h('tr', {}, ...['Status', 'Rule', 'Reason', 'Started', 'Resolved'].map((t) => h('th', {}, t)),
        h('th', { class: 'num' }, 'Value'), h('th', { class: 'num' }, 'Expected'), h('th', {}, 'Explanation'))), body))
      : h('p', { class: 'muted' }, 'No alerts yet. Rules fire here (and on their channels) when their condition holds.'),
    more));
}

// ---- channels ------------------------------------------------------------------------------
async function channels(project) {
  const { channels: list } = await api(`${base(project)}/channels`);
  const err = h('p', { class: 'error', role: 'alert' });
  const fresh = h('div', { id: 'channel-secret' });
  const kind = h('select', { name: 'kind' }, ...['discord', 'slack', 'webhook', 'email'].map((k) => h('option', { value: k }, k)));
  const name = h('input', { name: 'name', required: true, maxlength: 100, placeholder: 'e.g. #ops' });
  const target = h('input', { name: 'target', required: true, size: 42, placeholder: 'https://discord.com/api/webhooks/…' });
  kind.addEventListener('change', () => {
    target.placeholder = kind.value === 'email' ? 'alerts@example.com' : kind.value === 'slack'
      ? 'https://hooks.slack.com/services/…' : kind.value === 'webhook' ? 'https://example.com/pulseline' : 'https://discord.com/api/webhooks/…';
  });
  const form = h('form', { class: 'row', id: 'channel-form', onsubmit: async (e) => {
    e.preventDefault();
    const body = { name: name.value, kind: kind.value };
    body[kind.value === 'email' ? 'email' : 'url'] = target.value;
    try {
      const c = await api(`${base(project)}/channels`, { method: 'POST', body });
      await channels(project);
      if (c.signing_secret) {
        $('#channel-secret').replaceChildren(h('div', { class: 'secret' },
          h('p', {}, h('strong', {}, `Signing secret of “${c.name}” — shown once. `),
            'Verify the webhook-signature header with it (Standard Webhooks).'),
          h('code', { class: 'key' }, c.signing_secret)));
      }
    } catch (x) { err.textContent = x.message; }
  } }, h('label', {}, 'Name', name), h('label', {}, 'Kind', kind), h('label', {}, 'Webhook URL or e-mail', target),
  h('button', { type: 'submit' }, 'Add channel'));

  const row = (c) => {
    const result = h('div', { class: 'test-result', id: `test-result-${c.id}` });
    const actions = canChange(project) ? [
      h('button', { type: 'button', class: 'ghost', 'data-test': c.id, onclick: async (e) => {
        e.target.disabled = true;
        result.replaceChildren('Sending…');
        try {
          const t = await api(`${base(project)}/channels/${c.id}/test`, { method: 'POST', body: {} });
          result.replaceChildren(testResult(t));
          if (t.channel_disabled) setTimeout(() => channels(project), 1500);
        } catch (x) { result.replaceChildren(errorBox(x)); }
        e.target.disabled = false;
      } }, 'Send test'), ' ',
      c.enabled ? '' : h('button', { type: 'button', class: 'ghost', onclick: () =>
        change(() => api(`${base(project)}/channels/${c.id}`, { method: 'PATCH', body: { enabled: true } })) }, 'Re-enable'), ' ',
      h('button', { type: 'button', class: 'ghost danger-text', onclick: () => {
        if (confirm(`Delete channel “${c.name}”?`)) change(() => api(`${base(project)}/channels/${c.id}`, { method: 'DELETE' }));
      } }, 'Delete'),
    ] : '';
    return h('tr', { 'data-channel': c.id },
      h('td', {}, c.name), h('td', {}, c.kind), h('td', { class: 'target' }, h('code', {}, c.target)),
      h('td', {}, c.enabled ? pill('enabled', 'ok') : [pill('disabled', 'bad'),
        h('div', { class: 'reason' }, c.disabled_reason, c.disabled_at ? ` (since ${when(c.disabled_at)})` : '')]),
      h('td', {}, actions, result));
  };
  const change = async (f) => { try { await f(); await channels(project); } catch (x) { err.textContent = x.message; } };

  section(project, 'channels', 'Channels',
    h('p', { class: 'muted' }, 'Where notifications go. A channel whose webhook answers 401 or 404 is disabled with the reason; fix it and re-enable it.'),
    readOnlyNote(project), canChange(project) ? form : '', err, fresh,
    card(null, list.length ? h('div', { class: 'scroll' }, h('table', { id: 'channels-table' },
      h('thead', {}, h('tr', {}, ...['Name', 'Kind', 'Target', 'Status', ''].map((t) => h('th', {}, t)))),
      h('tbody', {}, list.map(row)))) : h('p', { class: 'muted' }, 'No channels yet.')));
}

function testResult(t) {
  const how = t.status_code ? `HTTP ${t.status_code} in ${fmt(t.latency_ms)} ms` : `after ${fmt(t.latency_ms)} ms`;
  return h('div', { class: t.delivered ? 'good' : 'poor' },
    t.delivered ? `Delivered: ${how}.` : `Not delivered: ${t.error || how}.`,
    t.response_excerpt ? h('div', {}, 'Response: ', h('code', {}, t.response_excerpt)) : '',
    t.channel_disabled ? h('div', {}, `The channel was disabled: ${t.channel_disabled}`) : '');
}

// ---- categories ----------------------------------------------------------------------------
async function categories(project) {
  const [{ categories: list }, { channels: chans }] = await Promise.all([
    api(`${base(project)}/categories`), api(`${base(project)}/channels`)]);
  const chanName = (id) => chans.find((c) => c.id === id)?.name ?? `#${id}`;
  const err = h('p', { class: 'error', role: 'alert' });
  const editor = h('div', {});
  const edit = (c) => {
    const f = {
      name: h('input', { required: true, maxlength: 100, value: c?.name ?? '', placeholder: 'Payments' }),
      pattern: h('input', { required: true, value: c?.pattern ?? '', placeholder: 'payment.* or signup' }),
      emoji: h('input', { size: 3, value: c?.emoji ?? '🔔' }),
      colour: h('input', { type: 'color', value: (c?.colour ?? '#3B5BDB').toLowerCase() }),
      channel: h('select', { required: true }, ...chans.map((ch) => h('option', { value: ch.id, selected: ch.id === c?.channel_id }, ch.name))),
      title: h('input', { size: 30, value: c?.title_template ?? '', placeholder: '{emoji} {event} (default)' }),
      description: h('input', { size: 40, value: c?.description_template ?? '', placeholder: 'e.g. {user} paid {amount}' }),
    };
    editor.replaceChildren(card(c ? `Edit “${c.name}”` : 'New category', h('form', { class: 'row', id: 'category-form', onsubmit: async (e) => {
      e.preventDefault();
      const body = { name: f.name.value, pattern: f.pattern.value, emoji: f.emoji.value, colour: f.colour.value,
        channel_id: Number(f.channel.value), title_template: f.title.value || null, description_template: f.description.value || null };
      try {
        await api(`${base(project)}/categories${c ? `/${c.id}` : ''}`, { method: c ? 'PUT' : 'POST', body });
        await categories(project);
      } catch (x) { err.textContent = x.message; }
    } }, h('label', {}, 'Name', f.name), h('label', {}, 'Events (name or glob)', f.pattern), h('label', {}, 'Emoji', f.emoji),
    h('label', {}, 'Colour', f.colour), h('label', {}, 'Channel', f.channel), h('label', {}, 'Title template', f.title),
    h('label', {}, 'Description template', f.description), h('button', { type: 'submit' }, c ? 'Save' : 'Create'),
    h('button', { type: 'button', class: 'ghost', onclick: () => editor.replaceChildren() }, 'Cancel'))));
  };
  const may = canChange(project);
  section(project, 'categories', 'Categories',
    h('p', { class: 'muted' }, 'Events that become notifications as they arrive (e.g. every payment.* to #sales).'),
    readOnlyNote(project),
    may ? (chans.length ? h('div', { class: 'row' }, h('button', { type: 'button', id: 'new-category', onclick: () => edit(null) }, 'New category'))
      : h('p', {}, 'Add a ', h('a', { href: `#/p/${project.id}/channels` }, 'channel'), ' first.')) : '',
    err, editor,
    card(null, list.length ? h('div', { class: 'scroll' }, h('table', { id: 'categories-table' },
      h('thead', {}, h('tr', {}, ...['Name', 'Events', 'Colour', 'Channel', 'Title / description', ''].map((t) => h('th', {}, t)))),
      h('tbody', {}, list.map((c) => h('tr', {},
        h('td', {}, `${c.emoji} ${c.name}`), h('td', {}, h('code', {}, c.pattern)),
        h('td', {}, h('span', { class: 'swatch', style: `background:${c.colour}` }), ' ', c.colour),
        h('td', {}, chanName(c.channel_id)),
        h('td', { class: 'muted' }, [c.title_template, c.description_template].filter(Boolean).join(' · ') || 'default'),
        h('td', {}, may ? [h('button', { type: 'button', class: 'ghost', onclick: () => edit(c) }, 'Edit'), ' ',
          h('button', { type: 'button', class: 'ghost danger-text', onclick: async () => {
            if (!confirm(`Delete category “${c.name}”?`)) return;
            try { await api(`${base(project)}/categories/${c.id}`, { method: 'DELETE' }); await categories(project); } catch (x) { err.textContent = x.message; }
          } }, 'Delete')] : '')))))) : h('p', { class: 'muted' }, 'No categories yet.')));
}

// ---- rules ---------------------------------------------------------------------------------
const describeSeries = (s) => `${s.aggregate === 'count' ? 'count' : `${s.aggregate} of ${s.property || 'value'}`} of ${s.event} per ${s.bucket}`
  + (Object.keys(s.filters || {}).length ? ` (${Object.entries(s.filters).map(([k, v]) => `${k}=${v}`).join(', ')})` : '');
const describeCondition = (c) => c.type === 'threshold' ? `${c.op} ${fmt(c.value)}`
  : `anomaly (${c.direction}, sensitivity ${c.sensitivity}, ${c.seasonality} seasonality)`;

async function rules(project) {
  const [{ rules: list }, { channels: chans }] = await Promise.all([api(`${base(project)}/rules`), api(`${base(project)}/channels`)]);
  const err = h('p', { class: 'error', role: 'alert' });
  const may = canChange(project);
  section(project, 'rules', 'Rules',
    h('p', { class: 'muted' }, 'A rule watches one series and fires when its condition holds (threshold) or when it leaves its usual band (anomaly).'),
    readOnlyNote(project),
    may ? h('div', { class: 'row' }, h('a', { class: 'button', id: 'new-rule', href: `#/p/${project.id}/rule` }, 'New rule')) : '', err,
    card(null, list.length ? h('div', { class: 'scroll' }, h('table', { id: 'rules-table' },
      h('thead', {}, h('tr', {}, ...['Name', 'Series', 'Condition', 'State', 'Channels', ''].map((t) => h('th', {}, t)))),
      h('tbody', {}, list.map((r) => h('tr', {},
        h('td', {}, r.name, r.enabled ? '' : [' ', pill('off', 'muted')]), h('td', {}, describeSeries(r.series)),
        h('td', {}, describeCondition(r.condition)), h('td', {}, pill(r.state, r.state === 'firing' ? 'firing' : r.state === 'pending' ? 'pending' : 'ok')),
        h('td', {}, r.channel_ids.map((id) => chans.find((c) => c.id === id)?.name ?? `#${id}`).join(', ') || '–'),
        h('td', {}, h('a', { href: `#/p/${project.id}/rule?id=${r.id}` }, may ? 'Edit' : 'View'), ' ',
          may ? h('button', { type: 'button', class: 'ghost danger-text', onclick: async () => {
            if (!confirm(`Delete rule “${r.name}”? Its alert history stays.`)) return;
            try { await api(`${base(project)}/rules/${r.id}`, { method: 'DELETE' }); await rules(project); } catch (x) { err.textContent = x.message; }
          } }, 'Delete') : '')))))) : h('p', { class: 'muted' }, 'No rules yet.')));
}

function field(label, input, hint) {
  return h('label', { title: hint || '' }, label, input);
}

async function ruleEditor(project) {
  const id = new URLSearchParams(location.hash.split('?')[1] || '').get('id');
  const [existing, { channels: chans }, names] = await Promise.all([
    id ? api(`${base(project)}/rules/${id}`) : null, api(`${base(project)}/channels`),
    api(`${base(project)}/event-names`)]);
  const r = existing ?? { name: '', enabled: true, series: { event: names[0]?.[0] ?? '', aggregate: 'count', bucket: 'hour', filters: {} },
    condition: { type: 'threshold', op: '>', value: 50 }, for_secs: 0, cooldown_secs: 0, repeat_secs: 0, no_data: 'zero', channel_ids: [] };
  const c = r.condition;
  const sel = (name, values, cur) => h('select', { name }, ...values.map((v) => h('option', { value: v, selected: v === cur }, v)));
  const f = {
    name: h('input', { name: 'name', required: true, maxlength: 200, size: 28, value: r.name, placeholder: 'Signups per hour' }),
    enabled: h('input', { name: 'enabled', type: 'checkbox', checked: r.enabled }),
    event: h('input', { name: 'event', required: true, list: 'event-list', value: r.series.event }),
    aggregate: sel('aggregate', ['count', 'sum', 'avg', 'min', 'max', 'p75'], r.series.aggregate),
    property: h('input', { name: 'property', size: 10, value: r.series.property ?? '', placeholder: 'value' }),
    bucket: sel('bucket', ['minute', 'hour', 'day'], r.series.bucket),
    filters: h('input', { name: 'filters', size: 22, placeholder: 'plan=pro, country=DE',
      value: Object.entries(r.series.filters || {}).map(([k, v]) => `${k}=${v}`).join(', ') }),
    type: sel('type', ['threshold', 'anomaly'], c.type),
    op: sel('op', ['>', '>=', '<', '<='], c.op ?? '>'),
    value: h('input', { name: 'value', type: 'number', step: 'any', size: 8, value: c.value ?? 50 }),
    direction: sel('direction', ['both', 'up', 'down'], c.direction ?? 'both'),
    sensitivity: h('input', { name: 'sensitivity', type: 'number', step: '0.1', min: '0.1', size: 5, value: c.sensitivity ?? 3 }),
    min_volume: h('input', { name: 'min_volume', type: 'number', step: 'any', min: 0, size: 6, value: c.min_volume ?? 0 }),
    seasonality: sel('seasonality', ['auto', 'none', 'daily', 'weekly'], c.seasonality ?? 'auto'),
    for_secs: h('input', { name: 'for_secs', type: 'number', min: 0, size: 6, value: r.for_secs }),
    cooldown_secs: h('input', { name: 'cooldown_secs', type: 'number', min: 0, size: 6, value: r.cooldown_secs }),
    repeat_secs: h('input', { name: 'repeat_secs', type: 'number', min: 0, size: 6, value: r.repeat_secs }),
    no_data: sel('no_data', ['zero', 'keep', 'alert'], r.no_data),
  };
  const chanBoxes = chans.map((ch) => h('label', { class: 'check' },
    h('input', { type: 'checkbox', name: 'channel', value: ch.id, checked: r.channel_ids.includes(ch.id) }),
    `${ch.name} (${ch.kind})${ch.enabled ? '' : ' — disabled'}`));
  const thresholdBox = h('div', { class: 'row' }, field('Fires when the value is', f.op), field('Threshold', f.value));
  const anomalyBox = h('div', { class: 'row' }, field('Direction', f.direction),
    field('Sensitivity (z-score; lower is touchier)', f.sensitivity), field('Ignore below volume', f.min_volume), field('Seasonality', f.seasonality));
  const err = h('p', { class: 'error', role: 'alert', id: 'rule-error' });
  const previewBox = h('div', { class: 'chart', id: 'rule-preview' });
  const previewNote = h('p', { class: 'muted', id: 'preview-note' });

  const spec = () => {
    const filters = {};
    for (const part of f.filters.value.split(',').map((s) => s.trim()).filter(Boolean)) {
      const [k, ...rest] = part.split('=');
      const v = rest.join('=').trim();
      filters[k.trim()] = /^-?\d+(\.\d+)?$/.test(v) ? Number(v) : v === 'true' ? true : v === 'false' ? false : v;
    }
    const series = { event: f.event.value.trim(), aggregate: f.aggregate.value, bucket: f.bucket.value, filters };
    if (f.aggregate.value !== 'count' && f.property.value.trim()) series.property = f.property.value.trim();
    const condition = f.type.value === 'threshold'
      ? { type: 'threshold', op: f.op.value, value: Number(f.value.value) }
      : { type: 'anomaly', direction: f.direction.value, sensitivity: Number(f.sensitivity.value),
        min_volume: Number(f.min_volume.value), seasonality: f.seasonality.value };
    return { name: f.name.value.trim() || 'draft', enabled: f.enabled.checked, series, condition,
      for_secs: Number(f.for_secs.value) || 0, cooldown_secs: Number(f.cooldown_secs.value) || 0,
      repeat_secs: Number(f.repeat_secs.value) || 0, no_data: f.no_data.value,
      channel_ids: chanBoxes.map((l) => l.firstChild).filter((i) => i.checked).map((i) => Number(i.value)) };
  };
  const sync = () => {
    thresholdBox.hidden = f.type.value !== 'threshold';
    anomalyBox.hidden = f.type.value === 'threshold';
    f.property.disabled = f.aggregate.value === 'count';
  };
  let timer = null, seq = 0;
  const preview = () => {
    clearTimeout(timer);
    timer = setTimeout(async () => {
      const mine = ++seq;
      const s = spec();
      const buckets = s.series.bucket === 'minute' ? 120 : s.series.bucket === 'hour' ? 72 : 60;
      const wanted = () => mine === seq && previewBox.isConnected;
      await loadInto(previewBox, async () => {
        const p = await api(`${base(project)}/rules/preview?buckets=${buckets}`, { method: 'POST', body: s });
        if (!wanted()) return;
        previewChart(previewBox, p, s);
        const breaches = p.points.filter((x) => x.breach).length;
        previewNote.textContent = `${p.series}, last ${p.points.length} closed buckets: the condition held in ${breaches}. `
          + (s.condition.type === 'anomaly' ? 'The shaded band is what the detector expects; it appears once there is enough history.' : 'The dashed line is the threshold.');
      }, { wanted, fail: (x, again) => {
        previewBox.replaceChildren(errorBox(x, again));
        previewNote.textContent = '';
      } }).catch((x) => { if (wanted()) previewBox.replaceChildren(errorBox(x)); });
    }, 250);
  };
  const may = canChange(project);
  const form = h('form', { id: 'rule-form', onsubmit: async (e) => {
    e.preventDefault();
    try {
      const s = spec();
      s.name = f.name.value.trim();
      await api(`${base(project)}/rules${id ? `/${id}` : ''}`, { method: id ? 'PUT' : 'POST', body: s });
      location.hash = `#/p/${project.id}/rules`;
    } catch (x) { err.textContent = x.message; }
  }, oninput: preview, onchange: () => { sync(); preview(); } },
  h('datalist', { id: 'event-list' }, names.map(([n]) => h('option', { value: n }))),
  card('Rule', h('div', { class: 'row' }, field('Name', f.name), h('label', { class: 'check' }, f.enabled, 'Enabled'))),
  card('Series', h('div', { class: 'row' }, field('Event', f.event), field('Aggregate', f.aggregate),
    field('Of property', f.property, 'The numeric property aggregated; default value'), field('Per', f.bucket),
    field('Where (property=value, …)', f.filters))),
  card('Condition', h('div', { class: 'row' }, field('Type', f.type)), thresholdBox, anomalyBox,
    h('div', { class: 'row' }, field('Holds for (s) before firing', f.for_secs), field('Cooldown after resolving (s)', f.cooldown_secs),
      field('Repeat while firing every (s, 0 = never)', f.repeat_secs), field('A bucket without events', f.no_data))),
  card('Preview', previewBox, previewNote),
  card('Notify', chans.length ? h('div', { class: 'checks' }, chanBoxes)
    : h('p', { class: 'muted' }, 'No channels yet: alerts still show in the history and the bell at the top. ',
      h('a', { href: `#/p/${project.id}/channels` }, 'Add a channel'), '.')),
  err,
  may ? h('div', { class: 'row' }, h('button', { type: 'submit', id: 'save-rule' }, id ? 'Save rule' : 'Create rule'),
    h('a', { href: `#/p/${project.id}/rules` }, 'Cancel')) : readOnlyNote(project));
  if (!may) for (const el of form.querySelectorAll('input, select')) el.disabled = true;
  section(project, 'rules', id ? `Rule “${r.name}”` : 'New rule', form);
  sync();
  preview();
}

// The series with its threshold line, or its anomaly band (shaded between lower and upper,
// the expected value dashed); buckets where the condition held are marked.
function previewChart(box, p, s) {
  box.textContent = '';
  const xs = p.points.map((x) => Date.parse(x.start) / 1000);
  const value = p.points.map((x) => x.value);
  const breach = p.points.map((x) => x.breach ? x.value : null);
  const anomaly = s.condition.type === 'anomaly';
  const series = [{}, { label: p.series, stroke: cssVar('--accent'), width: 2, spanGaps: false }];
  const data = [xs, value];
  const bands = [];
  if (anomaly) {
    series.push({ label: 'expected', stroke: cssVar('--muted'), dash: [6, 4], width: 1 },
      { label: 'upper', stroke: cssVar('--good'), width: 1 }, { label: 'lower', stroke: cssVar('--good'), width: 1 });
    data.push(p.points.map((x) => x.expected), p.points.map((x) => x.upper), p.points.map((x) => x.lower));
    bands.push({ series: [3, 4], fill: `${cssVar('--good')}22` });
  } else {
    series.push({ label: `threshold ${s.condition.op} ${fmt(s.condition.value)}`, stroke: cssVar('--bad'), dash: [6, 4], width: 2,
      points: { show: false } });
    data.push(p.points.map((x) => x.threshold));
  }
  series.push({ label: 'condition held', stroke: cssVar('--bad'), width: 0, paths: () => null,
    points: { show: true, size: 8, fill: cssVar('--bad'), stroke: cssVar('--bad') } });
  data.push(breach);
  const u = new uPlot({
    width: Math.max(box.clientWidth || 300, 280), height: 260, series, bands,
    scales: { x: { time: true } },
    axes: [{ stroke: cssVar('--muted'), grid: { stroke: cssVar('--line') } },
      { stroke: cssVar('--muted'), grid: { stroke: cssVar('--line') }, size: 60 }],
  }, data, box);
  const resize = () => { if (box.isConnected) u.setSize({ width: Math.max(box.clientWidth, 280), height: 260 }); else removeEventListener('resize', resize); };
  addEventListener('resize', resize);
}

// ---- deliveries ----------------------------------------------------------------------------
async function deliveries(project) {
  const q = new URLSearchParams(location.hash.split('?')[1] || '');
  const status = q.get('status') || '';
  const [{ deliveries: list }, { channels: chans }] = await Promise.all([
    api(`${base(project)}/deliveries?limit=200${status ? `&status=${status}` : ''}`), api(`${base(project)}/channels`)]);
  const chanName = (id) => chans.find((c) => c.id === id)?.name ?? `#${id}`;
  const filter = h('select', { id: 'delivery-status', onchange: (e) => {
    location.hash = `#/p/${project.id}/deliveries${e.target.value ? `?status=${e.target.value}` : ''}`;
  } }, ...['', 'pending', 'delivered', 'failed', 'dead'].map((s) => h('option', { value: s, selected: s === status }, s || 'all')));
  const kind = { delivered: 'ok', failed: 'pending', dead: 'bad', pending: 'muted' };
  section(project, 'deliveries', 'Delivery log',
    h('p', { class: 'muted' }, 'Every notification sent to a channel, with each attempt: failed ones are retried with backoff, then given up (dead).'),
    h('div', { class: 'row' }, h('label', {}, 'Status', filter)),
    card(null, list.length ? h('div', { class: 'scroll' }, h('table', { id: 'deliveries-table' },
      h('thead', {}, h('tr', {}, ...['Created', 'Channel', 'Notification', 'Status', 'Attempts', 'Last answer', 'Response'].map((t) => h('th', {}, t)))),
      h('tbody', {}, list.map((d) => {
        const last = d.attempt_log[d.attempt_log.length - 1];
        return h('tr', {},
          h('td', {}, when(d.created_at)), h('td', {}, chanName(d.channel_id)),
          h('td', {}, d.notification?.title ?? d.source, h('div', { class: 'muted small' }, d.source)),
          h('td', {}, pill(d.status, kind[d.status]), d.status === 'failed' ? h('div', { class: 'muted small' }, `next try ${when(d.next_attempt_at)}`) : ''),
          h('td', { class: 'num' }, d.attempts),
          h('td', {}, last ? (last.status_code ? `HTTP ${last.status_code}` : last.outcome) : '–', last ? h('div', { class: 'muted small' }, `${fmt(last.latency_ms)} ms`) : ''),
          h('td', { class: 'response' }, last?.response_excerpt ? h('code', {}, last.response_excerpt) : '', last?.error || d.last_error
            ? h('div', { class: 'error' }, last?.error || d.last_error) : '',
          d.attempt_log.length > 1 ? h('details', {}, h('summary', {}, `${d.attempt_log.length} attempts`),
            h('ol', {}, d.attempt_log.map((a) => h('li', {}, `${when(a.started_at)} · ${a.status_code ? `HTTP ${a.status_code}` : a.outcome}`
              + ` · ${fmt(a.latency_ms)} ms${a.error ? ` · ${a.error}` : ''}`)))) : ''));
      })))) : h('p', { class: 'muted' }, status ? `No ${status} deliveries.` : 'Nothing sent yet.')));
}

export const pages = { alerts: history, rules, rule: ruleEditor, channels, categories, deliveries };

// ---- the bell ------------------------------------------------------------------------------
// Firing and resolved alerts of the current project, newest first. "Last seen" is kept in
// this browser's localStorage per user and project: opening the bell marks everything read.
// It polls the alerts list (one indexed query for 20 rows) every BELL_POLL_MS while the tab is
// visible, and at once when the tab comes back or the user moves to another page.
const BELL_POLL_MS = 30000;
const BELL_ROWS = 20;
let bell = { project: null, timer: null, alerts: [], key: null };

const changedAt = (a) => Math.max(Date.parse(a.started_at), a.resolved_at ? Date.parse(a.resolved_at) : 0);
const lastSeen = () => Number(localStorage.getItem(bell.key)) || 0;

export function startBell(project, session) {
  $('#bell-box').hidden = false;
  if (bell.project === project.id && bell.timer) return;
  stopBell();
  $('#bell-box').hidden = false;
  bell = { project: project.id, timer: null, alerts: [], key: `pulseline-bell-seen-${session.user_id}-${project.id}`, base: base(project) };
  pollBell();
  bell.timer = setInterval(() => { if (!document.hidden) pollBell(); }, BELL_POLL_MS);
}

export function stopBell() {
  clearInterval(bell.timer);
  bell = { project: null, timer: null, alerts: [], key: null };
  $('#bell-panel').hidden = true;
  $('#bell-box').hidden = true;
}

async function pollBell() {
  const mine = bell;
  try {
    const page = await api(`${mine.base}/alerts?limit=${BELL_ROWS}`);
    if (bell !== mine) return;
    mine.alerts = page.alerts.sort((a, b) => changedAt(b) - changedAt(a));
    renderBell();
  } catch (e) {
    if (e.status === 401 || e.status === 404) stopBell();
  }
}

function renderBell() {
  const seen = lastSeen();
  const unread = bell.alerts.filter((a) => changedAt(a) > seen).length;
  const count = $('#bell-count');
  count.hidden = unread === 0;
  count.textContent = unread > 9 ? '9+' : String(unread);
  const firing = bell.alerts.filter((a) => a.status === 'firing').length;
  $('#bell').title = `Alerts: ${unread} unread, ${firing} firing`;
  $('#bell').classList.toggle('firing', firing > 0);
  $('#bell-panel').replaceChildren(
    h('div', { class: 'bell-head' }, h('strong', {}, 'Alerts'), h('a', { href: `#/p/${bell.project}/alerts` }, 'History')),
    bell.alerts.length ? h('ul', { id: 'bell-list' }, bell.alerts.map((a) => h('li', { class: changedAt(a) > seen ? 'unread' : '' },
      h('div', {}, pill(a.status), ' ', h('strong', {}, a.rule_name)),
      h('div', { class: 'small' }, a.explanation),
      h('div', { class: 'muted small' }, a.status === 'resolved' ? `resolved ${when(a.resolved_at)} UTC` : `since ${when(a.started_at)} UTC`))))
      : h('p', { class: 'muted' }, 'No alerts yet.'));
}

$('#bell').addEventListener('click', (e) => {
  e.stopPropagation();
  const panel = $('#bell-panel');
  panel.hidden = !panel.hidden;
  $('#bell').setAttribute('aria-expanded', String(!panel.hidden));
  if (!panel.hidden) {
    renderBell(); // shows which are new, then marks them read
    if (bell.key) localStorage.setItem(bell.key, String(Math.max(Date.now(), ...bell.alerts.map(changedAt))));
    $('#bell-count').hidden = true;
  }
});
document.addEventListener('click', (e) => {
  if (!$('#bell-box').contains(e.target)) { $('#bell-panel').hidden = true; $('#bell').setAttribute('aria-expanded', 'false'); }
});
document.addEventListener('visibilitychange', () => { if (!document.hidden && bell.timer) pollBell(); });
addEventListener('hashchange', () => {
  $('#bell-panel').hidden = true;
  if (bell.timer) pollBell();
});
