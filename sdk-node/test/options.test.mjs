// The options the typings document are the core's option table: the same names, and the same
// "Default …" and "at most …" figures in Node's units (the docs once said the batch limit was
// 10,000 where the core took 2,500).
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'node:test'

import { optionTable } from '../lib/index.mjs'

import { SDK_DIR } from './collector.mjs'

/** Each field of `interface ClientOptions` in the generated typings, with its doc comment. */
function documented() {
  const dts = readFileSync(join(SDK_DIR, 'native', 'index.d.ts'), 'utf8')
  const body = dts.match(/export interface ClientOptions \{\n([\s\S]*?)\n\}/)[1]
  const docs = new Map()
  for (const [, comment, name] of body.matchAll(/\/\*\*([\s\S]*?)\*\/\s*\n\s*(\w+)\??:/g)) {
    docs.set(name, comment.replace(/\s*\n\s*\*\s?/g, ' ').replace(/\s+/g, ' ').trim())
  }
  return docs
}

/** A value of the table as the typings write it: `5,000 ms`, `7 days`, `512 KiB`, `true`. */
function text(unit, value) {
  switch (unit) {
    case 'ms':
      return value >= 86_400_000 && value % 86_400_000 === 0 ? `${value / 86_400_000} days` : `${value.toLocaleString('en-US')} ms`
    case 'bytes':
      for (const [suffix, size] of [['MiB', 1 << 20], ['KiB', 1 << 10]]) {
        if (value >= size && value % size === 0) return `${value / size} ${suffix}`
      }
      return value.toLocaleString('en-US')
    case 'count':
      return value.toLocaleString('en-US')
    default:
      return `\`${value}\``
  }
}

test('the documented defaults and limits are the core option table', () => {
  const docs = documented()
  const table = optionTable()
  assert.deepEqual(
    [...docs.keys()].filter((n) => n !== 'writeKey' && n !== 'flushOnExit').sort(),
    table.map((o) => o.name).sort(),
  )
  const batch = table.find((o) => o.name === 'maxBatchMessages')
  assert.deepEqual([batch.default, batch.max], [1000, 2500])
  for (const { name, unit, default: value, max } of table) {
    const doc = docs.get(name)
    if (value !== null) assert.ok(doc.includes(`Default ${text(unit, value)}.`), `${name}: ${doc}`)
    const bounds = [...doc.matchAll(/at most ([^)]*)\)/g)].map((m) => m[1])
    assert.deepEqual(bounds, max === null ? [] : [text(unit, max)], `${name}: ${doc}`)
  }
})
