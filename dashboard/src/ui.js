// Helpers shared by the dashboard's pages: DOM building, the JSON API (with the session's CSRF
// token on every change), formatting and theme colours.

export const DAY = 86400000, HOUR = 3600000;
export const $ = (sel, root = document) => root.querySelector(sel);

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'style') el.style.cssText = v; // CSSOM: allowed by the CSP, unlike style=
    else if (v !== undefined && v !== null && v !== false) el.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children.flat()) el.append(c instanceof Node ? c : document.createTextNode(String(c ?? '')));
  return el;
}

let csrf = null;
/// The session's CSRF token, sent with every change (null when logged out).
export function setCsrf(token) { csrf = token; }

const extraHeaders = {};
/// A header sent with every request (a shared page's unlock token); null removes it.
export function setHeader(name, value) {
  if (value == null) delete extraHeaders[name]; else extraHeaders[name] = value;
}

/// JSON.parse keeping the digits of each number a double would change (1.10, 2**100): such a
/// number becomes JSON.rawJSON, which JSON.stringify writes back as sent. Browsers without
/// JSON.rawJSON get plain JSON.parse.
export function parseExact(text) {
  if (typeof JSON.rawJSON !== 'function') return JSON.parse(text);
  return JSON.parse(text, (_key, value, ctx) =>
    typeof value === 'number' && ctx?.source !== undefined && String(value) !== ctx.source
      ? JSON.rawJSON(ctx.source) : value);
}

/// Text of a value parseExact may have returned (a raw number has no string conversion).
export const plain = (v) => (JSON.isRawJSON?.(v) ? v.rawJSON : v);

export async function api(path, { method = 'GET', body, exact = false } = {}) {
  const headers = { ...extraHeaders };
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (method !== 'GET' && csrf) headers['x-csrf-token'] = csrf;
  const resp = await fetch(path, { method, headers, credentials: 'same-origin',
    body: body === undefined ? undefined : JSON.stringify(body) });
  const data = await (exact ? resp.text().then(parseExact) : resp.json()).catch(() => null);
  if (!resp.ok) {
    const err = new Error(data?.message || `HTTP ${resp.status}`);
    err.status = resp.status;
    err.code = data?.code;
    err.retryAfter = Number(resp.headers.get('retry-after')) || null;
    throw err;
  }
  return data;
}

/// How many times a card asks a busy server (503 `overloaded`) again by itself.
export const BUSY_RETRIES = 3;

/// Runs `load`, which fills `box`. A busy server (503 `overloaded`) is asked again after its
/// Retry-After, at most BUSY_RETRIES times, the box counting down; any other error, or the
/// last refusal, shows in the box with a "Try again" button. A query over its time budget
/// (503 `query_timeout`) is not asked again by itself: the same query would run out again,
/// and the message says what helps (a shorter range, fewer filters). A 401 is thrown, for
/// the page to log in again. Nothing more happens once `wanted()` is false (another page).
/// `fail(error, again)` shows the error instead, for a page with its own error view.
export async function loadInto(box, load, {
  wanted = () => box.isConnected,
  fail = (e, again) => box.replaceChildren(errorBox(e, again)),
} = {}) {
  for (let retries = 0; ; retries++) {
    try { return await load(); } catch (e) {
      if (e.status === 401) throw e;
      if (!wanted()) return undefined;
      if (e.code === 'overloaded' && retries < BUSY_RETRIES) {
        if (await busyWait(box, e.retryAfter || 2, wanted)) continue;
        return undefined;
      }
      fail(e, () => loadInto(box, load, { wanted, fail }).catch((x) => box.replaceChildren(errorBox(x))));
      return undefined;
    }
  }
}

/// Shows "retrying in n s…" in `box`, counting down; resolves true when it is time to ask
/// again, false if the box is no longer wanted.
function busyWait(box, seconds, wanted) {
  let left = seconds;
  const note = h('p', { class: 'muted busy', role: 'status' });
  const say = () => { note.textContent = `The server is busy; retrying in ${left} s…`; };
  say();
  box.replaceChildren(note);
  return new Promise((done) => {
    const timer = setInterval(() => {
      if (!wanted()) { clearInterval(timer); done(false); return; }
      left -= 1;
      if (left > 0) { say(); return; }
      clearInterval(timer);
      note.textContent = 'Retrying…';
      done(true);
    }, 1000);
  });
}

export const fmt = (n) => n == null ? '–' : Number(n).toLocaleString(undefined, { maximumFractionDigits: 2 });
export const pct = (x) => `${(x * 100).toFixed(1)}%`;
export const iso = (ms) => new Date(ms).toISOString().replace('T', ' ').slice(0, 16);
export const cssVar = (name) => getComputedStyle(document.documentElement).getPropertyValue(name).trim();

export function card(title, ...body) {
  return h('section', { class: 'card' }, title ? h('h2', {}, title) : '', ...body);
}

/// The error's message; with `retry`, a "Try again" button that calls it.
export function errorBox(e, retry) {
  const message = h('p', { class: 'error', role: 'alert' }, e.message);
  if (!retry) return message;
  return h('div', { class: 'load-failed' }, message,
    h('button', { type: 'button', class: 'ghost try-again', onclick: retry }, 'Try again'));
}
