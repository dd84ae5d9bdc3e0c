// The SDK runs inside someone else's production process; its first duty is to do no harm.
// Each hostile-but-plausible case runs in its own child process under a memory limit
// (--max-old-space-size) and a hard time limit (killed, and the test fails, past it): a crash,
// a hang, a blocked event loop or a runaway allocation fails the test instead of the suite.
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { after, before, test } from 'node:test'

import { Collector, PKG, SDK_DIR, unique } from './collector.mjs'

let collector
before(async () => {
  collector = await (await Collector.create()).start()
})
after(() => collector?.stop())

// Port 9 (discard) on loopback: nothing listens, so every delivery attempt fails at once.
const DOWN = 'http://127.0.0.1:9'

/** Runs `script` as an ES module in a fresh `node` with `limits`; kills it past `timeoutMs`. */
function run(script, args = [], { timeoutMs = 30_000, heapMb = 128, nodeArgs = [], env = {} } = {}) {
  return new Promise((ok) => {
    const started = Date.now()
    const child = spawn(
      process.execPath,
      [`--max-old-space-size=${heapMb}`, ...nodeArgs, '--input-type=module', '-e', script, ...args],
      { cwd: SDK_DIR, env: { ...process.env, NODE_PATH: '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] },
    )
    let stdout = ''
    let stderr = ''
    // Bounded: a child that logs in a loop must fail the test, not exhaust this process.
    child.stdout.on('data', (d) => stdout.length < 1e6 && (stdout += d))
    child.stderr.on('data', (d) => stderr.length < 1e6 && (stderr += d))
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs)
    child.on('exit', (code, signal) => {
      clearTimeout(timer)
      ok({ code, signal, stdout, stderr, ms: Date.now() - started })
    })
  })
}

/** The child's last stdout line, parsed as JSON, after asserting that it exited cleanly. */
function result(child) {
  const stderr = child.stderr.slice(0, 2000)
  assert.equal(child.signal, null, `killed by ${child.signal} after ${child.ms} ms (hung?); stderr: ${stderr}`)
  assert.equal(child.code, 0, `exit ${child.code}; stderr: ${stderr}`)
  const lines = child.stdout.trim().split('\n')
  return JSON.parse(lines[lines.length - 1])
}

const IMPORT = `import { Client } from ${JSON.stringify(PKG)}`

// Item 1: a value changed after track() in the same tick. `spoil(x)` runs right after the
// capture call, before the end of the tick, when the queued message is serialized.
const SPOILERS = {
  'a cycle': 'x.self = x',
  'a getter that throws on its next read': `Object.defineProperty(x, 'g', { enumerable: true, get() { throw new Error('second read') } })`,
  'a Proxy whose get trap throws': `x.p = new Proxy({ a: 1 }, { get() { throw new Error('trap') } })`,
  'a getter that returns a BigInt on its next read': `let n = 0; Object.defineProperty(x, 'b', { enumerable: true, get() { return n++ === 0 ? 1 : 10n } })`,
  'a Date whose toJSON throws': `x.d = new Date(0); x.d.toJSON = () => { throw new Error('toJSON') }`,
  'a shared structure that expands exponentially': `let o = { leaf: 1 }; for (let i = 0; i < 24; i++) o = { a: o, b: o }; x.dag = o`,
  'a sparse array of four billion elements': `x.arr = []; x.arr[2 ** 32 - 2] = 1`,
}

for (const [name, spoil] of Object.entries(SPOILERS)) {
  test(`item 1: ${name} set after track() costs at most that one event, never the process`, async () => {
    const event = unique('spoiled')
    const child = await run(`
      ${IMPORT}
      const [key, host, event] = process.argv.slice(1)
      let uncaught = 0
      process.on('uncaughtException', (e) => { uncaught++; console.error(e) })
      const drops = []
      const client = new Client({ writeKey: key, host, diskBuffer: false, onDrop: (r, n) => drops.push([r, n]) })
      const x = { a: 1 }
      client.track({ userId: 'u', event, properties: { i: 0 } })
      client.track({ userId: 'u', event, properties: { i: 1, x } })
      client.track({ userId: 'u', event, properties: { i: 2 } })
      ;(() => { ${spoil} })()
      await new Promise((ok) => setImmediate(ok))
      // A poisoned client would throw from here on.
      client.track({ userId: 'u', event, properties: { i: 3 } })
      const flushed = await client.flush(20_000)
      const stats = client.stats()
      await client.shutdown()
      console.log(JSON.stringify({ uncaught, drops, flushed, captured: stats.captured, dropped: stats.dropped }))
    `, [collector.writeKey, collector.host, event], { timeoutMs: 40_000 })
    const r = result(child)
    assert.equal(r.uncaught, 0, child.stderr.slice(0, 2000))
    assert.equal(r.flushed.status, 'flushed')
    const stored = await collector.waitFor(r.captured, { event }, 10_000)
    const seen = stored.map((e) => e.properties.i).sort()
    // The neighbours of the tick, and the capture after it, always arrive.
    for (const i of [0, 2, 3]) assert.ok(seen.includes(i), `event ${i} missing: ${seen}`)
    // The spoiled one is either still sendable (delivered) or dropped, counted and reported.
    const lost = r.dropped.unserializable + r.dropped.tooLarge
    assert.equal(seen.length + lost, 4, JSON.stringify(r))
    assert.deepEqual(r.drops.reduce((n, [, c]) => n + c, 0), lost)
    if (lost === 0) assert.ok(seen.includes(1))
    else assert.deepEqual(r.drops[0][0], r.dropped.tooLarge ? 'too_large' : 'unserializable')
    if (/cycle|throws/.test(name) && !/toJSON/.test(name)) assert.equal(r.dropped.unserializable, 1)
    if (/expands|sparse/.test(name)) assert.equal(r.dropped.tooLarge, 1)
  })
}

test('item 1: with an uncaughtException handler the client is not poisoned and the process exits', async () => {
  const child = await run(`
    ${IMPORT}
    let uncaught = 0
    process.on('uncaughtException', () => uncaught++)
    const client = new Client({ writeKey: 'k', host: '${DOWN}', diskBuffer: false, shutdownTimeout: 200 })
    const n = { a: 1 }
    client.track({ userId: 'u', event: 'e', properties: { n } })
    n.self = n
    await new Promise((ok) => setImmediate(ok))
    client.track({ userId: 'u', event: 'e' })
    const stats = client.stats()
    const flushed = await client.flush(100)
    const shut = await client.shutdown(100)
    console.log(JSON.stringify({ uncaught, unserializable: stats.dropped.unserializable, flushed: flushed.status, shut: typeof shut.complete }))
  `, [], { timeoutMs: 20_000 })
  const r = result(child)
  assert.deepEqual(r, { uncaught: 0, unserializable: 1, flushed: 'timed_out', shut: 'boolean' })
  // The exit hook must not spin: the process ended well within the hard limit.
  assert.ok(child.ms < 15_000, `took ${child.ms} ms`)
})

// Item 2: user callbacks that throw (or reject) are logged, never crash the process.
test('item 2: a throwing onDrop and a throwing or rejecting onError do not crash the process', async () => {
  const child = await run(`
    ${IMPORT}
    let drops = 0
    let errors = 0
    const base = { writeKey: 'k', host: '${DOWN}', diskBuffer: false, flushInterval: 10, retryMinDelay: 1, retryMaxDelay: 5, maxRetryElapsed: 50 }
    const a = new Client({ ...base, maxBufferedEvents: 1, flushInterval: 60_000, onDrop: () => { drops++; throw new Error('onDrop boom') } })
    a.track({ userId: 'u', event: 'kept' })
    a.track({ userId: 'u', event: 'dropped: the buffer holds one' })
    const b = new Client({ ...base, onError: () => { errors++; throw new Error('onError boom') } })
    const c = new Client({ ...base, onError: async () => { errors++; throw new Error('async onError boom') } })
    b.track({ userId: 'u', event: 'e' })
    c.track({ userId: 'u', event: 'e' })
    await b.flush(10_000)
    await c.flush(10_000)
    for (let i = 0; i < 100 && (drops < 1 || errors < 2); i++) await new Promise((ok) => setTimeout(ok, 20))
    console.log(JSON.stringify({ drops: drops >= 1, errors: errors >= 2, queueFull: a.stats().dropped.queueFull }))
    await Promise.all([a.shutdown(0), b.shutdown(0), c.shutdown(0)])
  `, [], { timeoutMs: 30_000 })
  assert.deepEqual(result(child), { drops: true, errors: true, queueFull: 1 })
  assert.match(child.stderr, /the onDrop callback threw; ignored: Error: onDrop boom/)
  assert.match(child.stderr, /the onError callback threw; ignored: Error: onError boom/)
  assert.match(child.stderr, /the onError callback threw; ignored: Error: async onError boom/)
})

// Item 3: pending flushes and abandoned clients must not block the loop or libuv's pool.
test('item 3: pending flush() calls leave libuv thread pool free', async () => {
  const child = await run(`
    ${IMPORT}
    import { readFile } from 'node:fs/promises'
    const client = new Client({ writeKey: 'k', host: '${DOWN}', diskBuffer: false, shutdownTimeout: 200, maxRetryElapsed: 60_000 })
    client.track({ userId: 'u', event: 'e' })
    // More pending flushes than the pool has threads; each waits for the retry budget.
    const flushes = Array.from({ length: 8 }, () => client.flush())
    await new Promise((ok) => setTimeout(ok, 100))
    const started = performance.now()
    await readFile(process.execPath, { flag: 'r' }).then((b) => b.length)
    const readMs = performance.now() - started
    console.log(JSON.stringify({ readMs, pending: flushes.length }))
    process.exit(0)
  `, [], { timeoutMs: 25_000, heapMb: 256, env: { UV_THREADPOOL_SIZE: '4' } })
  const r = result(child)
  assert.ok(r.readMs < 3_000, `fs.promises.readFile took ${r.readMs} ms while flushes were pending`)
})

test('item 3: abandoned clients are shut down off the JavaScript thread', async () => {
  const child = await run(`
    ${IMPORT}
    import { monitorEventLoopDelay } from 'node:perf_hooks'
    let collected = 0
    const registry = new FinalizationRegistry(() => collected++)
    ;(() => {
      for (let i = 0; i < 20; i++) {
        const c = new Client({ writeKey: 'k', host: '${DOWN}', diskBuffer: false, flushInterval: 60_000, shutdownTimeout: 2_000 })
        c.track({ userId: 'u', event: 'e' })
        c.stats()
        registry.register(c, i)
      }
    })()
    await new Promise((ok) => setImmediate(ok))
    const delay = monitorEventLoopDelay({ resolution: 10 })
    delay.enable()
    const deadline = Date.now() + 10_000
    while (collected < 20 && Date.now() < deadline) {
      globalThis.gc()
      await new Promise((ok) => setTimeout(ok, 50))
    }
    await new Promise((ok) => setTimeout(ok, 300))
    delay.disable()
    console.log(JSON.stringify({ collected, maxDelayMs: delay.max / 1e6 }))
  `, [], { timeoutMs: 30_000, nodeArgs: ['--expose-gc'] })
  const r = result(child)
  assert.equal(r.collected, 20, 'the clients were not garbage-collected: the test proves nothing')
  assert.ok(r.maxDelayMs < 1_000, `the event loop was blocked for ${r.maxDelayMs} ms`)
})

// Item 4.
// Such ids and events are far above the collector's 200-character limits, which the core checks
// first: a TypeError naming the field (a message above 32 KiB for other reasons is a RangeError).
test('item 4: a userId or event above 32 KiB throws at the call, never a silent drop', async () => {
  const child = await run(`
    ${IMPORT}
    const client = new Client({ writeKey: 'k', host: '${DOWN}', diskBuffer: false })
    const out = []
    for (const m of [{ userId: 'u'.repeat(40_000), event: 'e' }, { userId: 'u', event: 'e'.repeat(40_000) }, { anonymousId: 'a'.repeat(40_000), event: 'e' }]) {
      try { client.track(m); out.push('accepted') } catch (e) { out.push(e.name + ' ' + e.code) }
    }
    await new Promise((ok) => setImmediate(ok))
    console.log(JSON.stringify({ out, captured: client.stats().captured }))
    await client.shutdown(0)
  `, [], { timeoutMs: 20_000 })
  const r = result(child)
  assert.deepEqual(r.out, Array(3).fill('TypeError PULSELINE_INVALID_MESSAGE'))
  assert.equal(r.captured, 0)
  assert.doesNotMatch(child.stderr, /PulselineWarning/)
})

test('item 4: concurrent shutdown() calls report the same outcome', async () => {
  const child = await run(`
    ${IMPORT}
    const client = new Client({ writeKey: 'k', host: '${DOWN}', diskBuffer: false, flushInterval: 60_000 })
    for (let i = 0; i < 10; i++) client.track({ userId: 'u', event: 'e' })
    const [first, second] = await Promise.all([client.shutdown(300), client.shutdown(300)])
    const third = await client.shutdown(300)
    console.log(JSON.stringify({ first, second, third }))
  `, [], { timeoutMs: 20_000 })
  const r = result(child)
  assert.equal(r.first.complete, false)
  assert.equal(r.first.lost, 10)
  assert.deepEqual(r.second, r.first)
  assert.deepEqual(r.third, r.first)
})

test('item 4: unknown options are refused, naming the option', async () => {
  const child = await run(`
    ${IMPORT}
    try { new Client({ writeKey: 'k', maxBatchSize: 10 }); console.log('{"accepted":true}') }
    catch (e) { console.log(JSON.stringify({ name: e.name, code: e.code, option: e.option, message: e.message })) }
  `, [], { timeoutMs: 20_000 })
  const r = result(child)
  assert.equal(r.name, 'TypeError')
  assert.equal(r.code, 'PULSELINE_CONFIG')
  assert.equal(r.option, 'maxBatchSize')
  assert.match(r.message, /unknown option "maxBatchSize"; the options are writeKey, .*maxBatchMessages/)
})

test('item 4: Map, Set, ArrayBuffer, typed arrays and Buffer are refused (as Python refuses set and bytes)', async () => {
  const child = await run(`
    ${IMPORT}
    const client = new Client({ writeKey: 'k', host: '${DOWN}', diskBuffer: false })
    const values = [new Map([['a', 1]]), new Set([1]), new WeakMap(), new WeakSet(), new ArrayBuffer(4), new Uint8Array(4), Buffer.from('hi'), new DataView(new ArrayBuffer(2)), Promise.resolve(1)]
    const out = values.map((v) => {
      try { client.track({ userId: 'u', event: 'e', properties: { nested: [v] } }); return 'accepted' }
      catch (e) { return [e.name, e.code, e.path, e.message] }
    })
    console.log(JSON.stringify({ out, captured: client.stats().captured }))
    await client.shutdown(0)
  `, [], { timeoutMs: 20_000 })
  const r = result(child)
  assert.equal(r.captured, 0)
  const kinds = ['a Map', 'a Set', 'a WeakMap', 'a WeakSet', 'an ArrayBuffer', 'a typed array or Buffer', 'a typed array or Buffer', 'a DataView', 'a Promise']
  r.out.forEach(([name, code, path, message], i) => {
    assert.equal(name, 'TypeError')
    assert.equal(code, 'PULSELINE_UNSUPPORTED_TYPE')
    assert.equal(path, 'properties.nested[0]')
    assert.ok(message.startsWith(`properties.nested[0]: ${kinds[i]}`), message)
  })
})

// Item 7: the size limit is enforced while serializing, not after.
test('item 7: shared references and huge sparse arrays fail within milliseconds, in bounded memory', async () => {
  const child = await run(`
    ${IMPORT}
    const client = new Client({ writeKey: 'k', host: '${DOWN}', diskBuffer: false })
    let dag = { leaf: 'x' }
    for (let i = 0; i < 24; i++) dag = { a: dag, b: dag }
    let shared = { s: 'x'.repeat(100) }
    for (let i = 0; i < 8; i++) shared = Array(16).fill(shared)
    const sparse = []
    sparse[2 ** 32 - 2] = 1
    const out = {}
    // A string far above the limit is refused before it is copied.
    const long = 'x'.repeat(64 * 1024 * 1024)
    for (const [name, properties] of Object.entries({ dag, shared, sparse: { sparse }, long: { long }, key: { [long]: 1 }, context: null })) {
      const started = performance.now()
      try {
        if (name === 'context') client.track({ userId: 'u', event: 'e', context: { dag } })
        else client.track({ userId: 'u', event: 'e', properties: name === 'shared' ? { shared } : properties })
        out[name] = 'accepted'
      } catch (e) { out[name] = [e.name, e.code, performance.now() - started] }
    }
    console.log(JSON.stringify(out))
    await client.shutdown(0)
  `, [], { timeoutMs: 20_000, heapMb: 96 })
  const r = result(child)
  for (const [name, [errorName, code, ms]] of Object.entries(r)) {
    assert.equal(errorName, 'RangeError', name)
    assert.equal(code, 'PULSELINE_MESSAGE_TOO_LARGE', name)
    assert.ok(ms < 500, `${name} took ${ms} ms`)
  }
})
