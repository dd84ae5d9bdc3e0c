// A short-lived program (a script, a serverless handler) delivers what an earlier run left in
// the disk buffer within its `shutdown()` budget, without waiting for a replay timer.
import assert from 'node:assert/strict'
import { createServer } from 'node:net'
import { join } from 'node:path'
import { after, before, test } from 'node:test'

import { Collector, PKG, runNode, tempDir, unique } from './collector.mjs'

let collector
before(async () => {
  collector = await (await Collector.create()).start()
})
after(() => collector?.stop())

const PERSIST = `
import { Client } from ${JSON.stringify(PKG)}
const [key, host, event, buffer] = process.argv.slice(1)
const client = new Client({ writeKey: key, host, diskBufferDirectory: buffer, retryMinDelay: 10, retryMaxDelay: 100 })
for (let i = 0; i < 300; i++) client.track({ userId: 'short-lived-user', event, properties: { i } })
const outcome = await client.shutdown(2_000)
console.log(JSON.stringify(outcome))
`

const DELIVER_AT_ONCE = `
import { Client } from ${JSON.stringify(PKG)}
const [key, host, buffer] = process.argv.slice(1)
const client = new Client({ writeKey: key, host, diskBufferDirectory: buffer })
const outcome = await client.shutdown(15_000)
const stats = client.stats()
console.log(JSON.stringify({ ...outcome, replayed: stats.replayedFromDisk, sent: stats.sent }))
`

/** A loopback address nothing listens on: the collector is down. */
async function closedPort() {
  const server = createServer()
  await new Promise((ok) => server.listen(0, '127.0.0.1', ok))
  const { port } = server.address()
  await new Promise((ok) => server.close(ok))
  return `http://127.0.0.1:${port}`
}

test('shutdown() at once delivers what an earlier run left on disk', async () => {
  const event = unique('short-lived')
  const buffer = join(tempDir(), 'buffer')
  const down = await runNode(PERSIST, [collector.writeKey, await closedPort(), event, buffer])
  assert.equal(down.code, 0, down.stderr)
  const persisted = JSON.parse(down.stdout)
  assert.deepEqual([persisted.persisted, persisted.lost], [300, 0], down.stdout)

  const up = await runNode(DELIVER_AT_ONCE, [collector.writeKey, collector.host, buffer])
  assert.equal(up.code, 0, up.stderr)
  assert.deepEqual(JSON.parse(up.stdout), {
    complete: true, timedOut: false, persisted: 0, lost: 0, replayed: 300, sent: 300,
  })
  const events = await collector.waitFor(300, { event }, 10_000)
  assert.deepEqual(events.map((e) => e.properties.i).sort((a, b) => a - b), [...Array(300).keys()])
})
