// The browser SDK's conversion of properties and traits (js/convert.js), in Node: every case
// of test/conversion-cases.json gives exactly its JSON text or its error. The same table's
// messages are checked against the core's ConversionFailure::message and JsonPath::render (and
// the Node SDK's wording) by sdk-core's tests (conversion.rs), so the three cannot drift apart.
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { test } from 'node:test'
import { toJson } from '../js/convert.js'

const { cases } = JSON.parse(readFileSync(new URL('conversion-cases.json', import.meta.url), 'utf8'))

for (const { name, argument = 'properties', value, json, error } of cases) {
  test(name, () => {
    const input = (0, eval)(value)
    const started = performance.now()
    let output
    let thrown
    try {
      output = toJson(argument, input)
    } catch (e) {
      thrown = e
    }
    // Bounded by the 32 KiB budget whatever the input's shape.
    assert.ok(performance.now() - started < 1000, `took ${performance.now() - started} ms`)
    if (json === undefined) {
      assert.ok(thrown instanceof Error, `converted to ${output?.slice(0, 200)}`)
      assert.equal(thrown.message, error)
    } else {
      assert.equal(thrown, undefined)
      assert.equal(output, json)
      JSON.parse(output)
    }
  })
}

test('a page\'s own fields come first, overridden or left out by the caller\'s', () => {
  const base = { url: 'https://shop.example/a', path: '/a', title: 'A' }
  assert.equal(toJson('properties', { title: 'Mine', path: undefined, extra: 1 }, base),
    '{"url":"https://shop.example/a","title":"Mine","extra":1}')
  assert.equal(toJson('properties', undefined, base), '{"url":"https://shop.example/a","path":"/a","title":"A"}')
  // Only at the top: a nested object is the caller's alone.
  assert.equal(toJson('properties', { nested: {} }, { url: 'u' }), '{"url":"u","nested":{}}')
})

test('a value is read once, and a refused one leaves no state behind', () => {
  let reads = 0
  const value = { get n() { reads += 1; return 1 } }
  assert.equal(toJson('traits', value), '{"n":1}')
  assert.equal(reads, 1)
  assert.throws(() => toJson('traits', { n: NaN }), /^Error: traits\.n: NaN/)
  assert.equal(toJson('traits', { n: 2 }), '{"n":2}')
})
