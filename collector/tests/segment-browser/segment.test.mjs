// Segment's own browser SDK against the collector, unchanged: @segment/analytics-next from npm,
// bundled with esbuild, on a page of another loopback origin in headless Debian Chromium. It
// sends page, identify and track as text/plain to /v1/p, /v1/i, /v1/t (and /v1/b in batching
// mode, with its settings fetched from /v1/projects/{writeKey}/settings), and every message is
// read back from /api/v1/events. Nothing here contacts anything but 127.0.0.1.
import { execFileSync, spawn } from 'node:child_process'
import { existsSync, mkdtempSync, openSync } from 'node:fs'
import { createServer } from 'node:http'
import { createServer as createNetServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { setTimeout as sleep } from 'node:timers/promises'
import { build } from 'esbuild'
import { chromium } from 'playwright-core'

const HERE = import.meta.dirname
const ROOT = resolve(HERE, '../../..')
const BIN = process.env.PULSELINE_COLLECTOR_BIN ?? join(ROOT, 'target', 'debug', 'pulseline-collector')
const CHROME_UA = 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36'

async function freePort() {
  const server = createNetServer()
  await new Promise((ok) => server.listen(0, '127.0.0.1', ok))
  const { port } = server.address()
  await new Promise((ok) => server.close(ok))
  return port
}

let collector, host, writeKey, secretKey, pages, pageOrigin, browser, bundle

before(async () => {
  assert.ok(existsSync(BIN), `${BIN} is missing: run \`cargo build -p pulseline-collector\``)
  const workdir = mkdtempSync(join(tmpdir(), 'pulseline-segment-'))
  const port = await freePort()
  host = `127.0.0.1:${port}`
  const env = {
    ...process.env,
    PULSELINE_DATABASE_URL: `sqlite://${join(workdir, 'pulseline.db')}`,
    PULSELINE_LISTEN: host,
    NO_COLOR: '1',
  }
  const keys = JSON.parse(execFileSync(BIN, ['project', 'create', '--name', 'segment', '--json'],
    { env, encoding: 'utf8', timeout: 60_000 }))
  writeKey = keys.write_key
  secretKey = keys.secret_key
  const log = openSync(join(workdir, 'collector.log'), 'a')
  collector = spawn(BIN, ['serve'], { env, stdio: ['ignore', log, log] })
  const deadline = Date.now() + 30_000
  for (;;) {
    assert.equal(collector.exitCode, null, `collector exited; see ${workdir}/collector.log`)
    try {
      if ((await fetch(`http://${host}/readyz`)).ok) break
    } catch {}
    assert.ok(Date.now() < deadline, 'collector did not become ready')
    await sleep(50)
  }

  // The npm package as a site would ship it: one bundle, AnalyticsBrowser on window.
  const built = await build({
    stdin: { contents: "import { AnalyticsBrowser } from '@segment/analytics-next'; window.AnalyticsBrowser = AnalyticsBrowser", resolveDir: HERE },
    bundle: true, format: 'iife', platform: 'browser', write: false, logLevel: 'warning',
  })
  bundle = built.outputFiles[0].text

  pages = createServer((req, res) => {
    if (req.url === '/analytics.js') {
      res.writeHead(200, { 'content-type': 'text/javascript' }).end(bundle)
    } else if (req.url.startsWith('/shop')) {
      res.writeHead(200, { 'content-type': 'text/html' })
        .end('<!doctype html><title>Shop</title><script src="/analytics.js"></script><h1>Shop</h1>')
    } else {
      res.writeHead(404).end()
    }
  })
  await new Promise((ok) => pages.listen(0, '127.0.0.1', ok))
  pageOrigin = `http://127.0.0.1:${pages.address().port}`
  browser = await chromium.launch({
    executablePath: process.env.PULSELINE_CHROMIUM ?? '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  })
})

after(async () => {
  await browser?.close()
  pages?.close()
  if (collector && collector.exitCode === null) {
    const exited = new Promise((ok) => collector.once('exit', ok))
    collector.kill('SIGTERM')
    await exited
  }
})

async function events() {
  const response = await fetch(`http://${host}/api/v1/events?limit=1000`,
    { headers: { Authorization: `Bearer ${secretKey}` } })
  const text = await response.text()
  assert.ok(response.ok, `${response.status} ${text}`)
  return JSON.parse(text).events
}

async function waitFor(what, check, timeoutMs = 30_000) {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const found = check(await events())
    if (found) return found
    assert.ok(Date.now() < deadline, `timed out waiting for ${what}; stored: ${JSON.stringify(await events())}`)
    await sleep(100)
  }
}

/** A page of the shop with analytics-next loaded by `load` (a function run in the page). */
async function shopPage(options, userAgent) {
  const context = await browser.newContext(userAgent ? { userAgent } : {})
  const page = await context.newPage()
  const requests = []
  // Anything not on loopback would be the SDK calling Segment's own servers: refuse and record it.
  await page.route('**/*', (route) => {
    const url = new URL(route.request().url())
    requests.push(`${route.request().method()} ${url.host}${url.pathname}`)
    return url.hostname === '127.0.0.1' ? route.continue() : route.abort()
  })
  const errors = []
  page.on('pageerror', (e) => errors.push(String(e)))
  await page.goto(`${pageOrigin}/shop?utm_source=newsletter&utm_medium=email&utm_campaign=launch`,
    { referer: 'https://news.ycombinator.com/item?id=1' })
  await page.evaluate(async (options) => {
    const [analytics] = await window.AnalyticsBrowser.load(options.settings, options.init)
    await analytics.page()
    await analytics.identify(options.user, { plan: 'pro' })
    await analytics.track('Checkout Started', { value: 42 })
  }, options)
  return { context, requests, errors }
}

test('page, identify and track with inline settings reach /v1/p, /v1/i and /v1/t', async () => {
  const { context, requests, errors } = await shopPage({
    user: 'segment-user-1',
    settings: {
      writeKey,
      cdnSettings: { integrations: { 'Segment.io': { apiKey: writeKey, apiHost: `${host}/v1`, protocol: 'http' } } },
    },
    init: {},
  })
  const stored = await waitFor('page, identify and track', (all) => {
    const mine = all.filter((e) => e.userId === 'segment-user-1' || e.type === 'page')
    const byType = Object.fromEntries(mine.map((e) => [e.type, e]))
    return byType.page && byType.identify && byType.track ? byType : null
  })
  await context.close()
  assert.deepEqual(errors, [])
  for (const path of ['/v1/p', '/v1/i', '/v1/t']) {
    assert.ok(requests.includes(`POST ${host}${path}`), `${path} not posted: ${requests.join(', ')}`)
  }
  assert.deepEqual(requests.filter((r) => !r.includes('127.0.0.1')), [], 'nothing but the collector')
  assert.equal(stored.track.event, 'Checkout Started')
  assert.equal(stored.track.properties.value, 42)
  assert.equal(stored.identify.traits.plan, 'pro')
  assert.equal(stored.page.context.page.path, '/shop')
  assert.equal(stored.page.context.library.name, 'analytics.js')
  // Derived at ingest: headless Chromium says so in its User-Agent, so it is flagged as a bot.
  assert.equal(stored.page.context.bot, true)
  assert.equal(stored.page.context.device.type, 'bot')
  assert.equal(stored.page.context.ip, undefined, 'the client IP is not stored')
  assert.deepEqual(stored.page.context.source, { name: 'newsletter', medium: 'email' })
})

test('batching mode with settings from the collector posts /v1/b', async () => {
  const { context, requests, errors } = await shopPage({
    user: 'segment-user-2',
    settings: { writeKey, cdnURL: `http://${host}` },
    init: { integrations: { 'Segment.io': { deliveryStrategy: { strategy: 'batching', config: { size: 3, timeout: 500 } } } } },
  }, CHROME_UA)
  const stored = await waitFor('the batch', (all) => {
    const mine = all.filter((e) => e.userId === 'segment-user-2' || (e.anonymousId && e.context?.browser?.name === 'Chrome'))
    const byType = Object.fromEntries(mine.map((e) => [e.type, e]))
    return byType.page && byType.identify && byType.track ? byType : null
  })
  await context.close()
  assert.deepEqual(errors, [])
  assert.ok(requests.includes(`GET ${host}/v1/projects/${writeKey}/settings`), requests.join(', '))
  assert.ok(requests.includes(`POST ${host}/v1/b`), `no batch posted: ${requests.join(', ')}`)
  assert.deepEqual(requests.filter((r) => !r.includes('127.0.0.1')), [], 'nothing but the collector')
  assert.deepEqual(stored.track.context.browser, { name: 'Chrome', version: '131.0.0' })
  assert.equal(stored.track.context.device.type, 'desktop')
  assert.equal(stored.track.context.bot, undefined)
})
