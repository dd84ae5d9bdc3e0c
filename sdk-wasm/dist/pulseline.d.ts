/**
 * Starts the SDK: loads the WebAssembly core, sends what earlier page loads left in the
 * offline buffer, records page views (`trackPageViews`), and starts Web Vitals reporting
 * unless `webVitals: false`.
 * @param {InitOptions} options
 * @returns {Promise<Client>}
 */
export function init(options: InitOptions): Promise<Client>;
/** The `track` event name every Web Vitals measurement is reported under. */
export const WEB_VITAL_EVENT: "Web Vital";
/** The `track` event of a click on a link to another host (`trackOutboundLinks`). */
export const OUTBOUND_LINK_EVENT: "Outbound Link: Click";
/** The `track` event of a click on a link to a file (`trackFileDownloads`). */
export const FILE_DOWNLOAD_EVENT: "File Download";
/**
 * The file extensions `trackFileDownloads: true` counts (Plausible's list).
 * @type {readonly string[]}
 */
export const FILE_DOWNLOAD_EXTENSIONS: readonly string[];
/**
 * Most messages kept in memory while consent is pending; later ones are dropped (with one
 * `console.warn`) until `grantConsent()` or `denyConsent()`.
 */
export const CONSENT_QUEUE_MAX: 100;
/**
 * A started SDK: every method captures without waiting for the network and never throws
 * because the network is down.
 */
export class Client {
    /**
     * Use `init()`.
     * @internal
     * @param {any} setup `{ options, open, before }`: the options, the core's constructor, and
     *   what runs before the first page view (the loader's queued calls)
     */
    constructor({ options, open, before }: any);
    /** The visitor's persistent anonymous id (kept in `localStorage`); `undefined` in cookieless
     * mode, while opted out or before consent. */
    get anonymousId(): string | undefined;
    /** The user id given to `identify`, if any (kept in `localStorage`, except in cookieless
     * mode). */
    get userId(): string | undefined;
    /**
     * Records that the visitor did `event`. Returns the message id, or `undefined` when nothing
     * was sent: the message was invalid (the reason is logged with `console.warn`), the visitor
     * opted out or denied consent, or consent is pending (the message waits for it).
     * @param {string} event
     * @param {Properties} [properties]
     * @returns {string | undefined}
     */
    track(event: string, properties?: Properties): string | undefined;
    /**
     * Records a page view (with the page's url, path, referrer, title and search in its
     * properties).
     * @param {string} [name]
     * @param {Properties} [properties]
     * @returns {string | undefined}
     */
    page(name?: string, properties?: Properties): string | undefined;
    /**
     * Links this visitor to `userId` (kept for later page loads, except in cookieless mode) and
     * records `traits`.
     * @param {string} userId
     * @param {Properties} [traits]
     * @returns {string | undefined}
     */
    identify(userId: string, traits?: Properties): string | undefined;
    /**
     * Puts the visitor in a group (a company, team or account) with the group's `traits`.
     * @param {string} groupId
     * @param {Properties} [traits]
     * @returns {string | undefined}
     */
    group(groupId: string, traits?: Properties): string | undefined;
    /**
     * Declares that `previousId` (default: the current user id, else the anonymous id) and
     * `userId` are the same person.
     * @param {string} userId
     * @param {string} [previousId]
     * @returns {string | undefined}
     */
    alias(userId: string, previousId?: string): string | undefined;
    /** Forgets the user id and starts a new anonymous visitor (call on logout). */
    reset(): void;
    /**
     * Sends everything captured so far. Resolves to `true` once the collector has stored it,
     * `false` if `timeout` ms passed first (delivery goes on in the background) or messages
     * are waiting for consent.
     * @param {number} [timeout]
     * @returns {Promise<boolean>}
     */
    flush(timeout?: number): Promise<boolean>;
    /**
     * The visitor opts out: nothing is captured or sent from now on, on this and later page
     * loads (the choice is kept in `localStorage`), and what the SDK kept on the device (ids,
     * campaign, offline buffer) is deleted.
     */
    optOut(): void;
    /** The visitor opts in (again), also over Global Privacy Control or Do Not Track; kept in
     * `localStorage`. */
    optIn(): void;
    /** Consent given: the messages that waited for it are sent, and storage may be used. */
    grantConsent(): void;
    /**
     * Consent refused or withdrawn: the messages waiting for it are dropped, nothing more is
     * captured, and what the SDK kept on the device is deleted.
     */
    denyConsent(): void;
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
     * Automatic page views: `'history'`
     * (default) records the first load and every client-side navigation (`pushState`,
     * `replaceState` and back/forward that change the path); `'load'` only the first load;
     * `false` none (call `page()` yourself).
     */
    trackPageViews?: false | "history" | "load" | undefined;
    /**
     * With `trackPageViews: 'history'`, a change of
     * `location.hash` is a new page too (hash routers). Default `false`.
     */
    trackHashChanges?: boolean | undefined;
    /**
     * Record `Outbound Link: Click` (property `url`) on
     * clicks on links to another host. Default `false`.
     */
    trackOutboundLinks?: boolean | undefined;
    /**
     * Record `File Download` (property `url`,
     * without the query) on clicks on links to files: `true` for `FILE_DOWNLOAD_EXTENSIONS`, or
     * your own list of extensions. Default `false`.
     */
    trackFileDownloads?: boolean | string[] | undefined;
    /**
     * `'pending'`: messages wait in memory
     * (at most `CONSENT_QUEUE_MAX`) and nothing is sent or stored on the device until
     * `grantConsent()`; `denyConsent()` drops them. `'denied'`: nothing is captured until
     * `grantConsent()`. Default `'granted'`.
     */
    consent?: "granted" | "pending" | "denied" | undefined;
    /**
     * Store nothing on the device: no `anonymousId` (the collector
     * derives a visitor id that changes daily), no offline buffer, the campaign kept in memory
     * only. Default `false`.
     */
    cookieless?: boolean | undefined;
    /**
     * Treat a browser sending Global Privacy Control
     * (`navigator.globalPrivacyControl`) as opted out, until the visitor calls `optIn()`.
     * Default `true`.
     */
    respectGpc?: boolean | undefined;
    /**
     * Treat Do Not Track (`navigator.doNotTrack === '1'`) as opted
     * out, until `optIn()`. Default `false`.
     */
    respectDnt?: boolean | undefined;
    /**
     * Report LCP, INP, CLS, FCP and TTFB as `Web Vital` events.
     * Default `true`.
     */
    webVitals?: boolean | undefined;
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
