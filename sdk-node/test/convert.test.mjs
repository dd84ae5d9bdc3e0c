// JavaScript values to JSON: what arrives for each supported type, and the TypeError (with the
// key path) for what cannot be sent. Conversion errors are thrown at the call; nothing is sent.
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'

import { Client } from '../lib/index.mjs'
import { Collector, PKG, runNode, unique } from './collector.mjs'

let collector
let client
before(async () => {
  collector = await (await Collector.create()).start()
  client = new Client(collector.options())
})
after(async () => {
  await client?.shutdown()
  await collector?.stop()
})

async function roundTrip(properties) {
  const event = unique('convert')
  client.track({ userId: 'convert-user', event, properties })
  await client.flush()
  const [stored] = await collector.waitFor(1, { event })
  return stored.properties
}

test('plain objects, arrays, strings, numbers, booleans and null pass through unchanged', async () => {
  const properties = {
    s: 'héllo 👋 "quoted" \\ \n',
    long: 'x'.repeat(10_000),
    int: 42,
    negative: -7,
    float: 0.1 + 0.2,
    big: 2 ** 53 - 1,
    huge: 1e300,
    t: true,
    f: false,
    n: null,
    nested: { a: [1, [2, [3, { deep: 'yes' }]]], empty: {}, none: [] },
    'key with spaces': 1,
    '': 'empty key',
  }
  assert.deepEqual(await roundTrip(properties), properties)
})

test('Date is sent as ISO 8601 and BigInt as an integer with every digit', async () => {
  const event = unique('convert')
  client.track({
    userId: 'convert-user',
    event,
    properties: {
      at: new Date('2026-01-02T03:04:05.678Z'),
      dates: [new Date(0)],
      small: 12n,
      negative: -9007199254740993n,
      wide: 2n ** 100n,
      u128: 2n ** 128n - 1n,
    },
  })
  await client.flush()
  const [stored] = await collector.waitFor(1, { event })
  assert.equal(stored.properties.at, '2026-01-02T03:04:05.678Z')
  assert.deepEqual(stored.properties.dates, ['1970-01-01T00:00:00.000Z'])
  assert.equal(stored.properties.small, 12)
  // JSON.parse here would round numbers beyond 2^53: compare the digits in the answer's text.
  const text = await collector.eventsText({ event })
  assert.match(text, /"negative":-9007199254740993[,}]/)
  assert.match(text, /"wide":1267650600228229401496703205376[,}]/)
  assert.match(text, /"u128":340282366920938463463374607431768211455[,}]/)
})

test('undefined fields are left out; undefined in arrays becomes null (as JSON.stringify)', async () => {
  const stored = await roundTrip({ kept: 1, gone: undefined, list: [1, undefined, 3] })
  assert.deepEqual(stored, { kept: 1, list: [1, null, 3] })
  assert.ok(!('gone' in stored))
})

test('undefined message fields count as absent', async () => {
  const event = unique('undef')
  client.track({ userId: 'u', anonymousId: undefined, event, properties: undefined, context: undefined })
  await client.flush()
  const [stored] = await collector.waitFor(1, { event })
  assert.equal(stored.userId ?? stored.user_id, 'u')
})

test('numeric ids are sent as strings', async () => {
  const event = unique('numeric-id')
  client.track({ userId: 1234, event })
  await client.flush()
  const [stored] = await collector.waitFor(1, { event, user_id: '1234' })
  assert.equal(stored.userId ?? stored.user_id, '1234')
})

function throwsTypeError(properties, code, path, pattern) {
  const before = client.stats().captured
  assert.throws(
    () => client.track({ userId: 'u', event: 'bad', properties }),
    (e) => {
      assert.ok(e instanceof TypeError, `TypeError, got ${e}`)
      assert.equal(e.code, code)
      assert.equal(e.path, path)
      assert.match(e.message, pattern)
      return true
    },
  )
  assert.equal(client.stats().captured, before, 'nothing captured')
}

test('functions and symbols are rejected with the key path', () => {
  throwsTypeError({ a: { b: [0, () => 1] } }, 'PULSELINE_UNSUPPORTED_TYPE', 'properties.a.b[1]', /properties\.a\.b\[1\]: a function has no JSON representation/)
  throwsTypeError({ 'odd key': Symbol('s') }, 'PULSELINE_UNSUPPORTED_TYPE', 'properties["odd key"]', /: a symbol has no JSON/)
})

test('cycles are rejected, not followed forever', () => {
  const cyclic = { name: 'loop' }
  cyclic.self = cyclic
  assert.throws(
    () => client.track({ userId: 'u', event: 'bad', properties: cyclic }),
    (e) => e instanceof TypeError && e.code === 'PULSELINE_INVALID_MESSAGE' &&
      e.path.startsWith('properties.self.self') && /circular reference/.test(e.message),
  )
})

// sdk-core's one nesting rule (limits::MAX_JSON_DEPTH = 64): arrays and objects each count one
// level. Python asserts the same text in sdk-python/tests/test_convert.py.
const MAX_JSON_DEPTH = 64

// `levels` arrays and objects, alternating from an outer object, around `leaf`.
function nested(levels, leaf) {
  let value = leaf
  for (let level = levels; level >= 1; level--) value = level % 2 === 1 ? { a: value } : [value]
  return value
}

test('values nested MAX_JSON_DEPTH levels are sent, one level deeper is refused', async () => {
  const deepest = nested(MAX_JSON_DEPTH, 1)
  assert.deepEqual(await roundTrip(deepest), deepest)
  // The 65th level is an empty object: refused although it holds nothing.
  const path = 'properties.a[0].a[0].a[0]…(54 more levels)….a[0].a[0]'
  const before = client.stats().captured
  assert.throws(
    () => client.track({ userId: 'u', event: 'deep', properties: nested(MAX_JSON_DEPTH, {}) }),
    (e) => {
      assert.ok(e instanceof TypeError, `TypeError, got ${e}`)
      assert.equal(e.code, 'PULSELINE_INVALID_MESSAGE')
      assert.equal(e.path, path)
      assert.equal(e.message, `${path}: nested more than 64 levels of arrays and objects ` +
        '(limits::MAX_JSON_DEPTH; a circular reference?)')
      return true
    },
  )
  assert.equal(client.stats().captured, before, 'nothing captured')
})

test('NaN, Infinity and invalid dates are rejected', () => {
  throwsTypeError({ ratio: NaN }, 'PULSELINE_INVALID_MESSAGE', 'properties.ratio', /NaN and infinities have no JSON representation/)
  throwsTypeError({ list: [Infinity] }, 'PULSELINE_INVALID_MESSAGE', 'properties.list[0]', /NaN and infinities have no JSON representation/)
  throwsTypeError({ at: new Date('nope') }, 'PULSELINE_INVALID_MESSAGE', 'properties.at', /invalid Date/)
})

test('a throwing getter propagates its own exception', () => {
  const boom = new Error('boom')
  assert.throws(
    () => client.track({ userId: 'u', event: 'e', properties: { get x() { throw boom } } }),
    (e) => e === boom,
  )
})

// A JavaScript string can hold a lone surrogate (an emoji sliced in half); UTF-8 and JSON text
// cannot. Both capture paths send U+FFFD, as Node-API reads it and the browser SDK writes it,
// in values, keys, ids and names; a fast-path batch holding one loses nothing else.
const SURROGATES = `
import { Client } from ${JSON.stringify(PKG)}
const [key, host, event] = process.argv.slice(1)
const client = new Client({ writeKey: key, host, diskBuffer: false, flushInterval: 60_000 })
const message = (path) => ({
  userId: 'sliced-\\ud83d',
  event: event + '-' + path + '-\\ud83d',
  properties: { s: 'a\\ud800b', ['k\\udc00']: ['\\udfff', 'ok 👋'], literal: '\\\\ud800' },
})
client.track({ userId: 'plain', event: event + '-plain' }) // the same tick as the fast one
client.track(message('fast'))
client.track({ ...message('exact'), messageId: crypto.randomUUID() }) // the native converter
const flushed = await client.flush(30_000)
console.log(JSON.stringify({ flushed, stats: client.stats() }))
await client.shutdown()
`

test('lone surrogates arrive as U+FFFD on the fast and the exact path (child process)', async () => {
  const event = unique('surrogate')
  const child = await runNode(SURROGATES, [collector.writeKey, collector.host, event])
  assert.equal(child.code, 0, child.stderr)
  assert.doesNotMatch(child.stderr, /PulselineWarning|could not be captured/)
  const { flushed, stats } = JSON.parse(child.stdout)
  assert.equal(flushed.status, 'flushed')
  assert.equal(stats.captured, 3)
  assert.equal(stats.sent, 3)
  assert.ok(Object.values(stats.dropped).every((n) => n === 0), JSON.stringify(stats.dropped))
  assert.equal((await collector.waitFor(1, { event: `${event}-plain` })).length, 1)
  for (const path of ['fast', 'exact']) {
    const stored = await collector.waitFor(1, { event: `${event}-${path}-\ufffd` })
    assert.equal(stored.length, 1, `${path}: stored once`)
    assert.equal(stored[0].userId ?? stored[0].user_id, 'sliced-\ufffd')
    assert.deepEqual(stored[0].properties, { s: 'a\ufffdb', 'k\ufffd': ['\ufffd', 'ok 👋'], literal: '\\ud800' })
  }
})
