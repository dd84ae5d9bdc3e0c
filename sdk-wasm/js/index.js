// @pulseline/browser: the public API. The Rust core (compiled to wasm, ./pulseline_glue)
// captures, batches, retries and buffers; this file adds what only a page knows: its context,
// its visibility, and its Web Vitals (Google's `web-vitals`, attribution build, imported from
// ./web-vitals.js only when they are on).
import initWasm, { Pulseline } from '../build/wasm/pulseline_glue.js'

/** The `track` event name every Web Vitals measurement is reported under. */
export const WEB_VITAL_EVENT = 'Web Vital'

/**
 * @typedef {object} InitOptions
 * @property {string} writeKey The project's write key (public; it can only send events).
 * @property {string} [host] The collector's origin, e.g. `https://collector.example.com`.
 *   Default: the origin this SDK was loaded from.
 * @property {boolean} [webVitals] Report LCP, INP, CLS, FCP and TTFB as `Web Vital` events.
 *   Default `true`.
 * @property {boolean} [page] Capture a `page` when `init` resolves. Default `true` under the
 *   loader snippet, `false` for `init()` called directly.
 * @property {number} [flushInterval] Longest wait, in ms, before a captured message is sent.
 *   Default 500.
 * @property {number} [requestTimeout] Timeout of each request, in ms. Default 10000.
 * @property {string | URL | BufferSource | WebAssembly.Module} [wasm] Where to load the
 *   WebAssembly from. Default: `pulseline_bg.wasm` next to this module.
 */

/** @typedef {Record<string, unknown>} Properties */

/**
 * A started SDK: every method captures without waiting for the network and never throws
 * because the network is down.
 */
export class Client {
  /** @type {Pulseline} */
  #core

  /**
   * Use `init()`.
   * @internal
   * @param {any} core
   */
  constructor(core) {
    this.#core = core
  }

  /** The visitor's persistent anonymous id (kept in `localStorage`). */
  get anonymousId() {
    return this.#core.anonymousId
  }

  /** The user id given to `identify`, if any (kept in `localStorage`). */
  get userId() {
    return this.#core.userId ?? undefined
  }

  /**
   * Records that the visitor did `event`. Returns the message id, or `undefined` when the
   * message was invalid (the reason is logged with `console.warn`).
   * @param {string} event
   * @param {Properties} [properties]
   * @returns {string | undefined}
   */
  track(event, properties) {
    return this.#capture(() => this.#core.track(event, json(properties)))
  }

  /**
   * Records a page view (with the page's url, path, referrer and title in its properties).
   * @param {string} [name]
   * @param {Properties} [properties]
   * @returns {string | undefined}
   */
  page(name, properties) {
    const page = {
      url: location.href,
      path: location.pathname,
      referrer: document.referrer,
      title: document.title,
      search: location.search,
      ...properties,
    }
    return this.#capture(() => this.#core.page(name, json(page)))
  }

  /**
   * Links this visitor to `userId` (kept for later page loads) and records `traits`.
   * @param {string} userId
   * @param {Properties} [traits]
   * @returns {string | undefined}
   */
  identify(userId, traits) {
    return this.#capture(() => this.#core.identify(String(userId), json(traits)))
  }

  /** Forgets the user id and starts a new anonymous visitor (call on logout). */
  reset() {
    this.#core.reset()
  }

  /**
   * Sends everything captured so far. Resolves to `true` once the collector has stored it,
   * `false` if `timeout` ms passed first (delivery goes on in the background).
   * @param {number} [timeout]
   * @returns {Promise<boolean>}
   */
  flush(timeout = 10_000) {
    return this.#core.flush(timeout)
  }

  /**
   * @param {() => string} capture
   * @returns {string | undefined}
   */
  #capture(capture) {
    try {
      setPage(this.#core)
      return capture()
    } catch (error) {
      console.warn('pulseline:', error instanceof Error ? error.message : error)
      return undefined
    }
  }
}

/** @param {unknown} value */
function json(value) {
  return value === undefined || value === null ? undefined : JSON.stringify(value)
}

/**
 * The Segment `context` of every message (where the visitor is and with what browser), handed
 * to the core field by field.
 * @param {Pulseline} core
 */
function setPage(core) {
  core.setPage(location.href, location.pathname, document.referrer, document.title, location.search,
    navigator.userAgent, navigator.language, screen.width, screen.height, devicePixelRatio)
}

const here = new URL(import.meta.url)

/**
 * Starts the SDK: loads the WebAssembly core, sends what earlier page loads left in the
 * offline buffer, and starts Web Vitals reporting unless `webVitals: false`.
 * @param {InitOptions} options
 * @returns {Promise<Client>}
 */
export async function init(options) {
  if (!options || typeof options.writeKey !== 'string' || options.writeKey === '') {
    throw new Error('init needs { writeKey }: the project write key shown by the collector')
  }
  // Fetched alongside the wasm, not after it; a separate module so `webVitals: false` skips it.
  const vitals = options.webVitals === false ? undefined : import('./web-vitals.js')
  await initWasm({ module_or_path: options.wasm ?? new URL('pulseline_bg.wasm', here) })
  const host = (options.host ?? here.origin).replace(/\/+$/, '')
  const core = new Pulseline(options.writeKey, host, options.flushInterval ?? 500, options.requestTimeout ?? 10_000)
  const client = new Client(core)
  /** @param {boolean} hidden */
  const visibility = (hidden) => {
    // While hidden, batches leave by sendBeacon, which survives the page being closed.
    core.setPageHidden(hidden)
    if (hidden) void core.flush(10_000)
  }
  // On `window`, so these run after `web-vitals`' own listeners on `document` have reported.
  addEventListener('visibilitychange', () => visibility(document.visibilityState === 'hidden'))
  addEventListener('pagehide', () => visibility(true))
  addEventListener('pageshow', () => visibility(false))
  if (options.page) client.page()
  if (vitals) {
    vitals.then((webVitals) => reportWebVitals(client, webVitals), (error) => {
      console.warn('pulseline: could not load Web Vitals (web-vitals.js):', error)
    })
  }
  void core.replayOfflineBuffer()
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

// Under the loader snippet: start with its settings, replay the calls it queued (an early
// `identify` applies to the first page view), then record the page view.
const stub = /** @type {any} */ (globalThis).pulseline
if (stub && Array.isArray(stub.q) && !stub.client) {
  stub.client = init({ ...stub.config, page: false }).then((client) => {
    for (const [method, args] of stub.q.splice(0)) /** @type {any} */ (client)[method](...args)
    for (const method of ['track', 'page', 'identify', 'flush', 'reset']) {
      stub[method] = (/** @type {any[]} */ ...args) => /** @type {any} */ (client)[method](...args)
    }
    if (stub.config.page !== false) client.page()
    return client
  }, (error) => {
    console.warn('pulseline: could not start:', error)
    throw error
  })
}
