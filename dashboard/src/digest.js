// The weekly digest page (docs/digest.md): your own opt-in, the project's Discord/Slack channel
// for it (developers and above), and "send me a preview now". The server checks every change.
import { api, card, errorBox, h, iso } from '/assets/ui.js';

export async function digest(project) {
  const main = document.querySelector('#main');
  const base = `/api/dash/projects/${project.id}/digest`;
  let view = await api(base);
  const status = h('p', { class: 'muted', id: 'digest-status', role: 'status' });
  const fail = (e) => status.replaceChildren(errorBox(e));

  const toggle = h('input', { type: 'checkbox', id: 'digest-subscribed', checked: view.subscribed,
    onchange: async (e) => {
      try {
        view = await api(base, { method: 'POST', body: { subscribed: e.target.checked } });
        status.textContent = view.subscribed
          ? 'You will get the digest every Monday (project time zone).'
          : 'You will not get the digest.';
      } catch (err) { e.target.checked = !e.target.checked; fail(err); }
    } });

  const channelPicker = view.channels.length ? h('p', {}, h('label', { for: 'digest-channel' }, 'Also post it to '),
    h('select', { id: 'digest-channel', onchange: async (e) => {
      const id = e.target.value === '' ? null : Number(e.target.value);
      try {
        view = await api(`${base}/channel`, { method: 'POST', body: { channel_id: id } });
        status.textContent = id === null ? 'No channel gets the digest.' : 'The channel will get the digest.';
      } catch (err) { fail(err); }
    } },
    h('option', { value: '' }, 'no channel'),
    view.channels.map((c) => h('option', { value: c.id, selected: c.id === view.channel_id }, `${c.name} (${c.kind})`))))
    : h('p', { class: 'muted' }, view.channel_id != null
      ? 'A channel of this project also gets the digest.'
      : ['owner', 'admin', 'developer'].includes(project.role)
        ? 'No channel gets the digest: add a Discord or Slack channel under Alerts → Channels to pick it here.'
        : 'No channel gets the digest. A developer or above can pick a Discord or Slack channel here.');

  const preview = h('button', { type: 'button', id: 'digest-preview', disabled: !view.email_configured,
    onclick: async () => {
      preview.disabled = true;
      try {
        const sent = await api(`${base}/preview`, { method: 'POST' });
        status.textContent = `Preview of ${iso(sent.week_start)} – ${iso(sent.week_end)} sent to ${sent.sent_to}.`;
      } catch (err) { fail(err); } finally { preview.disabled = false; }
    } }, 'Send me a preview now');

  main.replaceChildren(h('h1', {}, `${project.name}: Weekly digest`), card('Weekly digest',
    h('p', {}, 'Every Monday after midnight in the project’s time zone: the past week against the week before — ',
      'events, active users, top events and pages, Web Vitals, alerts and quota use.'),
    h('p', {}, toggle, h('label', { for: 'digest-subscribed' }, ' E-mail me the weekly digest of this project')),
    channelPicker,
    h('p', {}, preview, h('span', { class: 'muted' },
      view.email_configured
        ? ` Only you get it; at most ${view.previews_per_hour} per hour.`
        : ' This collector has no SMTP server (PULSELINE_SMTP_URL), so no e-mail can be sent.')),
    status));
}
