// Values a page passes as properties and traits, in headless Chromium against the real
// collector: converted by the core's rules (as the Node SDK converts them), a value with no JSON
// form costs that one call (a console warning naming its path, nothing sent, no exception into
// the page), and the events around it are stored exactly as sent.
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { Collector, launchChromium, pageServer } from './harness.mjs'

let collector
let browser
let pages

before(async () => {
  collector = await (await Collector.create()).start()
  browser = await launchChromium()
  pages = await pageServer(collector)
})

after(async () => {
  await pages?.close()
  await browser?.close()
  await collector?.stop()
})

const tag = Math.random().toString(36).slice(2, 8)

/**
 * Each refused value (built in the page by `make`, which gets the page's `window`), the
 * warning it must give, and the method that sends it.
 */
const REFUSED = {
  NaN: ['() => ({ n: NaN })', 'properties.n: NaN and infinities have no JSON representation'],
  Infinity: ['() => ({ list: [1, -Infinity] })', 'properties.list[1]: NaN and infinities have no JSON representation'],
  'a BigInt over 128 bits': ['() => ({ id: 2n ** 128n })', 'properties.id: an integer wider than 128 bits'],
  'a Map': ['() => ({ m: new Map([["a", 1]]) })',
    'properties.m: a Map (send Object.fromEntries(map)) has no JSON representation (supported: plain objects, arrays, strings, numbers, booleans, null, Date, BigInt)'],
  'a Set': ['() => ({ s: new Set([1]) })', 'properties.s: a Set (send [...set]) has no JSON representation'],
  'a Uint8Array': ['() => ({ "the bytes": new Uint8Array([1, 2]) })',
    'properties["the bytes"]: a typed array (send an encoding, e.g. base64) has no JSON representation'],
  'an ArrayBuffer': ['() => ({ b: new ArrayBuffer(4) })', 'properties.b: an ArrayBuffer (send an encoding, e.g. base64) has no JSON representation'],
  'a Promise': ['() => ({ p: Promise.resolve(1) })', 'properties.p: a Promise (await it first) has no JSON representation'],
  'a function': ['() => ({ items: [{ f() {} }] })', 'properties.items[0].f: a function has no JSON representation'],
  'a symbol': ['() => ({ s: Symbol("x") })', 'properties.s: a symbol has no JSON representation'],
  'an invalid Date': ['() => ({ d: new Date("nope") })', 'properties.d: an invalid Date'],
  'a cycle': ['() => { const n = { a: 1 }; n.self = n; return { n } }',
    'properties.n.self.self.self.self.self…(54 more levels)….self.self.self.self: nested more than 64 levels of arrays and objects (limits::MAX_JSON_DEPTH; a circular reference?)'],
  'a DAG of depth 24': ['() => { let d = { leaf: 1 }; for (let i = 0; i < 24; i++) d = { a: d, b: d }; return { dag: d } }',
    /^pulseline: message is above the 32768-byte limit \(conversion stopped at properties\.dag\.a\.a\.a\.a\.a…\(\d+ more levels\)…(\.[ab]){4}\); trim properties or traits$/],
  'a sparse array of four billion elements': ['() => { const a = []; a[2 ** 32 - 2] = 1; return { a } }',
    /^pulseline: message is above the 32768-byte limit \(conversion stopped at properties\.a\[\d+\]\)/],
  'a toJSON that throws': ['() => ({ when: { toJSON() { throw new Error("toJSON") } } })',
    'properties.when.toJSON: a function has no JSON representation'],
  'a getter that throws': ['() => { const x = { ok: 1 }; Object.defineProperty(x, "g", { enumerable: true, get() { throw new Error("getter") } }); return { nested: x } }',
    'properties.nested.g: reading it threw Error: getter (a getter or Proxy of the page\'s code)'],
  'a Proxy whose ownKeys trap throws': ['() => ({ p: new Proxy({}, { ownKeys() { throw new TypeError("trap") } }) })',
    'properties.p: reading it threw TypeError: trap (a getter or Proxy of the page\'s code)'],
  // Its text is not spliced into the JSON: it is an object, and its toString a function.
  'an object posing as a Number': ['() => ({ n: { [Symbol.toStringTag]: "Number", toString() { return \'1,"admin":true\' } } })',
    'properties.n.toString: a function has no JSON representation'],
  'traits with NaN (identify)': ['() => ({ score: NaN })', 'traits.score: NaN and infinities have no JSON representation', 'identify'],
  'traits with a Map (group)': ['() => ({ m: new Map() })', 'traits.m: a Map (send Object.fromEntries(map)) has no JSON representation', 'group'],
  'page properties with a throwing getter': ['() => { const x = {}; Object.defineProperty(x, "g", { enumerable: true, get() { throw new Error("getter") } }); return x }',
    'properties.g: reading it threw Error: getter (a getter or Proxy of the page\'s code)', 'page'],
}

test('a value with no JSON form warns with its path, is not sent, and costs only that call', async () => {
  const context = await browser.newContext()
  const page = await context.newPage()
  const warnings = []
  const errors = []
  const sent = []
  page.on('console', (m) => m.type() === 'warning' && warnings.push(m.text()))
  page.on('pageerror', (e) => errors.push(e.message))
  page.on('request', (r) => {
    if (r.url().startsWith(`${collector.host}/v1/`)) sent.push(...JSON.parse(r.postData()).batch)
  })
  await page.addInitScript(() => { window.OPTIONS = { trackPageViews: false } })
  try {
    await page.goto(`${pages.origin}/app.html`)
    await page.waitForFunction(() => window.ready)
    await page.evaluate(() => window.ready)

    const names = Object.keys(REFUSED).map((name) => `refused ${name} ${tag}`)
    const results = await page.evaluate(({ cases, names, tag }) => {
      const pl = window.pl
      return cases.map(([make, , method = 'track'], i) => {
        const value = (0, eval)(make)()
        const started = performance.now()
        let id
        let threw
        try {
          if (method === 'track') id = pl.track(names[i], value)
          else if (method === 'page') id = pl.page(names[i], value)
          else if (method === 'identify') id = pl.identify(`user ${tag}`, value)
          else id = pl.group(names[i], value)
        } catch (error) {
          threw = String(error)
        }
        const ms = performance.now() - started
        // The neighbour: the call right after a refused one is sent as usual.
        const next = pl.track(`neighbour ${i} ${tag}`, { i })
        return { id, threw, ms, next }
      })
    }, { cases: Object.values(REFUSED), names, tag })

    Object.entries(REFUSED).forEach(([name, [, expected]], i) => {
      const r = results[i]
      assert.equal(r.threw, undefined, `${name}: threw into the page`)
      assert.equal(r.id, undefined, `${name}: returned a message id`)
      assert.ok(r.ms < 1000, `${name}: took ${r.ms} ms`)
      assert.match(r.next, /^[0-9a-f-]{36}$/, `${name}: the next call was not captured`)
      const warning = warnings.filter((w) => typeof expected === 'string' ? w.startsWith(`pulseline: ${expected}`) : expected.test(w))
      assert.equal(warning.length, 1, `${name}: expected one warning ${expected}, got:\n${warnings.join('\n')}`)
    })
    assert.equal(warnings.length, Object.keys(REFUSED).length, warnings.join('\n'))

    const neighbours = await collector.waitUntil({}, (e) => e.filter((m) => m.event?.startsWith('neighbour ') && m.event.endsWith(tag)).length === names.length,
      'every neighbour event')
    for (const n of neighbours.filter((m) => m.event?.endsWith(tag))) assert.deepEqual(n.properties, { i: Number(n.event.split(' ')[1]) })
    // Sent after the refused calls, and stored: nothing of the refused ones went out.
    const stored = await collector.events()
    assert.deepEqual(stored.filter((m) => m.event?.startsWith('refused ') || m.name?.startsWith('refused ') || m.userId === `user ${tag}`), [])
    assert.deepEqual(sent.filter((m) => (m.event ?? m.name ?? '').startsWith('refused ') || m.userId === `user ${tag}`), [])
    assert.deepEqual(errors, [])
  } finally {
    await context.close()
  }
})

test('values that convert are stored exactly as the core writes them', async () => {
  const context = await browser.newContext()
  const page = await context.newPage()
  const warnings = []
  page.on('console', (m) => m.type() === 'warning' && warnings.push(m.text()))
  await page.addInitScript(() => { window.OPTIONS = { trackPageViews: false } })
  try {
    await page.goto(`${pages.origin}/app.html`)
    await page.waitForFunction(() => window.ready)
    await page.evaluate(() => window.ready)
    const event = `converted ${tag}`
    const ids = await page.evaluate(({ event, tag }) => {
      class Plan { constructor() { this.name = 'pro'; this.seats = 3 } get label() { return 'not own' } }
      const shared = { k: 1 }
      const properties = {
        text: 'quote " backslash \\ newline \n tab \t control \u0001 é 😀',
        int: 42, float: 1.5, negativeZero: -0, large: 1e21, small: 1e-7,
        when: new Date(Date.UTC(2026, 0, 2, 3, 4, 5, 6)),
        skipped: undefined,
        list: [1, 'two', null, undefined, true, shared, shared],
        plan: new Plan(),
        big: 2n ** 64n + 1n,
        negativeBig: -(2n ** 127n),
        'not an identifier': { '': 0 },
        boxed: [new Number(5), new String('s'), new Boolean(false)],
      }
      return {
        track: window.pl.track(event, properties),
        page: window.pl.page(event, { title: 'Mine', extra: 1, path: undefined }),
        identify: window.pl.identify(`user ${tag}`, { plan: 'pro', since: new Date(0) }),
      }
    }, { event, tag })
    for (const id of Object.values(ids)) assert.match(id, /^[0-9a-f-]{36}$/)
    assert.deepEqual(warnings, [])

    const [stored] = (await collector.waitUntil({ event }, (e) => e.some((m) => m.type === 'track'), 'the track'))
      .filter((m) => m.type === 'track')
    assert.deepEqual(stored.properties, {
      text: 'quote " backslash \\ newline \n tab \t control \u0001 é 😀',
      int: 42, float: 1.5, negativeZero: 0, large: 1e21, small: 1e-7,
      when: '2026-01-02T03:04:05.006Z',
      list: [1, 'two', null, null, true, { k: 1 }, { k: 1 }],
      plan: { name: 'pro', seats: 3 },
      big: 18446744073709552000, // JSON.parse's double; the exact digits are checked below
      negativeBig: -(2 ** 127),
      'not an identifier': { '': 0 },
      boxed: [5, 's', false],
    })
    // The collector returns every digit sent: the BigInts arrived as exact JSON integers.
    const response = await fetch(`${collector.host}/api/v1/events?event=${encodeURIComponent(event)}`,
      { headers: { Authorization: `Bearer ${collector.secretKey}` } })
    const raw = await response.text()
    assert.match(raw, /"big":\s*18446744073709551617[,}]/)
    assert.match(raw, /"negativeBig":\s*-170141183460469231731687303715884105728[,}]/)

    // A page's own fields, overridden (or left out, as `undefined`) by the caller's.
    const views = await collector.waitUntil({}, (e) => e.some((m) => m.type === 'page' && m.name === event), 'the page')
    const view = views.find((m) => m.type === 'page' && m.name === event)
    assert.deepEqual(view.properties, {
      url: `${pages.origin}/app.html`, referrer: '', title: 'Mine', search: '', extra: 1,
    })
    const [identify] = (await collector.waitUntil({ user_id: `user ${tag}` }, (e) => e.some((m) => m.type === 'identify'), 'the identify'))
      .filter((m) => m.type === 'identify')
    assert.deepEqual(identify.traits, { plan: 'pro', since: '1970-01-01T00:00:00.000Z' })
  } finally {
    await context.close()
  }
})
