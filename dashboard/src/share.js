// Shared, read-only pages (docs/sharing.md). Two halves:
// - startShare: the page at /s/{token}, logged out: the overview, Web Vitals or Web page drawn
//   by the dashboard's own renderers against /s/{token}/api, with no navigation, keys, members
//   or live tail; a password form first when the link has one.
// - sharesPage: the "Share" page where admins publish, list and revoke links.
import { $, api, card, errorBox, h, iso, loadInto, setHeader } from '/assets/ui.js';

const PAGE_LABELS = { overview: 'Overview', vitals: 'Web Vitals', web: 'Web' };
// A shared page often stays open on a wall screen or a status page: it reloads its data this
// often, and so also learns within a minute that the link was revoked.
const REFRESH_MS = 60000;

export const isSharedPage = () => location.pathname.startsWith('/s/');

// ---- the shared page ---------------------------------------------------------------------
export async function startShare(renderers) {
  const main = $('#main');
  const token = location.pathname.split('/')[2];
  const base = `/s/${token}/api`;
  // The unlock lives in this tab only; a header, so no cookie reaches an embedding site.
  const key = `share-unlock-${token}`;
  const saved = sessionStorage.getItem(key);
  if (saved) setHeader('x-share-unlock', saved);
  const gone = (e) => main.replaceChildren(card('Shared page', h('p', { class: 'error', id: 'share-gone', role: 'alert' },
    e.status === 404 ? 'This shared page does not exist or was revoked.' : e.message)));

  let about;
  try { about = await api(`${base}/share`); } catch (e) { gone(e); return; }
  if (!about.unlocked) {
    sessionStorage.removeItem(key);
    setHeader('x-share-unlock', null);
    passwordForm(main, base, async (unlock) => {
      sessionStorage.setItem(key, unlock);
      setHeader('x-share-unlock', unlock);
      await startShare(renderers);
    });
    return;
  }
  document.title = `${about.project_name} · ${PAGE_LABELS[about.page]} · Pulseline`;
  const project = { id: 'shared', name: about.project_name, api: base, shared: true };
  const banner = h('div', { class: 'shared-bar', id: 'shared-bar' },
    h('strong', {}, about.project_name), ` · ${PAGE_LABELS[about.page]} · read-only shared page`);
  let revoked = false;
  const render = async () => {
    if (revoked) return;
    // A busy server is waited out as in the dashboard; a revoked link ends the page.
    await loadInto(main, async () => {
      await renderers[about.page](project, null);
      main.prepend(banner);
    }, { fail: (e, again) => {
      revoked = e.status === 404;
      if (revoked) gone(e); else main.replaceChildren(card('Shared page', errorBox(e, again)));
    } }).catch((e) => gone(e));
  };
  // The Web page keeps its filters in the hash, as in the dashboard.
  addEventListener('hashchange', render);
  await render();
  setInterval(() => { if (!document.hidden) render(); }, REFRESH_MS);
}

function passwordForm(main, base, onUnlock) {
  const err = h('p', { class: 'error', role: 'alert' });
  const password = h('input', { type: 'password', name: 'password', autocomplete: 'current-password', required: true });
  const form = h('form', { id: 'share-password', onsubmit: async (e) => {
    e.preventDefault();
    try {
      const r = await api(`${base}/unlock`, { method: 'POST', body: { password: password.value } });
      await onUnlock(r.unlock);
    } catch (x) { err.textContent = x.message; }
  } }, h('label', {}, 'Password', password), h('button', { type: 'submit' }, 'Open'), err);
  main.replaceChildren(h('div', { class: 'card login' }, h('h1', {}, 'Shared page'),
    h('p', { class: 'muted' }, 'This page is protected by a password. Ask whoever shared it.'), form));
}

// ---- publishing (admins) -----------------------------------------------------------------
function copyButton(text) {
  const b = h('button', { type: 'button', class: 'ghost copy', onclick: async () => {
    try { await navigator.clipboard.writeText(text); b.textContent = 'Copied'; } catch { b.textContent = 'Select and copy'; }
  } }, 'Copy link');
  return b;
}

export async function sharesPage(project) {
  const main = $('#main');
  if (!['owner', 'admin'].includes(project.role)) {
    main.replaceChildren(h('h1', {}, 'Share'), card(null, h('p', {}, 'Publishing read-only links needs the admin or owner role in this project.')));
    return;
  }
  const base = `/api/dash/projects/${project.id}/shares`;
  const list = await api(base);
  const fresh = h('div', { id: 'fresh-share' });
  const err = h('p', { class: 'error' });
  const page = h('select', { name: 'page' }, ...Object.entries(PAGE_LABELS).map(([v, l]) => h('option', { value: v }, l)));
  const password = h('input', { type: 'password', name: 'password', autocomplete: 'new-password', placeholder: 'none', minlength: 10 });
  const origins = h('input', { name: 'origins', size: 40, placeholder: 'https://status.example.com (space-separated)' });
  const publish = async (e) => {
    e.preventDefault();
    err.textContent = '';
    const body = { page: page.value, origins: origins.value.split(/\s+/).filter(Boolean) };
    if (password.value) body.password = password.value;
    try {
      const s = await api(base, { method: 'POST', body });
      await sharesPage(project);
      const url = `${location.origin}${s.path}`;
      $('#fresh-share').replaceChildren(h('div', { class: 'secret' },
        h('p', {}, h('strong', {}, 'Your new link — shown once. Copy it now.'), ' Only its hash is kept: if it is lost, revoke it and publish another.'),
        h('p', {}, h('code', { class: 'key', id: 'share-link' }, url), ' ', copyButton(url)),
        s.origins.length ? h('p', {}, 'Embed: ', h('code', {}, `<iframe src="${url}" width="100%" height="800"></iframe>`)) : ''));
    } catch (x) { err.textContent = x.message; }
  };
  const revoke = (s) => h('button', { type: 'button', class: 'danger', onclick: async () => {
    if (!confirm(`Revoke the ${PAGE_LABELS[s.page]} link ${s.prefix}…? It stops working at once.`)) return;
    try { await api(`${base}/${s.id}`, { method: 'DELETE' }); await sharesPage(project); } catch (x) { alert(x.message); }
  } }, 'Revoke');
  main.replaceChildren(h('h1', {}, 'Share'),
    h('p', { class: 'muted' }, 'Publish the overview, Web Vitals or Web page as a read-only link that works without logging in: for a status page or a client. It shows that page only — never keys, members, raw events or other pages.'),
    h('form', { class: 'row', id: 'share-form', onsubmit: publish },
      h('label', {}, 'Page', page), h('label', {}, 'Password (optional, 10+ characters)', password),
      h('label', {}, 'May be embedded on (origins)', origins), h('button', { type: 'submit' }, 'Publish')),
    err, fresh,
    card('Published links', list.length ? h('div', { class: 'scroll' }, h('table', { id: 'shares-table' },
      h('thead', {}, h('tr', {}, h('th', {}, 'Page'), h('th', {}, 'Link'), h('th', {}, 'Password'), h('th', {}, 'Embeddable on'),
        h('th', {}, 'Published by'), h('th', {}, 'Published (UTC)'), h('th', {}, ''))),
      h('tbody', {}, list.map((s) => h('tr', { 'data-share-id': s.id }, h('td', {}, PAGE_LABELS[s.page]), h('td', {}, h('code', {}, `/s/${s.prefix}…`)),
        h('td', {}, s.password ? 'yes' : 'no'), h('td', {}, s.origins.join(' ') || '–'), h('td', {}, s.created_by || '–'),
        h('td', {}, iso(Date.parse(s.created_at))), h('td', {}, revoke(s)))))))
      : h('p', { class: 'muted' }, 'None yet.')),
    card(null, h('p', { class: 'muted' }, 'Revoking stops a link at once, also in pages already open. Limits: 20 links per project, 10 origins per link, 5 password attempts a minute per link.')));
}

