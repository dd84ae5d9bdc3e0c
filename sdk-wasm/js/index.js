// @pulseline/browser: the public API. The Rust core (compiled to wasm, ./pulseline_glue)
// captures, batches, retries and buffers; this file adds what only a page knows: its context
// and campaign, its navigations and link clicks, its visibility, the visitor's privacy choices,
// and its Web Vitals (Google's `web-vitals`, attribution build, imported from ./web-vitals.js
// only when they are on).
import initWasm, { Pulseline } from '../build/wasm/pulseline_glue.js'
import { toJson } from './convert.js'

/** The `track` event name every Web Vitals measurement is reported under. */
export const WEB_VITAL_EVENT = 'Web Vital'

/** The `track` event of a click on a link to another host (`trackOutboundLinks`). */
export const OUTBOUND_LINK_EVENT = 'Outbound Link: Click'

/** The `track` event of a click on a link to a file (`trackFileDownloads`). */
export const FILE_DOWNLOAD_EVENT = 'File Download'

/**
 * The file extensions `trackFileDownloads: true` counts (Plausible's list).
 * @type {readonly string[]}
 */
export const FILE_DOWNLOAD_EXTENSIONS = Object.freeze(('pdf xlsx docx txt rtf csv exe key pps ppt pptx 7z ' +
  'pkg rar gz zip avi mov mp4 mpeg wmv midi mp3 wav wma dmg').split(' '))

/**
 * Most messages kept in memory while consent is pending; later ones are dropped (with one
 * `console.warn`) until `grantConsent()` or `denyConsent()`.
 */
export const CONSENT_QUEUE_MAX = 100

/**
 * @typedef {object} InitOptions
 * @property {string} writeKey The project's write key (public; it can only send events).
 * @property {string} [host] The collector's origin, e.g. `https://collector.example.com`.
 *   Default: the origin this SDK was loaded from.
 * @property {'history' | 'load' | false} [trackPageViews] Automatic page views: `'history'`
 *   (default) records the first load and every client-side navigation (`pushState`,
 *   `replaceState` and back/forward that change the path); `'load'` only the first load;
 *   `false` none (call `page()` yourself).
 * @property {boolean} [trackHashChanges] With `trackPageViews: 'history'`, a change of
 *   `location.hash` is a new page too (hash routers). Default `false`.
 * @property {boolean} [trackOutboundLinks] Record `Outbound Link: Click` (property `url`) on
 *   clicks on links to another host. Default `false`.
 * @property {boolean | string[]} [trackFileDownloads] Record `File Download` (property `url`,
 *   without the query) on clicks on links to files: `true` for `FILE_DOWNLOAD_EXTENSIONS`, or
 *   your own list of extensions. Default `false`.
 * @property {'granted' | 'pending' | 'denied'} [consent] `'pending'`: messages wait in memory
 *   (at most `CONSENT_QUEUE_MAX`) and nothing is sent or stored on the device until
 *   `grantConsent()`; `denyConsent()` drops them. `'denied'`: nothing is captured until
 *   `grantConsent()`. Default `'granted'`.
 * @property {boolean} [cookieless] Store nothing on the device: no `anonymousId` (the collector
 *   derives a visitor id that changes daily), no offline buffer, the campaign kept in memory
 *   only. Default `false`.
 * @property {boolean} [respectGpc] Treat a browser sending Global Privacy Control
 *   (`navigator.globalPrivacyControl`) as opted out, until the visitor calls `optIn()`.
 *   Default `true`.
 * @property {boolean} [respectDnt] Treat Do Not Track (`navigator.doNotTrack === '1'`) as opted
 *   out, until `optIn()`. Default `false`.
 * @property {boolean} [webVitals] Report LCP, INP, CLS, FCP and TTFB as `Web Vital` events.
 *   Default `true`.
 * @property {number} [flushInterval] Longest wait, in ms, before a captured message is sent.
 *   Default 500.
 * @property {number} [requestTimeout] Timeout of each request, in ms. Default 10000.
 * @property {string | URL | BufferSource | WebAssembly.Module} [wasm] Where to load the
 *   WebAssembly from. Default: `pulseline_bg.wasm` next to this module.
 */

/** @typedef {Record<string, unknown>} Properties */

const PREFIX = 'pulseline:'
const OPT_OUT_KEY = PREFIX + 'optOut'
const CAMPAIGN_KEY = PREFIX + 'campaign'
/** Segment's `context.campaign` names, by UTM parameter. */
const CAMPAIGN = [['source', 'utm_source'], ['medium', 'utm_medium'], ['name', 'utm_campaign'],
  ['term', 'utm_term'], ['content', 'utm_content']]

/**
 * `localStorage` or `sessionStorage` if the page may use it (blocked storage throws).
 * @param {'localStorage' | 'sessionStorage'} name
 * @returns {Storage | undefined}
 */
function storage(name) {
  try {
    return globalThis[name]
  } catch {
    return undefined
  }
}

/**
 * @param {'localStorage' | 'sessionStorage'} name
 * @param {string} key
 * @param {string} [value] removes the key when absent
 */
function store(name, key, value) {
  try {
    const s = storage(name)
    value === undefined ? s?.removeItem(key) : s?.setItem(key, value)
  } catch {
    // Full or blocked: the value still holds for this page.
  }
}

/**
 * A started SDK: every method captures without waiting for the network and never throws
 * because the network is down.
 */
export class Client {
  /** @type {Pulseline | undefined} created once sending is allowed */
  #core
  /** @type {() => Pulseline} */
  #open
  /** @type {'granted' | 'pending' | 'denied'} */
  #consent
  /** @type {boolean} */
  #optedOut
  /** @type {boolean} */
  #cookieless
  /** @type {[string, unknown[], string, number][]} captures waiting for consent */
  #queue = []
  #full = false
  #referrer = document.referrer
  /** @type {Record<string, string> | undefined} the session's UTM parameters */
  #campaign

  /**
   * Use `init()`.
   * @internal
   * @param {any} setup `{ options, open, before }`: the options, the core's constructor, and
   *   what runs before the first page view (the loader's queued calls)
   */
  constructor({ options, open, before }) {
    this.#open = open
    this.#consent = options.consent ?? 'granted'
    this.#cookieless = options.cookieless === true
    const choice = storage('localStorage')?.getItem(OPT_OUT_KEY)
    const nav = /** @type {any} */ (navigator)
    this.#optedOut = choice ? choice === '1'
      : (options.respectGpc !== false && nav.globalPrivacyControl === true) ||
        (options.respectDnt === true && nav.doNotTrack === '1')
    try {
      const kept = JSON.parse(storage('sessionStorage')?.getItem(CAMPAIGN_KEY) ?? 'null')
      if (kept && typeof kept === 'object') this.#campaign = kept
    } catch {
      // Not ours or damaged: the next UTM link sets it again.
    }
    this.#readCampaign()
    this.#start()
    /** @param {boolean} hidden */
    const hide = (hidden) => {
      // While hidden, batches leave by sendBeacon, which survives the page being closed.
      this.#core?.setPageHidden(hidden)
      if (hidden) void this.#core?.flush(10_000)
    }
    // On `window`, so these run after `web-vitals`' own listeners on `document` have reported.
    addEventListener('visibilitychange', () => hide(document.visibilityState === 'hidden'))
    addEventListener('pagehide', () => hide(true))
    addEventListener('pageshow', () => hide(false))
    before?.(this)
    const pages = options.trackPageViews ?? 'history'
    if (pages) this.page()
    if (pages === 'history') this.#watchHistory(options.trackHashChanges === true)
    const files = options.trackFileDownloads
    if (options.trackOutboundLinks || files) {
      this.#watchLinks(options.trackOutboundLinks === true,
        files === true ? FILE_DOWNLOAD_EXTENSIONS : files ? files.map((/** @type {string} */ e) => e.toLowerCase()) : undefined)
    }
  }

  /** Whether the device's storage may be written: consent given and not cookieless. */
  get #mayStore() {
    return this.#consent === 'granted' && !this.#optedOut && !this.#cookieless
  }

  /** The visitor's persistent anonymous id (kept in `localStorage`); `undefined` in cookieless
   * mode, while opted out or before consent. */
  get anonymousId() {
    return this.#core?.anonymousId ?? undefined
  }

  /** The user id given to `identify`, if any (kept in `localStorage`, except in cookieless
   * mode). */
  get userId() {
    return this.#core?.userId ?? undefined
  }

  /**
   * Records that the visitor did `event`. Returns the message id, or `undefined` when nothing
   * was sent: the message was invalid (the reason is logged with `console.warn`), the visitor
   * opted out or denied consent, or consent is pending (the message waits for it).
   * @param {string} event
   * @param {Properties} [properties]
   * @returns {string | undefined}
   */
  track(event, properties) {
    return this.#capture('track', () => [event, toJson('properties', properties)])
  }

  /**
   * Records a page view (with the page's url, path, referrer, title and search in its
   * properties).
   * @param {string} [name]
   * @param {Properties} [properties]
   * @returns {string | undefined}
   */
  page(name, properties) {
    const page = { url: location.href, path: location.pathname, referrer: this.#referrer, title: document.title, search: location.search }
    // `{ ...page, ...properties }`, with every value of `properties` read (and refused, with its
    // path) inside the conversion.
    return this.#capture('page', () => [name, toJson('properties', properties, page)])
  }

  /**
   * Links this visitor to `userId` (kept for later page loads, except in cookieless mode) and
   * records `traits`.
   * @param {string} userId
   * @param {Properties} [traits]
   * @returns {string | undefined}
   */
  identify(userId, traits) {
    return this.#capture('identify', () => [String(userId), toJson('traits', traits)])
  }

  /**
   * Puts the visitor in a group (a company, team or account) with the group's `traits`.
   * @param {string} groupId
   * @param {Properties} [traits]
   * @returns {string | undefined}
   */
  group(groupId, traits) {
    return this.#capture('group', () => [String(groupId), toJson('traits', traits)])
  }

  /**
   * Declares that `previousId` (default: the current user id, else the anonymous id) and
   * `userId` are the same person.
   * @param {string} userId
   * @param {string} [previousId]
   * @returns {string | undefined}
   */
  alias(userId, previousId) {
    return this.#capture('alias', () => [String(userId), previousId == null ? undefined : String(previousId)])
  }

  /** Forgets the user id and starts a new anonymous visitor (call on logout). */
  reset() {
    this.#capture('reset', () => [])
  }

  /**
   * Sends everything captured so far. Resolves to `true` once the collector has stored it,
   * `false` if `timeout` ms passed first (delivery goes on in the background) or messages
   * are waiting for consent.
   * @param {number} [timeout]
   * @returns {Promise<boolean>}
   */
  flush(timeout = 10_000) {
    return this.#core ? this.#core.flush(timeout) : Promise.resolve(this.#queue.length === 0)
  }

  /**
   * The visitor opts out: nothing is captured or sent from now on, on this and later page
   * loads (the choice is kept in `localStorage`), and what the SDK kept on the device (ids,
   * campaign, offline buffer) is deleted.
   */
  optOut() {
    store('localStorage', OPT_OUT_KEY, '1')
    this.#optedOut = true
    this.#stop()
  }

  /** The visitor opts in (again), also over Global Privacy Control or Do Not Track; kept in
   * `localStorage`. */
  optIn() {
    store('localStorage', OPT_OUT_KEY, '0')
    this.#optedOut = false
    this.#start()
  }

  /** Consent given: the messages that waited for it are sent, and storage may be used. */
  grantConsent() {
    this.#consent = 'granted'
    this.#start()
  }

  /**
   * Consent refused or withdrawn: the messages waiting for it are dropped, nothing more is
   * captured, and what the SDK kept on the device is deleted.
   */
  denyConsent() {
    this.#consent = 'denied'
    this.#stop()
  }

  /** Creates the core once sending is allowed, then sends what waited for consent. */
  #start() {
    if (this.#consent !== 'granted' || this.#optedOut) return
    if (this.#mayStore && this.#campaign) store('sessionStorage', CAMPAIGN_KEY, JSON.stringify(this.#campaign))
    if (!this.#core) {
      this.#core = this.#open()
      void this.#core.replayOfflineBuffer()
    }
    for (const entry of this.#queue.splice(0)) this.#send(entry)
  }

  /** Drops what waits, stops sending and deletes what the SDK stored, except the opt-out. */
  #stop() {
    this.#queue = []
    this.#core = undefined
    for (const name of /** @type {const} */ (['localStorage', 'sessionStorage'])) {
      const s = storage(name)
      for (const key of Object.keys(s ?? {})) {
        if (key.startsWith(PREFIX) && key !== OPT_OUT_KEY) store(name, key)
      }
    }
  }

  /**
   * @param {string} method
   * @param {() => unknown[]} args
   * @returns {string | undefined}
   */
  #capture(method, args) {
    if (this.#optedOut || this.#consent === 'denied') return undefined
    try {
      /** @type {[string, unknown[], string, number]} */
      const entry = [method, args(), this.#context(), Date.now()]
      if (this.#consent === 'granted') return this.#send(entry)
      if (this.#queue.length < CONSENT_QUEUE_MAX) this.#queue.push(entry)
      else if (!this.#full) {
        this.#full = true
        console.warn(`pulseline: ${CONSENT_QUEUE_MAX} messages wait for consent (CONSENT_QUEUE_MAX); later ones are dropped`)
      }
    } catch (error) {
      console.warn('pulseline:', error instanceof Error ? error.message : error)
    }
    return undefined
  }

  /**
   * @param {[string, unknown[], string, number]} entry
   * @returns {string | undefined}
   */
  #send([method, args, context, at]) {
    try {
      return /** @type {any} */ (this.#core)[method](...args, context, at)
    } catch (error) {
      console.warn('pulseline:', error instanceof Error ? error.message : error)
      return undefined
    }
  }

  /**
   * The Segment `context` of a message (where the visitor is, with what browser, from which
   * campaign), as JSON text for the core.
   */
  #context() {
    return JSON.stringify({
      page: { url: location.href, path: location.pathname, referrer: this.#referrer, title: document.title, search: location.search },
      userAgent: navigator.userAgent,
      locale: navigator.language,
      screen: { width: screen.width, height: screen.height, density: devicePixelRatio },
      campaign: this.#campaign,
      // The collector derives a daily visitor id for a message with no id that says so.
      cookieless: this.#cookieless || undefined,
    })
  }

  /** A URL with UTM parameters starts a new campaign for the session. */
  #readCampaign() {
    const query = new URLSearchParams(location.search)
    /** @type {Record<string, string>} */
    const campaign = {}
    for (const [key, param] of CAMPAIGN) {
      const value = query.get(param)
      if (value) campaign[key] = value
    }
    if (Object.keys(campaign).length === 0) return
    this.#campaign = campaign
    if (this.#mayStore) store('sessionStorage', CAMPAIGN_KEY, JSON.stringify(campaign))
  }

  /**
   * Records a page on every client-side navigation that changes the path (and the hash with
   * `hash`); a change of the query or state only is the same page.
   * @param {boolean} hash
   */
  #watchHistory(hash) {
    const page = () => location.pathname + (hash ? location.hash : '')
    let last = page()
    let href = location.href
    const changed = () => {
      const previous = href
      href = location.href
      if (page() === last) return
      last = page()
      // As a full page load would report it: the page the visitor came from.
      this.#referrer = previous
      this.#readCampaign()
      this.page()
    }
    for (const name of /** @type {const} */ (['pushState', 'replaceState'])) {
      const original = history[name]
      history[name] = function (...args) {
        const result = original.apply(this, args)
        changed()
        return result
      }
    }
    addEventListener('popstate', changed)
    if (hash) addEventListener('hashchange', changed)
  }

  /**
   * Records clicks (and middle clicks) on links to another host, or to files.
   * @param {boolean} outbound
   * @param {readonly string[] | undefined} files
   */
  #watchLinks(outbound, files) {
    /** @param {MouseEvent} event */
    const clicked = (event) => {
      if (event.type === 'auxclick' && event.button !== 1) return
      const link = event.target instanceof Element ? event.target.closest('a[href]') : null
      if (!(link instanceof HTMLAnchorElement)) return
      const url = new URL(link.href)
      if (!/^https?:$/.test(url.protocol)) return
      const file = url.origin + url.pathname
      const extension = /\.([^./]+)$/.exec(url.pathname)?.[1].toLowerCase()
      if (outbound && url.host !== location.host) this.track(OUTBOUND_LINK_EVENT, { url: url.href })
      else if (files && extension && files.includes(extension)) this.track(FILE_DOWNLOAD_EVENT, { url: file })
    }
    // Capture phase: a handler that stops the event's propagation does not hide the click.
    document.addEventListener('click', clicked, true)
    document.addEventListener('auxclick', clicked, true)
  }

}

const here = new URL(import.meta.url)

/** What the loader snippet queues before the SDK has loaded (js/loader.js has the same list). */
const METHODS = ['track', 'page', 'identify', 'group', 'alias', 'flush', 'reset', 'optOut', 'optIn',
  'grantConsent', 'denyConsent']

/**
 * Starts the SDK: loads the WebAssembly core, sends what earlier page loads left in the
 * offline buffer, records page views (`trackPageViews`), and starts Web Vitals reporting
 * unless `webVitals: false`.
 * @param {InitOptions} options
 * @returns {Promise<Client>}
 */
export function init(options) {
  return start(options)
}

/**
 * @param {InitOptions} options
 * @param {(client: Client) => void} [before] runs before the first page view (the loader's
 *   queued calls)
 * @returns {Promise<Client>}
 */
async function start(options, before) {
  if (!options || typeof options.writeKey !== 'string' || options.writeKey === '') {
    throw new Error('init needs { writeKey }: the project write key shown by the collector')
  }
  const pages = options.trackPageViews ?? 'history'
  if (pages !== 'history' && pages !== 'load' && pages !== false) {
    throw new Error(`trackPageViews must be 'history', 'load' or false, not ${JSON.stringify(pages)}`)
  }
  if (!['granted', 'pending', 'denied', undefined].includes(options.consent)) {
    throw new Error(`consent must be 'granted', 'pending' or 'denied', not ${JSON.stringify(options.consent)}`)
  }
  const files = options.trackFileDownloads
  if (files !== undefined && typeof files !== 'boolean' && !Array.isArray(files)) {
    throw new Error(`trackFileDownloads must be true, false or a list of extensions like ['pdf', 'zip'], not ${JSON.stringify(files)}`)
  }
  // Fetched alongside the wasm, not after it; a separate module so `webVitals: false` skips it.
  const vitals = options.webVitals === false ? undefined : import('./web-vitals.js')
  await initWasm({ module_or_path: options.wasm ?? new URL('pulseline_bg.wasm', here) })
  const host = (options.host ?? here.origin).replace(/\/+$/, '')
  const open = () => new Pulseline(options.writeKey, host, options.flushInterval ?? 500,
    options.requestTimeout ?? 10_000, options.cookieless === true)
  const client = new Client({ options, open, before })
  if (vitals) {
    vitals.then((webVitals) => reportWebVitals(client, webVitals), (error) => {
      console.warn('pulseline: could not load Web Vitals (web-vitals.js):', error)
    })
  }
  return client
}

/**
 * @param {Client} client
 * @param {typeof import('./web-vitals.js')} webVitals
 */
function reportWebVitals(client, { onCLS, onFCP, onINP, onLCP, onTTFB }) {
  /** @param {import('web-vitals/attribution').MetricWithAttribution} metric */
  const report = (metric) => {
    client.track(WEB_VITAL_EVENT, {
      metric: metric.name,
      value: metric.value,
      rating: metric.rating,
      delta: metric.delta,
      id: metric.id,
      navigationType: metric.navigationType,
      path: location.pathname,
      attribution: attribution(metric),
    })
  }
  onLCP(report)
  onINP(report)
  onCLS(report)
  onFCP(report)
  onTTFB(report)
}

/**
 * The attribution fields worth aggregating: which element or URL, and the phase breakdown.
 * @param {import('web-vitals/attribution').MetricWithAttribution} metric
 * @returns {Record<string, string | number | undefined>}
 */
function attribution(metric) {
  switch (metric.name) {
    case 'LCP': {
      const a = metric.attribution
      return {
        element: a.target,
        url: a.url,
        timeToFirstByte: a.timeToFirstByte,
        resourceLoadDelay: a.resourceLoadDelay,
        resourceLoadDuration: a.resourceLoadDuration,
        elementRenderDelay: a.elementRenderDelay,
      }
    }
    case 'INP': {
      const a = metric.attribution
      return {
        element: a.interactionTarget,
        interactionType: a.interactionType,
        inputDelay: a.inputDelay,
        processingDuration: a.processingDuration,
        presentationDelay: a.presentationDelay,
        loadState: a.loadState,
      }
    }
    case 'CLS': {
      const a = metric.attribution
      return { element: a.largestShiftTarget, largestShiftValue: a.largestShiftValue, loadState: a.loadState }
    }
    case 'FCP': {
      const a = metric.attribution
      return { timeToFirstByte: a.timeToFirstByte, firstByteToFCP: a.firstByteToFCP, loadState: a.loadState }
    }
    case 'TTFB': {
      const a = metric.attribution
      return {
        waitingDuration: a.waitingDuration,
        cacheDuration: a.cacheDuration,
        dnsDuration: a.dnsDuration,
        connectionDuration: a.connectionDuration,
        requestDuration: a.requestDuration,
      }
    }
    default:
      return {}
  }
}

// Under the loader snippet: start with its settings (`pulseline.config`), replay the calls it
// queued (an early `identify` or `grantConsent` applies to the first page view), then record
// the page view.
const stub = /** @type {any} */ (globalThis).pulseline
if (stub && Array.isArray(stub.q) && !stub.client) {
  stub.client = start(stub.config, (client) => {
    for (const [method, args] of stub.q.splice(0)) /** @type {any} */ (client)[method](...args)
    for (const method of METHODS) {
      stub[method] = (/** @type {any[]} */ ...args) => /** @type {any} */ (client)[method](...args)
    }
  }).catch((error) => {
    console.warn('pulseline: could not start:', error)
    throw error
  })
}
