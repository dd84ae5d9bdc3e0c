// End to end in headless Chromium against the real collector: the loader snippet, tracking
// across a navigation, page context, identify, Web Vitals measured by the browser, the offline
// buffer, and a page under a strict Content-Security-Policy.
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { Collector, launchChromium, pageServer, watchErrors } from './harness.mjs'

let collector
let browser

before(async () => {
  collector = await (await Collector.create()).start()
  browser = await launchChromium()
})

after(async () => {
  await browser?.close()
  await collector?.stop()
})

/** Resolves once the loader's SDK has started on `page`. */
async function sdkStarted(page) {
  await page.waitForFunction(() => window.pulseline && window.pulseline.client)
  return page.evaluate(() => window.pulseline.client.then(() => true))
}

/** Each messageId once: the SDK may send a batch twice (beacon + replay), storage keeps one. */
function assertStoredOnce(events) {
  const ids = events.map((e) => e.messageId)
  assert.equal(new Set(ids).size, ids.length, `duplicate messageIds in ${JSON.stringify(ids)}`)
}

describe('loader snippet, tracking and Web Vitals', () => {
  test('calls before load, a click, a navigation and hiding arrive once with context and vitals', async () => {
    const pages = await pageServer(collector)
    const context = await browser.newContext({ viewport: { width: 1024, height: 768 } })
    const page = await context.newPage()
    const errors = watchErrors(page)
    try {
      await page.goto(`${pages.origin}/a.html`)
      // The queued calls are replayed when the SDK has started.
      assert.equal(await sdkStarted(page), true)
      // The late banner's shift must be on record before the click, or it counts as caused
      // by the click and CLS stays 0.
      await page.waitForFunction(() => window.shifted)
      await page.click('#buy')
      await page.waitForFunction(() => document.getElementById('buy').textContent === 'Bought')
      // Navigating hides and unloads page A: web-vitals reports LCP, CLS and INP then, and the
      // SDK sends them by sendBeacon.
      await Promise.all([page.waitForURL(`${pages.origin}/b.html`), page.click('#next')])
      assert.equal(await sdkStarted(page), true)
      await page.goto('about:blank')

      const tracked = await collector.waitUntil(
        { event: 'Before Load' }, (e) => e.length >= 1, 'the call queued before the SDK loaded')
      const [early] = tracked
      assert.equal(tracked.length, 1)
      assert.equal(early.properties.n, 1)
      assert.equal(early.userId, 'user-7', 'identify (queued first) links the user')
      assert.match(early.anonymousId, /^[0-9a-f-]{36}$/)
      assert.equal(early.context.page.path, '/a.html')
      assert.equal(early.context.page.url, `${pages.origin}/a.html`)
      assert.equal(early.context.page.title, 'Page A')
      assert.equal(early.context.locale, await page.evaluate(() => navigator.language))
      assert.match(early.context.userAgent, /Chrome\//)
      assert.equal(early.context.screen.width > 0, true)
      assert.equal(early.context.library.name, 'pulseline-browser')

      const clicked = await collector.waitUntil({ event: 'Clicked' }, (e) => e.length >= 1, 'the click')
      assert.equal(clicked.length, 1)

      const identifies = (await collector.events({ user_id: 'user-7' })).filter((e) => e.type === 'identify')
      assert.equal(identifies.length, 1)
      assert.equal(identifies[0].traits.plan, 'pro')
      assert.equal(identifies[0].anonymousId, early.anonymousId)

      const views = (await collector.waitUntil(
        { user_id: 'user-7' }, (e) => e.filter((m) => m.type === 'page').length >= 2, 'two page views'))
        .filter((e) => e.type === 'page')
      assert.deepEqual(views.map((v) => v.properties.path).sort(), ['/a.html', '/b.html'])
      assert.equal(views.find((v) => v.properties.path === '/b.html').properties.referrer, `${pages.origin}/a.html`)
      assert.equal(new Set(views.map((v) => v.anonymousId)).size, 1, 'one anonymousId across pages')

      const vitals = await collector.waitUntil(
        { event: 'Web Vital' },
        (e) => ['LCP', 'CLS', 'FCP', 'TTFB', 'INP'].every((m) => e.some((v) => v.properties.metric === m && v.properties.path === '/a.html')),
        'LCP, CLS, FCP, TTFB and INP of page A')
      assertStoredOnce(vitals)
      const onA = vitals.filter((v) => v.properties.path === '/a.html')
      for (const v of onA) {
        assert.equal(typeof v.properties.value, 'number')
        assert.ok(['good', 'needs-improvement', 'poor'].includes(v.properties.rating), v.properties.rating)
        assert.equal(typeof v.properties.delta, 'number')
        assert.match(v.properties.id, /^v\d-/)
        assert.equal(v.properties.navigationType, 'navigate')
        assert.equal(v.context.page.path, '/a.html')
      }
      // One report per metric per page load (web-vitals reports each final value once here).
      const metricsOnA = onA.map((v) => v.properties.metric).sort()
      assert.deepEqual(metricsOnA, [...new Set(metricsOnA)])
      const byMetric = Object.fromEntries(onA.map((v) => [v.properties.metric, v.properties]))
      assert.ok(byMetric.LCP.value > 0)
      assert.equal(byMetric.LCP.attribution.element, '#hero', 'the headline is the largest paint')
      assert.ok(byMetric.CLS.value > 0, 'the late banner shifted the layout')
      assert.ok(byMetric.INP.value >= 100, `the 120 ms click handler: INP ${byMetric.INP.value}`)
      assert.equal(byMetric.INP.attribution.element, '#buy')
      assert.equal(byMetric.INP.attribution.interactionType, 'pointer')
      assert.ok(byMetric.FCP.value > 0)
      assert.ok(byMetric.TTFB.value >= 0)

      // Page B's LCP and CLS are final only when it is hidden, and no SDK page loads after it
      // (about:blank) to replay its buffer: they arrive because they left by sendBeacon.
      await collector.waitUntil(
        { event: 'Web Vital' },
        (e) => ['LCP', 'CLS'].every((m) => e.some((v) => v.properties.metric === m && v.properties.path === '/b.html')),
        'LCP and CLS of page B, sent while it was unloading')

      assertStoredOnce(await collector.events())
      assert.deepEqual(errors, [])
    } finally {
      await context.close()
      await pages.close()
    }
  })
})

describe('offline buffer', () => {
  test('events captured while the collector is down are delivered once after a reload', async () => {
    const pages = await pageServer(collector)
    const context = await browser.newContext()
    const page = await context.newPage()
    const requested = []
    page.on('request', (request) => requested.push(new URL(request.url()).pathname))
    try {
      await collector.stop()
      await page.goto(`${pages.origin}/offline.html`)
      await page.waitForFunction(() => window.ready)
      await page.evaluate(() => window.ready)
      await page.evaluate(() => {
        for (let i = 0; i < 3; i++) window.pl.track('Offline Event', { i })
      })
      // The batch is written to localStorage before its first (failing) send.
      await page.waitForFunction(() =>
        Object.keys(localStorage).some((k) => k.startsWith('pulseline:outbox:')))

      await collector.start()
      await page.reload()
      await page.evaluate(() => window.ready)
      const events = await collector.waitUntil(
        { event: 'Offline Event' }, (e) => e.length >= 3, 'the three offline events')
      assert.deepEqual(events.map((e) => e.properties.i).sort(), [0, 1, 2])
      assertStoredOnce(events)
      // Delivered batches leave the buffer.
      await page.waitForFunction(() =>
        !Object.keys(localStorage).some((k) => k.startsWith('pulseline:outbox:')), null, { timeout: 10_000 })
      // Nothing arrives twice later either (a late retry of the old page is stored once).
      await new Promise((ok) => setTimeout(ok, 1000))
      assert.equal((await collector.events({ event: 'Offline Event' })).length, 3)
      // This page turns Web Vitals off: their module is never downloaded.
      assert.ok(requested.includes('/dist/pulseline_bg.wasm'), requested.join(' '))
      assert.ok(!requested.some((path) => path.endsWith('/web-vitals.js')), requested.join(' '))
    } finally {
      await context.close()
      await pages.close()
      if (!collector.process) await collector.start()
    }
  })
})

describe('strict Content-Security-Policy', () => {
  test('works with the documented directives and nothing else', async () => {
    const pages = await pageServer(collector, (path) => path.endsWith('.html')
      ? {
          'Content-Security-Policy':
            `default-src 'none'; script-src 'self' ${collector.host} 'wasm-unsafe-eval'; connect-src ${collector.host}; style-src 'self'`,
        }
      : {})
    const context = await browser.newContext()
    const page = await context.newPage()
    const errors = watchErrors(page)
    const violations = []
    await page.exposeFunction('reportViolation', (v) => violations.push(v))
    await page.addInitScript(() => {
      document.addEventListener('securitypolicyviolation', (e) =>
        window.reportViolation(`${e.violatedDirective} ${e.blockedURI}`))
    })
    try {
      await page.goto(`${pages.origin}/csp.html`)
      assert.equal(await sdkStarted(page), true)
      const events = await collector.waitUntil({ event: 'CSP Event' }, (e) => e.length >= 1, 'the CSP page event')
      assert.equal(events.length, 1)
      assert.equal(events[0].context.page.path, '/csp.html')
      assert.deepEqual(violations, [])
      assert.deepEqual(errors, [])
    } finally {
      await context.close()
      await pages.close()
    }
  })
})
