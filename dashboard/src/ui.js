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
    throw err;
  }
  return data;
}

export const fmt = (n) => n == null ? '–' : Number(n).toLocaleString(undefined, { maximumFractionDigits: 2 });
export const pct = (x) => `${(x * 100).toFixed(1)}%`;
export const iso = (ms) => new Date(ms).toISOString().replace('T', ' ').slice(0, 16);
export const cssVar = (name) => getComputedStyle(document.documentElement).getPropertyValue(name).trim();

export function card(title, ...body) {
  return h('section', { class: 'card' }, title ? h('h2', {}, title) : '', ...body);
}

export function errorBox(e) {
  return h('p', { class: 'error', role: 'alert' }, e.message);
}
