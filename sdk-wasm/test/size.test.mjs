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

/**
 * The SDK loaded after the page's load event, brotli (quality 11). pulseline.js (the API and the
 * wasm-bindgen glue) + pulseline_bg.wasm must stay within the 60 KB target (59.6 KB
 * measured, README.md "Size"). web-vitals.js, Google's library, is its own module, loaded only
 * with Web Vitals on (the default); it and the whole download have guards at the measured size
 * plus a little headroom.
 */
const SDK_MAX_BROTLI_BYTES = 60 * 1024
const WEB_VITALS_MAX_BROTLI_BYTES = 5.5 * 1024
const SDK_WITH_WEB_VITALS_MAX_BROTLI_BYTES = 65 * 1024

const brotli = (file) =>
  brotliCompressSync(readFileSync(join(DIST, file)), { params: { [constants.BROTLI_PARAM_QUALITY]: 11 } }).length

test('the SDK (module + wasm) stays within the 60 KB target', () => {
  const size = brotli('pulseline.js') + brotli('pulseline_bg.wasm')
  assert.ok(size <= SDK_MAX_BROTLI_BYTES, `pulseline.js + wasm is ${size} bytes brotli (target ${SDK_MAX_BROTLI_BYTES})`)
  const vitals = brotli('web-vitals.js')
  assert.ok(vitals <= WEB_VITALS_MAX_BROTLI_BYTES, `web-vitals.js is ${vitals} bytes brotli (guard ${WEB_VITALS_MAX_BROTLI_BYTES})`)
  assert.ok(size + vitals <= SDK_WITH_WEB_VITALS_MAX_BROTLI_BYTES,
    `pulseline.js + wasm + web-vitals.js is ${size + vitals} bytes brotli (guard ${SDK_WITH_WEB_VITALS_MAX_BROTLI_BYTES})`)
  // web-vitals is imported from its own module, not bundled into pulseline.js.
  const module = readFileSync(join(DIST, 'pulseline.js'), 'utf8')
  assert.match(module, /import\("\.\/web-vitals\.js"\)/)
  assert.ok(!module.includes('PerformanceObserver'), 'web-vitals is bundled into pulseline.js again')
  // No float parser tables or core::fmt float printing crept back in (see README "Size").
  const wasm = readFileSync(join(DIST, 'pulseline_bg.wasm'))
  assert.ok(!wasm.includes('floating point `'), 'serde type-error formatting is linked again')
  // Built with std from source and panic=immediate-abort (build.sh): no panic locations, whose
  // source file paths would show here.
  assert.ok(!/[a-z_]+\/src\/[a-z_/]+\.rs/.test(wasm.toString('latin1')),
    'panic locations (source paths) are in the wasm: was it built without -Zbuild-std (build.sh)?')
})
