// The loader snippet is pasted into every page's <head>: it must stay within its budget.
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'node:test'
import { brotliCompressSync, constants } from 'node:zlib'
import { DIST } from './harness.mjs'

/** The loader's size budget, brotli-compressed (quality 11). */
const LOADER_MAX_BROTLI_BYTES = 1024

test('the loader snippet is at most 1 KB brotli', () => {
  const loader = readFileSync(join(DIST, 'loader.js'))
  const size = brotliCompressSync(loader, { params: { [constants.BROTLI_PARAM_QUALITY]: 11 } }).length
  assert.ok(size <= LOADER_MAX_BROTLI_BYTES, `loader.js is ${size} bytes brotli (budget ${LOADER_MAX_BROTLI_BYTES})`)
  // It must not load anything before the page's load event, and loads the SDK as a module.
  const text = loader.toString('utf8')
  assert.match(text, /addEventListener\("load"/)
  assert.match(text, /type="module"/)
})
