// What the caller gets wrong is thrown at once, as a TypeError/RangeError with a stable `code`
// and the field at fault; nothing is captured. No collector is needed: nothing is sent.
import assert from 'node:assert/strict'
import { after, test } from 'node:test'

import { Client } from '../lib/index.mjs'
import { tempDir } from './collector.mjs'

// Port 9 (discard) on loopback: nothing listens, and nothing is ever sent by these tests.
const client = new Client({ writeKey: 'plw_test', host: 'http://127.0.0.1:9', diskBuffer: false })
after(() => client.shutdown(0))

function rejects(call, { name = 'TypeError', code, field, message }) {
  const before = client.stats().captured
  assert.throws(call, (e) => {
    assert.equal(e.name, name, e.stack)
    assert.equal(e.code, code)
    if (field !== undefined) assert.equal(e.field, field)
    if (message) assert.match(e.message, message)
    return true
  })
  assert.equal(client.stats().captured, before)
}

test('a message without userId or anonymousId', () => {
  rejects(() => client.track({ event: 'signup' }), {
    code: 'PULSELINE_INVALID_MESSAGE',
    field: 'userId',
    message: /userId or anonymousId is required/,
  })
  rejects(() => client.track({ userId: '', event: 'signup' }), { code: 'PULSELINE_INVALID_MESSAGE', field: 'userId' })
})

test('a track without an event', () => {
  rejects(() => client.track({ userId: 'u' }), { code: 'PULSELINE_INVALID_MESSAGE', field: 'event', message: /event must not be empty/ })
})

test('fields of the wrong type, and unknown fields, are named', () => {
  rejects(() => client.track({ userId: 'u', event: 42 }), { code: 'PULSELINE_INVALID_MESSAGE', field: 'event', message: /event must be a string, not a number/ })
  rejects(() => client.track({ userId: {}, event: 'e' }), { code: 'PULSELINE_INVALID_MESSAGE', field: 'userId' })
  rejects(() => client.track({ userId: 'u', event: 'e', properties: [1, 2] }), { code: 'PULSELINE_INVALID_MESSAGE', field: 'properties', message: /plain object/ })
  rejects(() => client.track({ userID: 'u', event: 'e' }), { code: 'PULSELINE_INVALID_MESSAGE', field: 'userID', message: /unknown field "userID"/ })
  rejects(() => client.track('signup'), { code: 'PULSELINE_INVALID_MESSAGE', message: /takes a message object/ })
  rejects(() => client.track({ userId: 'u', event: 'e', messageId: '' }), { code: 'PULSELINE_INVALID_MESSAGE', field: 'messageId' })
  rejects(() => client.track({ userId: 'u', event: 'e', timestamp: 'yesterday' }), { code: 'PULSELINE_INVALID_MESSAGE', field: 'timestamp' })
  rejects(() => client.group({ userId: 'u' }), { code: 'PULSELINE_INVALID_MESSAGE', field: 'groupId' })
  rejects(() => client.alias({ previousId: 'a' }), { code: 'PULSELINE_INVALID_MESSAGE', field: 'userId' })
  rejects(() => client.identify({ userId: 'u', traits: { f() {} } }), { code: 'PULSELINE_UNSUPPORTED_TYPE' })
  rejects(() => client.track({ userId: 'u', event: 'e', context: { fn() {} } }), { code: 'PULSELINE_UNSUPPORTED_TYPE' })
})

test('a message above the collector limit is a RangeError with its size', () => {
  rejects(() => client.track({ userId: 'u', event: 'e', properties: { blob: 'x'.repeat(40_000) } }), {
    name: 'RangeError',
    code: 'PULSELINE_MESSAGE_TOO_LARGE',
    message: /above the \d+-byte limit/,
  })
})

test('valid timestamps (Date, ISO string, epoch milliseconds) and a custom messageId are accepted', () => {
  const id = '0190b2a4-7c1e-7d4f-9a51-3c2f7e8b9d10'
  const before = client.stats().captured
  client.track({ userId: 'u', event: 'e', timestamp: '2026-01-02T03:04:05Z', messageId: id })
  client.track({ userId: 'u', event: 'e', timestamp: Date.now() })
  client.track({ userId: 'u', event: 'e', timestamp: new Date() })
  assert.equal(client.stats().captured, before + 3)
})

test('invalid options throw PULSELINE_CONFIG naming the option', () => {
  assert.throws(() => new Client({ writeKey: 'k', flushInterval: -1 }), (e) => e.name === 'RangeError' && e.code === 'PULSELINE_CONFIG' && e.option === 'flushInterval')
  assert.throws(() => new Client({ writeKey: 'k', maxBatchMessages: 1.5 }), (e) => e.code === 'PULSELINE_CONFIG' && /maxBatchMessages must be a non-negative integer/.test(e.message))
  assert.throws(() => new Client({ writeKey: 'k', host: 'not a url' }), (e) => e.code === 'PULSELINE_CONFIG')
  assert.throws(() => new Client({}), TypeError)
  assert.throws(() => new Client({ writeKey: 'k', gzip: 'yes' }), TypeError)
})

test('flush and shutdown report what happened when the collector is unreachable', async () => {
  const dir = tempDir()
  const c = new Client({ writeKey: 'plw_test', host: 'http://127.0.0.1:9', diskBufferDirectory: dir, retryMinDelay: 10, retryMaxDelay: 20 })
  c.track({ userId: 'u', event: 'offline' })
  const flushed = await c.flush(200)
  assert.equal(flushed.status, 'timed_out')
  assert.equal(flushed.messages, 1)
  const done = await c.shutdown(100)
  assert.equal(done.complete, false)
  assert.equal(done.persisted + done.lost, 1)
})
