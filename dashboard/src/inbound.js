// The Inbound webhooks page (docs/inbound-webhooks.md): the project's sources with the URL to
// paste into Stripe or GitHub and their latest delivery; developers and above create (a
// generated secret is shown once) and delete. A client of /api/dash/projects/{id}/inbound-sources.
import { $, api, card, errorBox, h, iso } from '/assets/ui.js';

const canChange = (project) => ['owner', 'admin', 'developer'].includes(project.role);
const HELP = {
  stripe: 'Stripe: Developers > Webhooks > Add endpoint, paste the URL, then paste its signing secret (whsec_…) here.',
  github: 'GitHub: Settings > Webhooks > Add webhook, paste the URL, content type application/json, and the same secret here.',
  generic: 'Any Standard Webhooks sender: leave the secret empty to have one generated (shown once), and say where the event name is.',
};

function copy(text, label = 'Copy') {
  const b = h('button', { type: 'button', class: 'ghost copy', onclick: async () => {
    try { await navigator.clipboard.writeText(text); b.textContent = 'Copied'; } catch { b.textContent = 'Select and copy'; }
  } }, label);
  return b;
}

function lastDelivery(d) {
  if (!d) return h('span', { class: 'muted' }, 'none yet');
  const ok = d.status === 200;
  return h('span', {}, h('span', { class: `pill ${ok ? 'ok' : 'bad'}` }, ok ? 'accepted' : `refused ${d.status}`),
    ` ${iso(Date.parse(d.at))}`, d.error ? h('div', { class: 'muted' }, d.error) : '');
}

export async function inbound(project) {
  const base = `/api/dash/projects/${project.id}/inbound-sources`;
  const { sources } = await api(base);
  const main = $('#main');
  const err = h('p', { class: 'error', role: 'alert', id: 'inbound-error' });
  const created = h('div', { id: 'inbound-created' });
  const rows = sources.map((s) => {
    const url = `${location.origin}${s.path}`;
    return h('tr', { 'data-id': s.id },
      h('td', {}, s.kind), h('td', {}, s.name),
      h('td', {}, h('code', { class: 'inbound-url' }, url), ' ', copy(url)),
      h('td', {}, s.kind === 'generic' ? `event: ${s.event_path}${s.user_path ? `, user: ${s.user_path}` : ''}` : ''),
      h('td', { class: 'last-delivery' }, lastDelivery(s.last_delivery)),
      h('td', {}, canChange(project) ? h('button', { type: 'button', class: 'ghost danger-text', onclick: async () => {
        if (!confirm(`Delete “${s.name}”? Its URL stops accepting deliveries at once.`)) return;
        try { await api(`${base}/${s.id}`, { method: 'DELETE' }); await inbound(project); } catch (e) { err.textContent = e.message; }
      } }, 'Delete') : ''));
  });
  const list = sources.length
    ? h('div', { class: 'scroll' }, h('table', { id: 'inbound-table' },
      h('thead', {}, h('tr', {}, ...['Kind', 'Name', 'Endpoint URL', 'Mapping', 'Latest delivery', ''].map((t) => h('th', {}, t)))),
      h('tbody', {}, rows)))
    : h('p', { class: 'muted' }, 'No sources yet.');
  main.replaceChildren(h('h1', {}, 'Inbound webhooks'),
    h('p', { class: 'muted' }, 'Deliveries from Stripe, GitHub or any Standard Webhooks sender become events of this project (signature checked, each stored once), counted against its quota.'),
    created, err, card('Sources', list), canChange(project) ? createForm(project, base, created, err)
      : h('p', { class: 'muted', id: 'read-only' }, `You are a ${project.role} here: a developer or above can add and delete sources.`));
}

function createForm(project, base, created, err) {
  const kind = h('select', { name: 'kind' }, ...['stripe', 'github', 'generic'].map((k) => h('option', { value: k }, k)));
  const name = h('input', { name: 'name', required: true, maxlength: 100, placeholder: 'Stripe live' });
  const secret = h('input', { name: 'secret', size: 40, autocomplete: 'off' });
  const eventPath = h('input', { name: 'event_path', placeholder: 'type' });
  const userPath = h('input', { name: 'user_path', placeholder: 'data.object.customer' });
  const generic = h('span', { class: 'row' }, h('label', {}, 'Event name at (JSON path)', eventPath), h('label', {}, 'User id at (optional)', userPath));
  const help = h('p', { class: 'muted' });
  const sync = () => { generic.hidden = kind.value !== 'generic'; help.textContent = HELP[kind.value]; };
  kind.addEventListener('change', sync);
  sync();
  const form = h('form', { id: 'inbound-form', class: 'row', onsubmit: async (e) => {
    e.preventDefault();
    err.textContent = '';
    const body = { kind: kind.value, name: name.value };
    if (secret.value.trim()) body.secret = secret.value.trim();
    if (kind.value === 'generic') {
      body.event_path = eventPath.value.trim();
      if (userPath.value.trim()) body.user_path = userPath.value.trim();
    }
    try {
      const s = await api(base, { method: 'POST', body });
      await inbound(project);
      const url = `${location.origin}${s.path}`;
      $('#inbound-created').replaceChildren(h('div', { class: 'secret' },
        h('p', {}, h('strong', {}, `“${s.name}” is ready.`), ' Give the service this URL: ', h('code', {}, url), ' ', copy(url)),
        s.signing_secret ? h('p', {}, h('strong', {}, 'Its signing secret — shown once. Copy it now: '),
          h('code', { id: 'inbound-secret' }, s.signing_secret), ' ', copy(s.signing_secret, 'Copy secret')) : ''));
    } catch (x) { err.textContent = x.message; }
  } }, h('label', {}, 'Kind', kind), h('label', {}, 'Name', name), h('label', {}, 'Signing secret', secret), generic,
  h('button', { type: 'submit' }, 'Add source'));
  return card('Add a source', help, form);
}
