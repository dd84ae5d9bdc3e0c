// The browser SDK's converter against the Node SDK itself: every case of
// test/conversion-cases.json through js/convert.js and through the Node SDK's `track` or
// `identify` (its built addon, sdk-node/native/pulseline.<platform>.node, sending to a loopback
// stand-in), with the same JSON stored and the same error text, or the difference the table
// states in `nodeError`. Run by scripts/test.sh (group node) right after the addon is built;
// not named *.test.mjs, as the browser group has no addon.
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { createServer } from 'node:http'
import { createRequire } from 'node:module'
import { after, before, test } from 'node:test'
import { toJson } from '../js/convert.js'

const { Client } = createRequire(import.meta.url)('../../sdk-node/lib/index.js')
const { cases } = JSON.parse(readFileSync(new URL('conversion-cases.json', import.meta.url), 'utf8'))

/** @type {string[]} request bodies received */
const bodies = []
const server = createServer((request, response) => {
  let body = ''
  request.on('data', (chunk) => { body += chunk })
  request.on('end', () => {
    bodies.push(body)
    response.setHeader('content-type', 'application/json')
    response.end('{"success":true}')
  })
})
let client

before(async () => {
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  client = new Client({ writeKey: 'plw_parity', host: `http://127.0.0.1:${server.address().port}`, gzip: false })
})

after(async () => {
  await client?.shutdown(10_000)
  server.close()
})

let sequence = 0

/**
 * What the Node SDK did with `value`: the JSON it sent (reparsed; absent is `{}`, which the
 * browser always sends) or its error's message. A `messageId` of our own sends the call
 * through the native converter (sdk-node/src/convert.rs) at once, not through the JavaScript
 * fast path that batches plain values first.
 */
async function node(name, argument, value) {
  const messageId = `00000000-0000-7000-8000-${String(++sequence).padStart(12, '0')}`
  try {
    if (argument === 'traits') client.identify({ userId: name, messageId, traits: value ?? undefined })
    else client.track({ userId: 'parity', event: name, messageId, properties: value ?? undefined })
  } catch (error) {
    return { error: error instanceof Error ? error.message : '(not an Error)' }
  }
  assert.equal((await client.flush(10_000)).completed ?? true, true)
  const sent = bodies.splice(0).flatMap((body) => JSON.parse(body).batch)
  const message = sent.find((m) => m.messageId === messageId)
  assert.ok(message, `${name}: the Node SDK sent nothing`)
  return { json: JSON.stringify(message[argument] ?? {}) }
}

for (const { name, argument = 'properties', value, json, error, nodeError } of cases) {
  test(name, async () => {
    let browser
    try {
      browser = { json: JSON.stringify(JSON.parse(toJson(argument, (0, eval)(value)))) }
    } catch (e) {
      browser = { error: e.message }
    }
    assert.deepEqual(browser, json === undefined ? { error } : { json: JSON.stringify(JSON.parse(json)) })
    const got = await node(name, argument, (0, eval)(value))
    if (nodeError === undefined) return assert.deepEqual(got, browser)
    const pattern = new RegExp(`^${nodeError.replace(/[.*+?^${}()|[\]\\]/g, (c) => c === '*' ? '.*' : `\\${c}`)}$`)
    assert.match(got.error ?? `converted to ${got.json}`, pattern)
  })
}
