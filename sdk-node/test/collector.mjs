// The real `pulseline-collector` binary on a fresh SQLite file and a free 127.0.0.1 port, and
// helpers to read back what it stored. Nothing here contacts anything but loopback.
import { execFileSync, spawn } from 'node:child_process'
import { existsSync, mkdtempSync, openSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { setTimeout as sleep } from 'node:timers/promises'

export const SDK_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '..')
const ROOT = resolve(SDK_DIR, '..')
const BIN = process.env.PULSELINE_COLLECTOR_BIN ?? join(ROOT, 'target', 'debug', 'pulseline-collector')

export function tempDir(prefix = 'pulseline-node-') {
  return mkdtempSync(join(tmpdir(), prefix))
}

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
    c.workdir = tempDir('pulseline-collector-')
    c.port = await freePort()
    c.host = `http://127.0.0.1:${c.port}`
    const keys = JSON.parse(c.#run('project', 'create', '--name', 'node-sdk-tests', '--json'))
    c.writeKey = keys.write_key
    c.secretKey = keys.secret_key
    return c
  }

  #env() {
    return {
      ...process.env,
      PULSELINE_DATABASE_URL: `sqlite://${join(this.workdir, 'pulseline.db')}`,
      PULSELINE_LISTEN: `127.0.0.1:${this.port}`,
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

  async #get(path, params) {
    const url = `${this.host}${path}?${new URLSearchParams(params)}`
    const response = await fetch(url, { headers: { Authorization: `Bearer ${this.secretKey}` } })
    if (!response.ok) throw new Error(`${url}: ${response.status} ${await response.text()}`)
    return response.json()
  }

  /** The read API's answer as text: numbers with every digit the collector returned. */
  async eventsText(params = {}) {
    const url = `${this.host}/api/v1/events?${new URLSearchParams({ limit: 1000, ...params })}`
    const response = await fetch(url, { headers: { Authorization: `Bearer ${this.secretKey}` } })
    if (!response.ok) throw new Error(`${url}: ${response.status} ${await response.text()}`)
    return response.text()
  }

  /** Every stored event matching `params` (event, user_id), following next_cursor. */
  async events(params = {}) {
    const events = []
    const query = { limit: 1000, ...params }
    for (;;) {
      const page = await this.#get('/api/v1/events', query)
      events.push(...page.events)
      if (!page.next_cursor) return events
      query.cursor = page.next_cursor
    }
  }

  /** The matching events once there are at least `count`, or what is there at the deadline. */
  async waitFor(count, params, timeoutMs = 20_000) {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      const events = await this.events(params)
      if (events.length >= count || Date.now() > deadline) return events
      await sleep(100)
    }
  }

  /** Options pointing a client at this collector with its own disk buffer. */
  options(extra = {}) {
    return { writeKey: this.writeKey, host: this.host, diskBufferDirectory: tempDir(), flushInterval: 50, ...extra }
  }
}

let counter = 0
/** An event name no other test uses. */
export function unique(name) {
  return `${name}-${process.pid}-${Date.now()}-${counter++}`
}

/** Runs `node --input-type=module -e script ...args` with the package importable as `pulseline`. */
export function runNode(script, args = [], options = {}) {
  return new Promise((ok) => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', script, ...args], {
      cwd: SDK_DIR,
      env: { ...process.env, NODE_PATH: '' },
      ...options,
    })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d) => (stdout += d))
    child.stderr.on('data', (d) => (stderr += d))
    child.on('exit', (code, signal) => ok({ code, signal, stdout, stderr }))
  })
}

export const PKG = join(SDK_DIR, 'lib', 'index.mjs')
