// The browser SDK as a customer meets it: the collector binary alone (no PULSELINE_SDK_DIR, run
// from an empty directory, so only the SDK embedded in it can be served), a page on another
// origin carrying the Keys page's browser snippet, and headless Chromium. The page must send
// its event; the Chrome DevTools Protocol tells what the page downloaded for the SDK (bytes on
// the wire, headers included) on a first visit and on a repeat one.
//
//   node collector/tests/browser/embedded_sdk.mjs   (PULSELINE_COLLECTOR_BIN, PULSELINE_CHROMIUM)
// Nothing here contacts anything but 127.0.0.1.
import assert from 'node:assert/strict'
import { execFileSync, spawn } from 'node:child_process'
import { existsSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs'
import { createServer } from 'node:http'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..')
const BIN = process.env.PULSELINE_COLLECTOR_BIN ?? join(ROOT, 'target/debug/pulseline-collector')
const CHROMIUM = process.env.PULSELINE_CHROMIUM ?? '/usr/bin/chromium'
// playwright-core comes with the dashboard's dev dependencies (scripts/test.sh installs them).
const { chromium } = createRequire(join(ROOT, 'dashboard/package.json'))('playwright-core')

/** The Browser snippet exactly as the dashboard's Keys page renders it. */
function keysPageSnippet(key, host) {
  const app = readFileSync(join(ROOT, 'dashboard/src/app.js'), 'utf8')
  const match = app.match(/\['Browser', `([^`]*)`\]/)
  assert.ok(match, "dashboard/src/app.js has no ['Browser', `...`] snippet any more: update this test")
  return match[1].replaceAll('${host}', host).replaceAll('${key}', key).replaceAll('\\n', '\n')
}

async function listen(server) {
  await new Promise((ok) => server.listen(0, '127.0.0.1', ok))
  return server.address().port
}

async function freePort() {
  const server = createServer()
  const port = await listen(server)
  await new Promise((ok) => server.close(ok))
  return port
}

const workdir = mkdtempSync(join(tmpdir(), 'pulseline-embedded-sdk-'))
const port = await freePort()
const host = `http://127.0.0.1:${port}`
const env = { ...process.env, PULSELINE_DATABASE_URL: `sqlite://${join(workdir, 'pulseline.db')}`, PULSELINE_LISTEN: `127.0.0.1:${port}` }
delete env.PULSELINE_SDK_DIR
assert.ok(existsSync(BIN), `${BIN} is missing: cargo build -p pulseline-collector`)
const keys = JSON.parse(execFileSync(BIN, ['project', 'create', '--name', 'embedded-sdk', '--json'], { cwd: workdir, env, encoding: 'utf8' }))
const log = openSync(join(workdir, 'collector.log'), 'a')
const collector = spawn(BIN, ['serve'], { cwd: workdir, env, stdio: ['ignore', log, log] })

let browser
let pages
let passed = false
try {
  for (const deadline = Date.now() + 60_000; ; await sleep(50)) {
    assert.equal(collector.exitCode, null, `collector exited; see ${workdir}/collector.log`)
    assert.ok(Date.now() < deadline, 'collector not ready within 60 s')
    if (await fetch(`${host}/readyz`).then((r) => r.ok, () => false)) break
  }

  const html = `<!doctype html><html><head><meta charset="utf-8"><title>shop</title>\n${keysPageSnippet(keys.write_key, host)}\n</head><body><h1>A customer's page</h1></body></html>`
  pages = createServer((req, res) => {
    res.writeHead(req.url === '/' ? 200 : 404, { 'Content-Type': 'text/html; charset=utf-8', 'Cache-Control': 'no-store' })
    res.end(req.url === '/' ? html : '')
  })
  const pageOrigin = `http://127.0.0.1:${await listen(pages)}`

  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  })
  const context = await browser.newContext()
  const page = await context.newPage()
  const cdp = await context.newCDPSession(page)
  await cdp.send('Network.enable')
  const requests = new Map() // requestId -> what the page fetched from /sdk/
  cdp.on('Network.responseReceived', ({ requestId, response }) => {
    if (!new URL(response.url).pathname.startsWith('/sdk/')) return
    const h = Object.fromEntries(Object.entries(response.headers).map(([k, v]) => [k.toLowerCase(), v]))
    requests.set(requestId, { url: response.url, status: response.status, encoding: h['content-encoding'] ?? 'identity', cache: h['cache-control'], fromCache: response.fromDiskCache || response.fromPrefetchCache, acceptEncoding: response.requestHeaders?.['Accept-Encoding'] })
  })
  cdp.on('Network.requestServedFromCache', ({ requestId }) => requests.set(requestId, { ...requests.get(requestId), fromCache: true }))
  cdp.on('Network.loadingFinished', ({ requestId, encodedDataLength }) => {
    const r = requests.get(requestId)
    if (r) r.wire = encodedDataLength
  })

  const visit = async (label) => {
    requests.clear()
    await page.goto(`${pageOrigin}/`)
    // The snippet's track() is sent once the SDK (module, wasm, Web Vitals) has loaded.
    const want = label === 'first' ? 1 : 2
    for (const deadline = Date.now() + 60_000; ; await sleep(100)) {
      const url = `${host}/api/v1/events?event=${encodeURIComponent('Signed Up')}&limit=10`
      const { events } = await (await fetch(url, { headers: { Authorization: `Bearer ${keys.secret_key}` } })).json()
      if (events.length >= want) {
        assert.equal(events[0].properties.plan, 'pro')
        break
      }
      assert.ok(Date.now() < deadline, `the ${label} visit sent no "Signed Up" event; see ${workdir}/collector.log`)
    }
    for (const deadline = Date.now() + 30_000; [...requests.values()].some((r) => r.wire === undefined); await sleep(50)) {
      assert.ok(Date.now() < deadline, 'SDK downloads did not finish')
    }
    return [...requests.values()].map((r) => ({ ...r, file: new URL(r.url).pathname }))
  }

  const first = await visit('first')
  const names = first.map((r) => r.file.split('/').pop()).sort()
  assert.deepEqual(names, ['loader.js', 'pulseline.js', 'pulseline_bg.wasm', 'web-vitals.js'], JSON.stringify(first))
  let total = 0
  console.log(`first visit (Accept-Encoding: ${first[0].acceptEncoding ?? 'not reported'}):`)
  for (const r of first) {
    assert.equal(r.status, 200, r.file)
    assert.notEqual(r.encoding, 'identity', `${r.file} was sent uncompressed`)
    if (r.file.endsWith('/loader.js')) assert.equal(r.cache, 'public, max-age=300', r.file)
    else assert.match(r.file, /^\/sdk\/v1\/[0-9a-f]{16}\//, `${r.file}: the loader loads versioned URLs`)
    if (!r.file.endsWith('/loader.js')) assert.equal(r.cache, 'public, max-age=31536000, immutable', r.file)
    total += r.wire
    console.log(`  ${r.file.padEnd(42)} ${r.encoding.padEnd(5)} ${String(r.wire).padStart(7)} bytes on the wire`)
  }
  console.log(`  total ${total} bytes (${(total / 1024).toFixed(1)} KB)`)
  // The budget: the brotli sizes the SDK is held to (sdk-wasm/README.md "Size") plus headers.
  assert.ok(total < 80 * 1024, `the page downloaded ${total} bytes for the SDK`)

  const again = await visit('repeat')
  const refetched = again.filter((r) => !r.fromCache && r.wire > 0)
  console.log(`repeat visit: ${again.length} SDK requests, ${refetched.reduce((n, r) => n + r.wire, 0)} bytes from the network`)
  assert.deepEqual(refetched.map((r) => r.file), [], 'a repeat visit within 300 s fetches nothing')
  console.log('ok: the Keys page snippet sent its event from the SDK embedded in the collector')
  passed = true
} finally {
  await browser?.close()
  pages?.close()
  const exited = new Promise((ok) => collector.once('exit', ok))
  collector.kill('SIGTERM')
  await exited
  // Kept when the test failed: its messages point at the collector's log there.
  if (passed) rmSync(workdir, { recursive: true, force: true })
}
