// Web analytics and privacy in headless Chromium against the real collector: page views of a
// single-page app, campaigns, outbound link and file download clicks; consent, opt-out, Global
// Privacy Control, Do Not Track and cookieless mode (what is sent and what is stored).
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { Collector, launchChromium, pageServer } from './harness.mjs'

let collector
let browser
let pages

before(async () => {
  collector = await (await Collector.create()).start()
  browser = await launchChromium()
  pages = await pageServer(collector)
})

after(async () => {
  await pages?.close()
  await browser?.close()
  await collector?.stop()
})

/** How long a test watches for requests that must not be made (the SDK flushes every 50 ms). */
const QUIET_MS = 1000

/**
 * A fresh browser context with app.html's options (`window.OPTIONS`), the page, and every
 * batch it posts to the collector (parsed bodies, sendBeacon included).
 */
async function open(options, { initScript } = {}) {
  const context = await browser.newContext()
  const page = await context.newPage()
  const batches = []
  const warnings = []
  page.on('request', (request) => {
    if (request.url().startsWith(`${collector.host}/v1/`)) batches.push(JSON.parse(request.postData()))
  })
  page.on('console', (m) => m.type() === 'warning' && warnings.push(m.text()))
  await page.addInitScript((o) => { window.OPTIONS = o }, options)
  if (initScript) await page.addInitScript(initScript)
  return { context, page, batches, warnings, sent: () => batches.flatMap((b) => b.batch) }
}

async function load(page, path = '/app.html', gotoOptions = {}) {
  await page.goto(`${pages.origin}${path}`, gotoOptions)
  await page.waitForFunction(() => window.ready)
  await page.evaluate(() => window.ready)
}

/** Everything the page keeps on the device: storage of both kinds and cookies. */
function stored(page) {
  return page.evaluate(() => ({
    local: { ...localStorage },
    session: { ...sessionStorage },
    cookie: document.cookie,
  }))
}

const EMPTY = { local: {}, session: {}, cookie: '' }

/** A unique event name per test, so tests sharing the collector do not see each other. */
const unique = (name) => `${name} ${Math.random().toString(36).slice(2, 8)}`

/** In capture order: by timestamp, then by messageId (UUIDv7s, monotonic within a page). */
const byTime = (a, b) => a.timestamp.localeCompare(b.timestamp) || a.messageId.localeCompare(b.messageId)

/** The stored events of one visitor (by anonymousId), once `done(events)` holds. */
async function visitor(anonymousId, done = () => true, what = 'the visitor\'s events') {
  const mine = (events) => events.filter((e) => e.anonymousId === anonymousId).sort(byTime)
  return mine(await collector.waitUntil({}, (e) => done(mine(e)), what))
}

describe('single-page app', () => {
  test('navigations, the back button, a UTM link, a download and an outbound click', async () => {
    const { context, page } = await open({ trackOutboundLinks: true, trackFileDownloads: true })
    const referrer = 'http://news.example/item?id=1'
    const utm = 'utm_source=newsletter&utm_medium=email&utm_campaign=spring&utm_term=shoes&utm_content=banner'
    const landing = `${pages.origin}/app.html?${utm}`
    try {
      await load(page, `/app.html?${utm}`, { referer: referrer })
      const external = await page.evaluate(() => document.referrer)
      assert.match(external, /^http:\/\/news\.example\//)
      const anonymousId = await page.evaluate(() => window.pl.anonymousId)
      const signup = unique('Signup')
      await page.evaluate(() => history.replaceState({ step: 1 }, ''))            // same page
      await page.click('#internal')                                               // /spa/inside
      await page.evaluate(() => history.pushState({}, '', '/spa/pricing'))
      await page.evaluate(() => history.pushState({}, '', '/spa/pricing?plan=pro')) // same path
      await page.evaluate((e) => window.pl.track(e, { plan: 'pro' }), signup)
      await page.evaluate(() => history.replaceState({}, '', '/spa/pricing?plan=team')) // same path
      await page.goBack()                                                // /spa/pricing: same path
      await page.waitForFunction(() => location.pathname === '/spa/pricing' && location.search === '')
      await page.goBack()                                                         // /spa/inside
      await page.waitForFunction(() => location.pathname === '/spa/inside')
      await page.evaluate(() => history.replaceState({}, '', '/spa/checkout'))    // a new path
      await page.click('#download')
      await Promise.all([page.waitForURL(`${collector.host}/healthz`), page.click('#outbound')])

      const all = await visitor(anonymousId,
        (e) => ['File Download', 'Outbound Link: Click'].every((n) => e.some((m) => m.event === n)), 'the two clicks')
      const at = (path) => `${pages.origin}${path}`
      const views = all.filter((e) => e.type === 'page')
      assert.deepEqual(views.map((v) => [v.properties.path, v.properties.referrer]), [
        ['/app.html', external],
        ['/spa/inside', landing],
        ['/spa/pricing', at('/spa/inside')],
        ['/spa/inside', at('/spa/pricing')],
        ['/spa/checkout', at('/spa/inside')],
      ])
      const campaign = { source: 'newsletter', medium: 'email', name: 'spring', term: 'shoes', content: 'banner' }
      assert.deepEqual(all.map((e) => e.event ?? `page ${e.properties.path}`), [
        'page /app.html', 'page /spa/inside', 'page /spa/pricing', signup, 'page /spa/inside',
        'page /spa/checkout', 'File Download', 'Outbound Link: Click',
      ])
      for (const e of all) {
        assert.deepEqual(e.context.campaign, campaign, `${e.type} ${e.event ?? e.properties.path}`)
        if (e.type === 'page') assert.equal(e.context.page.referrer, e.properties.referrer)
      }
      assert.equal(all[3].context.page.path, '/spa/pricing')
      assert.equal(all[3].context.page.referrer, at('/spa/inside'))
      assert.deepEqual(all[6].properties, { url: at('/files/Report.PDF') })
      assert.deepEqual(all[7].properties, { url: `${collector.host}/healthz` })
    } finally {
      await context.close()
    }
  })

  test("the campaign is kept for the session; 'load' counts only the first load", async () => {
    const { context, page } = await open({ trackPageViews: 'load' })
    try {
      await load(page, '/app.html?utm_source=ads&utm_medium=cpc')
      assert.deepEqual(JSON.parse((await stored(page)).session['pulseline:campaign']), { source: 'ads', medium: 'cpc' })
      const anonymousId = await page.evaluate(() => window.pl.anonymousId)
      // A later full page load without UTM parameters, in the same tab: same session.
      await load(page, '/app.html')
      await page.evaluate(() => history.pushState({}, '', '/spa/elsewhere'))
      const event = unique('Later')
      await page.evaluate((e) => window.pl.track(e), event)
      const [later] = await collector.waitUntil({ event }, (e) => e.length === 1, event)
      assert.deepEqual(later.context.campaign, { source: 'ads', medium: 'cpc' })
      assert.equal(later.context.page.path, '/spa/elsewhere')
      const views = (await visitor(anonymousId)).filter((e) => e.type === 'page')
      assert.deepEqual(views.map((v) => v.properties.path), ['/app.html', '/app.html'])
      assert.ok(views.every((v) => v.context.campaign.source === 'ads'))
    } finally {
      await context.close()
    }
  })
})

describe('options', () => {
  test('a wrong option value is refused with the accepted values', async () => {
    const { context, page } = await open({ trackPageViews: false })
    try {
      await load(page)
      const refused = (options) => page.evaluate((o) => import('/dist/pulseline.js')
        .then(({ init }) => init({ writeKey: 'wk_x', webVitals: false, ...o }))
        .then(() => 'started', (e) => e.message), options)
      assert.equal(await refused({ trackPageViews: 'hash' }), `trackPageViews must be 'history', 'load' or false, not "hash"`)
      assert.equal(await refused({ consent: 'yes' }), `consent must be 'granted', 'pending' or 'denied', not "yes"`)
      assert.equal(await refused({ trackFileDownloads: 'pdf' }),
        `trackFileDownloads must be true, false or a list of extensions like ['pdf', 'zip'], not "pdf"`)
      assert.equal(await refused({ writeKey: '' }), 'init needs { writeKey }: the project write key shown by the collector')
    } finally {
      await context.close()
    }
  })
})

describe('hash routing, group and alias', () => {
  test('trackHashChanges counts hash routes; group and alias are stored like the server SDKs\'', async () => {
    const { context, page } = await open({ trackHashChanges: true })
    try {
      await load(page, '/app.html#/home')
      const anonymousId = await page.evaluate(() => window.pl.anonymousId)
      await page.evaluate(() => { location.hash = '#/settings' })
      await page.evaluate(() => history.pushState({}, '', '#/billing'))
      await page.evaluate(() => { location.hash = '#/billing' }) // the same route again
      await page.evaluate(() => window.pl.group('acme', { plan: 'enterprise' }))
      await page.evaluate(() => window.pl.alias('user-9'))
      await page.evaluate(() => window.pl.identify('user-9'))
      await page.evaluate(() => window.pl.alias('user-10', 'legacy-1'))
      assert.equal(await page.evaluate(() => window.pl.flush()), true)
      const mine = await visitor(anonymousId, (e) => e.filter((m) => m.type === 'group').length === 1, 'the group')
      assert.deepEqual(mine.filter((e) => e.type === 'page').map((v) => v.context.page.url.split('#')[1]),
        ['/home', '/settings', '/billing'])
      const [group] = mine.filter((e) => e.type === 'group')
      assert.equal(group.groupId, 'acme')
      assert.equal(group.traits.plan, 'enterprise')
      const aliases = (await collector.events()).filter((e) => e.type === 'alias' && ['user-9', 'user-10'].includes(e.userId))
        .sort(byTime)
      assert.deepEqual(aliases.map((a) => [a.userId, a.previousId]), [['user-9', anonymousId], ['user-10', 'legacy-1']])
    } finally {
      await context.close()
    }
  })

  test("without trackHashChanges a hash change is the same page", async () => {
    const { context, page } = await open({})
    try {
      await load(page, '/app.html#/home')
      const anonymousId = await page.evaluate(() => window.pl.anonymousId)
      await page.evaluate(() => { location.hash = '#/settings' })
      const event = unique('After hash')
      await page.evaluate((e) => window.pl.track(e), event)
      const mine = await visitor(anonymousId, (e) => e.some((m) => m.event === event), event)
      assert.deepEqual(mine.map((e) => e.type), ['page', 'track'])
    } finally {
      await context.close()
    }
  })
})

describe('privacy', () => {
  test("consent 'pending' stores and sends nothing; grant sends the queue as captured", async () => {
    const { context, page, batches } = await open({ consent: 'pending' })
    try {
      await load(page, '/app.html?utm_source=ads')
      const event = unique('Waited')
      const before = Date.now()
      await page.evaluate((e) => { for (let i = 0; i < 3; i++) window.pl.track(e, { i }) }, event)
      await page.evaluate(() => history.pushState({}, '', '/spa/next'))
      assert.equal(await page.evaluate(() => window.pl.flush()), false, 'messages wait for consent')
      await sleep(QUIET_MS)
      assert.deepEqual(batches, [], 'no request while consent is pending')
      assert.deepEqual(await stored(page), EMPTY)
      assert.equal(await page.evaluate(() => window.pl.anonymousId), undefined)

      const granted = Date.now()
      await page.evaluate(() => window.pl.grantConsent())
      assert.equal(await page.evaluate(() => window.pl.flush()), true)
      const anonymousId = await page.evaluate(() => window.pl.anonymousId)
      const all = await visitor(anonymousId, (e) => e.length >= 5, 'the queued messages')
      assert.deepEqual(all.map((e) => e.event ?? `page ${e.properties.path}`),
        ['page /app.html', event, event, event, 'page /spa/next'])
      for (const e of all) {
        const t = Date.parse(e.timestamp)
        assert.ok(t >= before - 5000 && t <= granted, `stamped when captured, not when sent: ${e.timestamp}`)
        assert.equal(e.context.campaign.source, 'ads')
      }
      const now = await stored(page)
      assert.equal(now.local['pulseline:anonymousId'], anonymousId)
      assert.deepEqual(JSON.parse(now.session['pulseline:campaign']), { source: 'ads' })
    } finally {
      await context.close()
    }
  })

  test('under the loader: options on pulseline.config, queued calls wait for consent', async () => {
    const { context, page, batches } = await open({})
    try {
      await page.goto(`${pages.origin}/loader-consent.html`)
      await page.waitForFunction(() => window.pulseline.client)
      const client = await page.evaluateHandle(() => window.pulseline.client)
      await sleep(QUIET_MS)
      assert.deepEqual(batches, [])
      assert.deepEqual(await stored(page), EMPTY)
      await page.evaluate(() => window.pulseline.grantConsent())
      assert.equal(await page.evaluate((c) => c.flush(), client), true)
      const anonymousId = await page.evaluate((c) => c.anonymousId, client)
      const mine = await visitor(anonymousId, (e) => e.length >= 3, 'the loader page\'s messages')
      // Captured within a millisecond or two: compared as a set.
      assert.deepEqual(mine.map((e) => e.type === 'track' ? e.event : e.type).sort(), ['Loader Queued', 'group', 'page'])
    } finally {
      await context.close()
    }
  })

  test('deny drops the queue and everything after it; the queue is bounded', async () => {
    const { context, page, batches, warnings } = await open({ consent: 'pending' })
    try {
      await load(page)
      const event = unique('Denied')
      await page.evaluate((e) => { for (let i = 0; i < 150; i++) window.pl.track(e, { i }) }, event)
      assert.deepEqual(warnings.filter((w) => w.includes('CONSENT_QUEUE_MAX')).length, 1)
      await page.evaluate(() => window.pl.denyConsent())
      await page.evaluate((e) => window.pl.track(e, { after: true }), event)
      assert.equal(await page.evaluate(() => window.pl.flush()), true)
      await sleep(QUIET_MS)
      assert.deepEqual(batches, [])
      assert.deepEqual(await stored(page), EMPTY)

      // Granted later (the visitor changed their mind): only what comes after is sent, and
      // a queue that was full kept its first CONSENT_QUEUE_MAX messages.
      await page.reload()
      await page.waitForFunction(() => window.ready)
      await page.evaluate(() => window.ready)
      await page.evaluate((e) => { for (let i = 0; i < 150; i++) window.pl.track(e, { i }) }, event)
      await page.evaluate(() => window.pl.grantConsent())
      const kept = await collector.waitUntil({ event }, (e) => e.length >= 99, 'the kept queue')
      await page.evaluate(() => window.pl.flush())
      assert.equal((await collector.events({ event })).length, 99, 'CONSENT_QUEUE_MAX = 100: the page view and 99 events')
      assert.deepEqual(kept.map((e) => e.properties.i).sort((a, b) => a - b), [...Array(99).keys()])
    } finally {
      await context.close()
    }
  })

  test('opt-out is kept across reloads and deletes what was stored; opt-in sends again', async () => {
    const { context, page, batches } = await open({})
    try {
      await load(page)
      const event = unique('Choice')
      const first = await page.evaluate(() => window.pl.anonymousId)
      await page.evaluate((e) => window.pl.track(e, { n: 1 }), event)
      assert.equal(await page.evaluate(() => window.pl.flush()), true)
      await page.evaluate(() => window.pl.optOut())
      const sentBefore = batches.length
      await page.evaluate((e) => window.pl.track(e, { n: 2 }), event)
      await page.reload()
      await page.waitForFunction(() => window.ready)
      await page.evaluate(() => window.ready)
      await page.evaluate((e) => window.pl.track(e, { n: 3 }), event)
      await sleep(QUIET_MS)
      assert.equal(batches.length, sentBefore, 'nothing sent after optOut, nor after the reload')
      assert.deepEqual(await stored(page), { ...EMPTY, local: { 'pulseline:optOut': '1' } })

      await page.evaluate(() => window.pl.optIn())
      await page.evaluate((e) => window.pl.track(e, { n: 4 }), event)
      const events = await collector.waitUntil({ event }, (e) => e.length >= 2, 'the events before and after')
      assert.deepEqual(events.map((e) => e.properties.n).sort(), [1, 4])
      const second = await page.evaluate(() => window.pl.anonymousId)
      assert.notEqual(second, first, 'a new visitor after opting out and in')
      assert.equal((await stored(page)).local['pulseline:optOut'], '0')
    } finally {
      await context.close()
    }
  })

  test('Global Privacy Control opts out by default; Do Not Track only with respectDnt', async () => {
    const gpc = () => Object.defineProperty(Navigator.prototype, 'globalPrivacyControl', { get: () => true })
    const dnt = () => Object.defineProperty(Navigator.prototype, 'doNotTrack', { get: () => '1' })
    for (const [name, options, initScript, sends] of [
      ['GPC', {}, gpc, false],
      ['GPC, respectGpc: false', { respectGpc: false }, gpc, true],
      ['DNT', {}, dnt, true],
      ['DNT, respectDnt: true', { respectDnt: true }, dnt, false],
    ]) {
      const { context, page, batches } = await open(options, { initScript })
      try {
        await load(page)
        const event = unique(name)
        await page.evaluate((e) => window.pl.track(e), event)
        if (sends) {
          await collector.waitUntil({ event }, (e) => e.length === 1, name)
          continue
        }
        await sleep(QUIET_MS)
        assert.deepEqual(batches, [], name)
        assert.deepEqual(await stored(page), EMPTY, name)
        // The visitor's own choice wins over the browser's signal.
        await page.evaluate(() => window.pl.optIn())
        await page.evaluate((e) => window.pl.track(e), event)
        await collector.waitUntil({ event }, (e) => e.length === 1, `${name} then optIn`)
      } finally {
        await context.close()
      }
    }
  })

  test('cookieless: no anonymousId sent, context.cookieless, nothing stored', async () => {
    const { context, page, sent } = await open({ cookieless: true })
    try {
      await load(page, '/app.html?utm_source=ads&utm_campaign=launch')
      const event = unique('Cookieless')
      await page.evaluate((e) => window.pl.track(e, { n: 1 }), event)
      await page.evaluate(() => history.pushState({}, '', '/spa/next'))
      await page.evaluate(() => window.pl.identify('user-ck', { plan: 'pro' }))
      await page.evaluate((e) => window.pl.track(e, { n: 2 }), event)
      await page.evaluate(() => window.pl.alias('user-ck-2', 'user-ck'))
      await page.waitForFunction(() => window.pl.flush())
      const messages = sent()
      assert.deepEqual(messages.map((m) => m.event ?? m.type), ['page', event, 'page', 'identify', event, 'alias'])
      for (const m of messages) {
        assert.equal('anonymousId' in m, false, JSON.stringify(m))
        assert.equal(m.context.cookieless, true)
        assert.deepEqual(m.context.campaign, { source: 'ads', name: 'launch' })
      }
      assert.deepEqual(messages.map((m) => m.userId), [undefined, undefined, undefined, 'user-ck', 'user-ck', 'user-ck-2'])
      assert.equal(await page.evaluate(() => window.pl.anonymousId), undefined)
      assert.deepEqual(await stored(page), EMPTY)
      // A new page load knows nothing of the visitor.
      await load(page)
      assert.equal(await page.evaluate(() => window.pl.userId), undefined)
      assert.deepEqual(await stored(page), EMPTY)
    } finally {
      await context.close()
    }
  })
})
