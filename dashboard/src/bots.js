// The bot toggle every analytics page shares (docs/dashboard.md, "Bots"): bot events are left
// out unless the page's URL asks for them with `bots=1`, kept in the hash so a link reproduces
// the view. A note says how many were left out (or are included), with a link to the other view.
// Shared pages always leave bots out (docs/sharing.md).
import { fmt, h } from '/assets/ui.js';

// Whether the current page counts bots in.
export function wantBots(project) {
  if (project.shared) return false;
  return new URLSearchParams(location.hash.split('?')[1] || '').get('bots') === '1';
}

// The current page's hash with the toggle flipped, its other parameters kept.
function toggled(bots) {
  const [path, query = ''] = location.hash.split('?');
  const q = new URLSearchParams(query);
  if (bots) q.delete('bots'); else q.set('bots', '1');
  const s = q.toString();
  return s ? `${path}?${s}` : path;
}

// The note for `count` bot events over `span` (e.g. "in the last 30 days"); nothing when none.
export function botNote(project, bots, count, span) {
  if (!count) return '';
  const what = `${fmt(count)} ${count === 1 ? 'event' : 'events'} from bots`;
  return h('p', { class: 'muted', id: 'bot-note' },
    bots ? `Including ${what} ${span}. ` : `${what} ${span} left out. `,
    project.shared ? '' : h('a', { href: toggled(bots) }, bots ? 'Leave them out' : 'Show them'));
}
