// The real `pulseline-collector` binary (serving the built SDK at /sdk/v1/), a static server for
// test pages on another loopback origin, and headless Debian Chromium via playwright-core.
// Nothing here contacts anything but 127.0.0.1.
import { execFileSync, spawn } from 'node:child_process'
import { existsSync, mkdtempSync, openSync, readFileSync } from 'node:fs'
import { createServer as createHttpServer } from 'node:http'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { dirname, extname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { setTimeout as sleep } from 'node:timers/promises'
import { chromium } from 'playwright-core'

export const SDK_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '..')
export const DIST = join(SDK_DIR, 'dist')
const ROOT = resolve(SDK_DIR, '..')
const BIN = process.env.PULSELINE_COLLECTOR_BIN ?? join(ROOT, 'target', 'debug', 'pulseline-collector')
const CHROMIUM = process.env.PULSELINE_CHROMIUM ?? '/usr/bin/chromium'

async function freePort() {
  const server = createServer()
  await new Promise((ok) => server.listen(0, '127.0.0.1', ok))
  const { port } = server.address()
  await new Promise((ok) => server.close(ok))
  return port
}

export class Collector {
  static async create() {
    if (!existsSync(BIN)) throw new Error(`${BIN} is missing: run \`cargo build -p pulseline-collector\``)
    const c = new Collector()
    c.workdir = mkdtempSync(join(tmpdir(), 'pulseline-browser-'))
    c.port = await freePort()
    c.host = `http://127.0.0.1:${c.port}`
    const keys = JSON.parse(c.#run('project', 'create', '--name', 'browser-sdk-tests', '--json'))
    c.writeKey = keys.write_key
    c.secretKey = keys.secret_key
    return c
  }

  #env() {
    return {
      ...process.env,
      PULSELINE_DATABASE_URL: `sqlite://${join(this.workdir, 'pulseline.db')}`,
      PULSELINE_LISTEN: `127.0.0.1:${this.port}`,
      PULSELINE_SDK_DIR: DIST,
      NO_COLOR: '1',
    }
  }

  #run(...args) {
    return execFileSync(BIN, args, { env: this.#env(), encoding: 'utf8', timeout: 60_000 })
  }

  async start() {
    const log = openSync(join(this.workdir, 'collector.log'), 'a')
    this.process = spawn(BIN, ['serve'], { env: this.#env(), stdio: ['ignore', log, log] })
    const deadline = Date.now() + 30_000
    while (Date.now() < deadline) {
      if (this.process.exitCode !== null) throw new Error(`collector exited; see ${this.workdir}/collector.log`)
      try {
        if ((await fetch(`${this.host}/readyz`)).ok) return this
      } catch {
        await sleep(50)
      }
    }
    throw new Error('collector did not become ready')
  }

  async stop() {
    if (!this.process || this.process.exitCode !== null) return
    const exited = new Promise((ok) => this.process.once('exit', ok))
    this.process.kill('SIGTERM')
    await exited
    this.process = undefined
  }

  /** Every stored event matching `params` (event, user_id), following next_cursor. */
  async events(params = {}) {
    const events = []
    const query = { limit: 1000, ...params }
    for (;;) {
      const url = `${this.host}/api/v1/events?${new URLSearchParams(query)}`
      const response = await fetch(url, { headers: { Authorization: `Bearer ${this.secretKey}` } })
      if (!response.ok) throw new Error(`${url}: ${response.status} ${await response.text()}`)
      const page = await response.json()
      events.push(...page.events)
      if (!page.next_cursor) return events
      query.cursor = page.next_cursor
    }
  }

  /** Polls until `done(events)` holds (events matching `params`), or fails at the deadline. */
  async waitUntil(params, done, what, timeoutMs = 20_000) {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      const events = await this.events(params)
      if (done(events)) return events
      if (Date.now() > deadline) {
        const seen = events.map((e) =>
          [e.type, e.event ?? e.name, e.properties?.metric, e.properties?.path ?? e.context?.page?.path, e.userId].filter(Boolean).join(' '))
        throw new Error(`timed out waiting for ${what}; have:\n${seen.join('\n')}`)
      }
      await sleep(100)
    }
  }
}

const TYPES = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript', '.wasm': 'application/wasm' }

/**
 * Serves test/pages/* (with {{WRITE_KEY}}, {{HOST}}, {{LOADER}} filled in) and dist/* under
 * /dist/, from its own origin. `headers(path)` adds response headers (a CSP).
 */
export async function pageServer(collector, headers = () => ({})) {
  const loader = readFileSync(join(DIST, 'loader.js'), 'utf8')
    .replace('"WRITE_KEY"', JSON.stringify(collector.writeKey))
    .replace('"https://COLLECTOR"', JSON.stringify(collector.host))
  const server = createHttpServer((req, res) => {
    const path = new URL(req.url, 'http://x').pathname
    if (path === '/favicon.ico') {
      res.writeHead(204).end()
      return
    }
    const file = path.startsWith('/dist/') ? join(DIST, path.slice(6)) : join(SDK_DIR, 'test', 'pages', path)
    if (!existsSync(file)) {
      res.writeHead(404).end('not found')
      return
    }
    let body = readFileSync(file)
    if (extname(file) === '.html' || (extname(file) === '.js' && !path.startsWith('/dist/'))) {
      body = body
        .toString('utf8')
        .replaceAll('{{WRITE_KEY}}', collector.writeKey)
        .replaceAll('{{HOST}}', collector.host)
        .replaceAll('{{LOADER}}', loader)
    }
    res.writeHead(200, { 'Content-Type': TYPES[extname(file)] ?? 'application/octet-stream', 'Cache-Control': 'no-store', ...headers(path) })
    res.end(body)
  })
  const port = await new Promise((ok) => server.listen(0, '127.0.0.1', () => ok(server.address().port)))
  return { origin: `http://127.0.0.1:${port}`, close: () => new Promise((ok) => server.close(ok)) }
}

export async function launchChromium() {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  })
}

/** Collects console errors and CSP violations of `page`. */
export function watchErrors(page) {
  const errors = []
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warning') errors.push(`${m.type()}: ${m.text()}`)
  })
  page.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`))
  return errors
}
