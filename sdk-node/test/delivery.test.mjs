// Events reach the real collector once, with every field intact.
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { existsSync } from 'node:fs'
import { createRequire } from 'node:module'

import { Client } from '../lib/index.mjs'

import { Collector, tempDir, unique } from './collector.mjs'

const { version } = createRequire(import.meta.url)('../package.json')
let collector
before(async () => {
  collector = await (await Collector.create()).start()
})
after(() => collector?.stop())

test('the CommonJS and ESM entries are the same module', () => {
  const cjs = createRequire(import.meta.url)('../lib/index.js')
  assert.equal(cjs.Client, Client)
  assert.equal(cjs.default, Client)
})

test('a track arrives once with its fields intact', async () => {
  const client = new Client(collector.options())
  const event = unique('signup')
  const properties = { plan: 'pro', seats: 3, price: 9.5, nested: { ok: true, list: [1, 'two', null] } }
  const context = { ip: '127.0.0.1', locale: 'fr-FR' }
  assert.equal(client.track({
    userId: 'user-42',
    anonymousId: 'anon-7',
    event,
    properties,
    timestamp: new Date('2026-03-04T05:06:07.891Z'),
    context,
  }), undefined)
  // The call keeps a copy: changing the object's fields afterwards does not change the event.
  properties.plan = 'changed after the call'
  delete properties.seats
  context.ip = '10.0.0.1'
  assert.deepEqual(await client.flush(), { status: 'flushed', messages: 0 })
  const events = await collector.waitFor(1, { event })
  assert.equal(events.length, 1)
  const [stored] = events
  assert.equal(stored.type, 'track')
  assert.match(stored.messageId, /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}$/)
  assert.equal(stored.userId ?? stored.user_id, 'user-42')
  assert.equal(stored.anonymousId ?? stored.anonymous_id, 'anon-7')
  assert.deepEqual(stored.properties, { plan: 'pro', seats: 3, price: 9.5, nested: { ok: true, list: [1, 'two', null] } })
  assert.ok(stored.timestamp.startsWith('2026-03-04T05:06:07.891'), stored.timestamp)
  assert.equal(stored.context.ip, undefined, 'the raw IP is not stored unless PULSELINE_STORE_IP')
  assert.equal(stored.context.locale, 'fr-FR')
  assert.deepEqual(stored.context.library, { name: 'pulseline-node', version })
  const stats = client.stats()
  assert.equal(stats.captured, 1)
  assert.equal(stats.sent, 1)
  assert.equal(stats.dropped.total, 0)
  assert.deepEqual(await client.shutdown(), { complete: true, timedOut: false, persisted: 0, lost: 0 })
  client.track({ userId: 'u', event })
  assert.equal(client.stats().captured, 1, 'a shut-down client ignores captures')
})

test('identify, page, screen, group and alias arrive with their fields', async () => {
  const client = new Client(collector.options())
  const user = unique('user')
  client.identify({ userId: user, traits: { email: 'ada@example.com' } })
  client.page({ userId: user, name: 'Pricing', properties: { path: '/pricing' } })
  client.screen({ userId: user, name: 'Settings' })
  client.group({ userId: user, groupId: 'acme', traits: { seats: 12 } })
  client.alias({ userId: user, previousId: 'anon-7' })
  await client.shutdown()
  const all = await collector.waitFor(5, { user_id: user }, 10_000)
  assert.equal(all.length, 5)
  const stored = Object.fromEntries(all.map((e) => [e.type, e]))
  assert.deepEqual(Object.keys(stored).sort(), ['alias', 'group', 'identify', 'page', 'screen'])
  assert.deepEqual(stored.identify.traits, { email: 'ada@example.com' })
  assert.equal(stored.page.name, 'Pricing')
  assert.equal(stored.screen.name, 'Settings')
  assert.deepEqual(stored.page.properties, { path: '/pricing' })
  assert.equal(stored.group.groupId, 'acme')
  assert.equal(stored.alias.previousId, 'anon-7')
  assert.equal(client.stats().sent, 5)
})

test('a custom messageId is kept, and a message sent twice with it is stored once', async () => {
  const client = new Client(collector.options())
  const event = unique('backfill')
  const messageId = '0190b2a4-7c1e-7d4f-9a51-' + Date.now().toString(16).padStart(12, '0').slice(-12)
  client.track({ userId: 'u', event, messageId, properties: { n: 1 } })
  client.track({ userId: 'u', event, messageId, properties: { n: 1 } })
  await client.shutdown()
  const events = await collector.waitFor(1, { event })
  await new Promise((ok) => setTimeout(ok, 200))
  const again = await collector.waitFor(1, { event })
  assert.equal(again.length, 1)
  assert.equal(events[0].messageId, messageId)
})

test('a thousand events arrive exactly once', async () => {
  const client = new Client(collector.options({ maxBatchMessages: 100 }))
  const event = unique('burst')
  for (let i = 0; i < 1000; i++) client.track({ userId: `user-${i % 10}`, event, properties: { i } })
  await client.shutdown()
  const events = await collector.waitFor(1000, { event })
  assert.deepEqual(events.map((e) => e.properties.i).sort((a, b) => a - b), [...Array(1000).keys()])
})

test('onError receives delivery errors and onDrop counts the drop (a revoked key)', async () => {
  const errors = []
  const drops = []
  const client = new Client({
    ...collector.options({ writeKey: 'plw_not_a_real_key', diskBuffer: false }),
    onError: (e) => errors.push(e),
    onDrop: (reason, count) => drops.push([reason, count]),
  })
  client.track({ userId: 'u', event: unique('refused') })
  await client.flush()
  await new Promise((ok) => setImmediate(ok))
  assert.ok(errors.length >= 1, 'onError called')
  assert.ok(errors[0] instanceof Error)
  assert.equal(errors[0].code, 'PULSELINE_HTTP')
  assert.equal(errors[0].status, 401)
  assert.deepEqual(drops, [['client_error', 1]])
  assert.equal(client.stats().dropped.clientError, 1)
  await client.shutdown()
})

test('flush() resolves "dropped", not "flushed", when the collector refuses the batch', async () => {
  // An unknown key: the collector answers 401, a client error that retrying cannot fix.
  const client = new Client(collector.options({ writeKey: 'plw_not_a_real_key', onError: () => {} }))
  client.track({ userId: 'u', event: unique('refused') })
  client.track({ userId: 'u', event: unique('refused') })
  assert.deepEqual(await client.flush(), { status: 'dropped', messages: 2 })
  assert.equal(client.stats().dropped.clientError, 2)
  // Nothing new since: the next flush has nothing to report.
  assert.deepEqual(await client.flush(), { status: 'flushed', messages: 0 })
  await client.shutdown()
})

test('serverless: await client.flush() per invocation delivers before the handler returns', async () => {
  const client = new Client(collector.options({ flushInterval: 60_000 }))
  const event = unique('lambda')
  const handler = async (i) => {
    client.track({ userId: 'fn-user', event, properties: { i } })
    return client.flush()
  }
  for (let i = 0; i < 3; i++) assert.equal((await handler(i)).status, 'flushed')
  // Counted straight away: the flush resolved only once the collector acknowledged.
  assert.equal((await collector.events({ event })).length, 3)
  await client.shutdown()
})

test('a disabled client sends nothing and writes no disk buffer', async () => {
  const user = unique('disabled')
  const diskBufferDirectory = `${tempDir()}/buffer`
  const client = new Client(collector.options({ disabled: true, diskBufferDirectory }))
  assert.equal(client.disabled, true)
  client.track({ userId: user, event: 'signup', properties: { plan: 'pro' } })
  client.identify({ userId: user, traits: { email: 'ada@example.com' } })
  // Messages are still checked, as by a client that sends.
  assert.throws(() => client.track({ event: 'no id' }), { code: 'PULSELINE_INVALID_MESSAGE' })
  client.optIn() // cannot undo `disabled`
  client.track({ userId: user, event: 'after opt-in' })
  assert.deepEqual(await client.flush(), { status: 'flushed', messages: 0 })
  const stats = client.stats()
  assert.deepEqual([stats.captured, stats.sent, stats.dropped.optedOut], [3, 0, 3])
  assert.equal((await client.shutdown()).complete, true)
  // A working client's marker arrives, so the disabled client's events had time to arrive too.
  const other = new Client(collector.options())
  other.track({ userId: user, event: 'marker' })
  await other.shutdown()
  await collector.waitFor(1, { user_id: user, event: 'marker' })
  assert.deepEqual((await collector.events({ user_id: user })).map((e) => e.event), ['marker'])
  assert.equal(existsSync(diskBufferDirectory), false)
})

test('optOut() drops captures from the call on and optIn() resumes', async () => {
  const user = unique('optout')
  const client = new Client(collector.options())
  // Same tick: the message before optOut() is sent, the one after it is dropped.
  client.track({ userId: user, event: 'before' })
  client.optOut()
  assert.equal(client.optedOut, true)
  client.track({ userId: user, event: 'while opted out' })
  client.page({ userId: user, name: 'Pricing' })
  assert.deepEqual(await client.flush(), { status: 'flushed', messages: 0 })
  client.optIn()
  assert.equal(client.optedOut, false)
  client.track({ userId: user, event: 'after' })
  assert.deepEqual(await client.flush(), { status: 'flushed', messages: 0 })
  const stats = client.stats()
  assert.deepEqual([stats.captured, stats.sent, stats.dropped.optedOut], [4, 2, 2])
  await client.shutdown()
  const stored = await collector.waitFor(2, { user_id: user })
  assert.deepEqual(stored.map((e) => e.event).sort(), ['after', 'before'])
})

test('a messageId is any non-empty string of up to 200 characters, stored as given', async () => {
  const client = new Client(collector.options())
  const event = unique('order_paid')
  const ids = ['order-1042', `${'é'.repeat(199)}x`, '0192F1A4-5B6C-7D8E-9F00-112233445566']
  for (const messageId of ids) client.track({ userId: 'user-42', event, messageId })
  for (const messageId of ['', 'é'.repeat(201)]) {
    assert.throws(() => client.track({ userId: 'user-42', event, messageId }), (e) =>
      e.code === 'PULSELINE_INVALID_MESSAGE' && e.field === 'messageId')
  }
  assert.deepEqual(await client.shutdown(), { complete: true, timedOut: false, persisted: 0, lost: 0 })
  const stored = await collector.waitFor(3, { event })
  assert.deepEqual(stored.map((e) => e.messageId).sort(), [...ids].sort())
})

test('ids and names over the collector limits throw at the call; the rest of the batch arrives', async () => {
  const client = new Client(collector.options())
  const event = unique('limits')
  const long = 'u'.repeat(201)
  const cases = [
    [() => client.track({ userId: long, event }), 'userId', /userId must be at most 200 characters/],
    [() => client.track({ anonymousId: long, event }), 'anonymousId', /at most 200 characters/],
    [() => client.group({ userId: 'u', groupId: long }), 'groupId', /at most 200 characters/],
    [() => client.alias({ userId: 'u', previousId: long }), 'previousId', /at most 200 characters/],
    [() => client.track({ userId: 'u', event: 'e'.repeat(201) }), 'event', /at most 200 characters/],
    [() => client.track({ userId: 'u', event: '   ' }), 'event', /whitespace/],
    [() => client.page({ userId: 'u', name: 'n'.repeat(201) }), 'name', /at most 200 characters/],
  ]
  for (const [call, field, message] of cases) {
    assert.throws(call, (e) => e.code === 'PULSELINE_INVALID_MESSAGE' && e.field === field && message.test(e.message), field)
  }
  // At the limit (in characters, not UTF-16 units or bytes) is fine.
  client.track({ userId: '🙂'.repeat(200), anonymousId: 'a'.repeat(200), event })
  client.track({ userId: 'user-ok', event })
  assert.equal(client.stats().dropped.total, 0)
  assert.deepEqual(await client.shutdown(), { complete: true, timedOut: false, persisted: 0, lost: 0 })
  const stored = await collector.waitFor(2, { event })
  assert.deepEqual(stored.map((e) => e.userId ?? e.user_id).sort(), ['user-ok', '🙂'.repeat(200)].sort())
})
