/**
 * Starts the SDK: loads the WebAssembly core, sends what earlier page loads left in the
 * offline buffer, and starts Web Vitals reporting unless `webVitals: false`.
 * @param {InitOptions} options
 * @returns {Promise<Client>}
 */
export function init(options: InitOptions): Promise<Client>;
/** The `track` event name every Web Vitals measurement is reported under. */
export const WEB_VITAL_EVENT: "Web Vital";
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
    /**
     * Use `init()`.
     * @internal
     * @param {any} core
     */
    constructor(core: any);
    /** The visitor's persistent anonymous id (kept in `localStorage`). */
    get anonymousId(): string;
    /** The user id given to `identify`, if any (kept in `localStorage`). */
    get userId(): string | undefined;
    /**
     * Records that the visitor did `event`. Returns the message id, or `undefined` when the
     * message was invalid (the reason is logged with `console.warn`).
     * @param {string} event
     * @param {Properties} [properties]
     * @returns {string | undefined}
     */
    track(event: string, properties?: Properties): string | undefined;
    /**
     * Records a page view (with the page's url, path, referrer and title in its properties).
     * @param {string} [name]
     * @param {Properties} [properties]
     * @returns {string | undefined}
     */
    page(name?: string, properties?: Properties): string | undefined;
    /**
     * Links this visitor to `userId` (kept for later page loads) and records `traits`.
     * @param {string} userId
     * @param {Properties} [traits]
     * @returns {string | undefined}
     */
    identify(userId: string, traits?: Properties): string | undefined;
    /** Forgets the user id and starts a new anonymous visitor (call on logout). */
    reset(): void;
    /**
     * Sends everything captured so far. Resolves to `true` once the collector has stored it,
     * `false` if `timeout` ms passed first (delivery goes on in the background).
     * @param {number} [timeout]
     * @returns {Promise<boolean>}
     */
    flush(timeout?: number): Promise<boolean>;
    #private;
}
export type InitOptions = {
    /**
     * The project's write key (public; it can only send events).
     */
    writeKey: string;
    /**
     * The collector's origin, e.g. `https://collector.example.com`.
     * Default: the origin this SDK was loaded from.
     */
    host?: string | undefined;
    /**
     * Report LCP, INP, CLS, FCP and TTFB as `Web Vital` events.
     * Default `true`.
     */
    webVitals?: boolean | undefined;
    /**
     * Capture a `page` when `init` resolves. Default `true` under the
     * loader snippet, `false` for `init()` called directly.
     */
    page?: boolean | undefined;
    /**
     * Longest wait, in ms, before a captured message is sent.
     * Default 500.
     */
    flushInterval?: number | undefined;
    /**
     * Timeout of each request, in ms. Default 10000.
     */
    requestTimeout?: number | undefined;
    /**
     * Where to load the
     * WebAssembly from. Default: `pulseline_bg.wasm` next to this module.
     */
    wasm?: string | URL | BufferSource | WebAssembly.Module | undefined;
};
export type Properties = Record<string, unknown>;
