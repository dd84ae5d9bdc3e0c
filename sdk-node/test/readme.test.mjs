// The root README's Node.js snippet, run as written in a fresh process against the real
// collector: the placeholders a reader replaces ('plw_...', 'http://127.0.0.1:8080') are
// replaced, nothing else. It ends without a flush, so this also checks "flushes on beforeExit".
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { after, before, test } from 'node:test'

import { Collector, SDK_DIR, tempDir } from './collector.mjs'

let collector
before(async () => {
  collector = await (await Collector.create()).start()
})
after(() => collector?.stop())

test("the README's Node.js snippet delivers its event", async () => {
  const readme = readFileSync(join(SDK_DIR, '..', 'README.md'), 'utf8')
  const blocks = [...readme.matchAll(/^```js\n([\s\S]*?)^```$/gm)].map((m) => m[1])
  assert.equal(blocks.length, 1, "expected the one JavaScript snippet of README.md")
  const code = blocks[0].replaceAll('plw_...', collector.writeKey).replaceAll('http://127.0.0.1:8080', collector.host)
  const home = tempDir()
  // CommonJS, as written; run inside the package so `require('pulseline')` resolves to it.
  const child = spawn(process.execPath, ['-e', code], {
    cwd: SDK_DIR,
    env: { ...process.env, NODE_PATH: '', HOME: home, TMPDIR: home, XDG_CACHE_HOME: home },
  })
  let stderr = ''
  child.stderr.on('data', (d) => (stderr += d))
  const exit = await new Promise((ok) => child.on('exit', (c) => ok(c)))
  assert.equal(exit, 0, stderr)
  const events = await collector.waitFor(1, { user_id: 'user-42', event: 'Signed Up' }, 20_000)
  assert.equal(events.length, 1)
  assert.deepEqual(events[0].properties, { plan: 'pro' })
})
