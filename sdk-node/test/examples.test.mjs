// Runs examples/node-* against the real collector, as a user would.
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { after, before, test } from 'node:test'

import { Collector, SDK_DIR } from './collector.mjs'

const EXAMPLE = join(SDK_DIR, '..', 'examples', 'node-server')
let collector
before(async () => {
  collector = await (await Collector.create()).start()
})
after(() => collector?.stop())

test('examples/node-server records signups and page views, and delivers them on SIGTERM', async () => {
  assert.ok(existsSync(join(EXAMPLE, 'node_modules', 'pulseline')), 'run `npm install` in examples/node-server first')
  const server = spawn(process.execPath, ['server.mjs'], {
    cwd: EXAMPLE,
    env: { ...process.env, PULSELINE_WRITE_KEY: collector.writeKey, PULSELINE_HOST: collector.host, PORT: '0' },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let stdout = ''
  let stderr = ''
  server.stderr.on('data', (d) => (stderr += d))
  const exited = new Promise((ok) => server.on('exit', (code) => ok(code)))
  const base = await new Promise((ok, fail) => {
    server.stdout.on('data', (d) => {
      stdout += d
      const m = stdout.match(/listening on (http:\/\/127\.0\.0\.1:\d+)/)
      if (m) ok(m[1])
    })
    server.once('exit', () => fail(new Error(`server exited: ${stderr}`)))
  })

  const signup = await fetch(`${base}/signup`, { method: 'POST', body: JSON.stringify({ email: 'ada@example.com', plan: 'pro' }) })
  assert.equal(signup.status, 201)
  const { userId } = await signup.json()
  assert.equal((await fetch(`${base}/pages/pricing`, { headers: { 'x-user-id': userId } })).status, 200)
  assert.equal((await fetch(`${base}/signup`, { method: 'POST', body: '{}' })).status, 400)

  server.kill('SIGTERM')
  assert.equal(await exited, 0, stderr)
  assert.match(stdout, /analytics shut down: \{"complete":true/)
  const events = await collector.waitFor(3, { user_id: userId }, 10_000)
  const byType = Object.fromEntries(events.map((e) => [e.type, e]))
  assert.deepEqual(Object.keys(byType).sort(), ['identify', 'page', 'track'])
  assert.equal(byType.track.event, 'signup')
  assert.equal(byType.track.properties.plan, 'pro')
  assert.deepEqual(byType.identify.traits, { email: 'ada@example.com', plan: 'pro' })
  assert.equal(byType.page.name, 'pricing')
  assert.equal(byType.page.properties.path, '/pages/pricing')
})
