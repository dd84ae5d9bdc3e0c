// Process lifetime, in child processes against the real collector: the client never keeps the
// event loop alive, yet `process.exit()`, a natural exit and SIGTERM deliver what is pending; a
// worker_threads user works; a SIGKILLed process's disk-buffered events are sent by the next.
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { after, before, test } from 'node:test'

import { Collector, PKG, SDK_DIR, runNode, tempDir, unique } from './collector.mjs'

let collector
before(async () => {
  collector = await (await Collector.create()).start()
})
after(() => collector?.stop())

// A minute-long flush interval and no disk buffer: only the exit path can deliver in time.
const CAPTURE = `
import { Client } from ${JSON.stringify(PKG)}
const [key, host, event, how] = process.argv.slice(1)
const client = new Client({ writeKey: key, host, flushInterval: 60_000, diskBuffer: false })
for (let i = 0; i < 100; i++) client.track({ userId: 'exit-user', event, properties: { i } })
if (how === 'exit') process.exit(0)
if (how === 'hang') { setInterval(() => {}, 1000); console.log('ready') }
`

async function expectAll(event, n = 100) {
  const events = await collector.waitFor(n, { event }, 10_000)
  assert.deepEqual(events.map((e) => e.properties.i).sort((a, b) => a - b), [...Array(n).keys()])
}

test('process.exit() right after track still delivers (synchronous native shutdown)', async () => {
  const event = unique('exit')
  const started = Date.now()
  const child = await runNode(CAPTURE, [collector.writeKey, collector.host, event, 'exit'])
  assert.equal(child.code, 0, child.stderr)
  assert.ok(Date.now() - started < 10_000)
  await expectAll(event)
})

test('a natural exit delivers, and the client does not keep the loop alive', async () => {
  const event = unique('natural')
  const started = Date.now()
  const child = await runNode(CAPTURE, [collector.writeKey, collector.host, event, 'natural'])
  assert.equal(child.code, 0, child.stderr)
  // flushInterval is a minute: only beforeExit/exit can have sent them, and the process ended.
  assert.ok(Date.now() - started < 10_000)
  await expectAll(event)
})

test('an idle client lets the process exit at once', async () => {
  const started = Date.now()
  const child = await runNode(`
    import { Client } from ${JSON.stringify(PKG)}
    new Client({ writeKey: 'plw_x', host: ${JSON.stringify(collector.host)} })
  `)
  assert.equal(child.code, 0, child.stderr)
  assert.ok(Date.now() - started < 3_000, `took ${Date.now() - started} ms`)
})

test('SIGTERM delivers, then the process dies by the signal as it would without us', async () => {
  const event = unique('sigterm')
  const child = spawn(process.execPath, ['--input-type=module', '-e', CAPTURE, collector.writeKey, collector.host, event, 'hang'], {
    cwd: SDK_DIR,
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let stderr = ''
  child.stderr.on('data', (d) => (stderr += d))
  await new Promise((ok) => child.stdout.once('data', ok))
  const exited = new Promise((ok) => child.on('exit', (code, signal) => ok({ code, signal })))
  child.kill('SIGTERM')
  const { signal } = await exited
  assert.equal(signal, 'SIGTERM', stderr)
  await expectAll(event)
})

test('a worker_threads user works, and its exit delivers', async () => {
  const event = unique('worker')
  const child = await runNode(`
    import { Worker } from 'node:worker_threads'
    const [key, host, event] = process.argv.slice(1)
    const source = \`
      import { Client } from ${JSON.stringify(PKG)}
      import { workerData } from 'node:worker_threads'
      const { key, host, event, from } = workerData
      const client = new Client({ writeKey: key, host, flushInterval: 60_000, diskBuffer: false })
      for (let i = from; i < from + 50; i++) client.track({ userId: 'worker-user', event, properties: { i } })
    \`
    const run = (from) => new Promise((ok, fail) => {
      const w = new Worker(source, { eval: true, workerData: { key, host, event, from } })
      w.on('error', fail)
      w.on('exit', ok)
    })
    // Two workers at once, each with its own client (and its own native instance data).
    const codes = await Promise.all([run(0), run(50)])
    console.log(codes.join(','))
  `, [collector.writeKey, collector.host, event])
  assert.equal(child.code, 0, child.stderr)
  assert.equal(child.stdout.trim(), '0,0')
  await expectAll(event)
})

test('a worker terminated from outside still delivers (its teardown drops the client, which shuts down)', async () => {
  const event = unique('terminated')
  const child = await runNode(`
    import { Worker } from 'node:worker_threads'
    const [key, host, event] = process.argv.slice(1)
    const source = \`
      import { Client } from ${JSON.stringify(PKG)}
      import { parentPort, workerData } from 'node:worker_threads'
      const { key, host, event } = workerData
      const client = new Client({ writeKey: key, host, flushInterval: 60_000, diskBuffer: false })
      for (let i = 0; i < 100; i++) client.track({ userId: 'worker-user', event, properties: { i } })
      parentPort.postMessage('captured')
      setInterval(() => {}, 1000)
    \`
    const w = new Worker(source, { eval: true, workerData: { key, host, event } })
    w.once('message', async () => console.log(await w.terminate()))
  `, [collector.writeKey, collector.host, event])
  assert.equal(child.code, 0, child.stderr)
  assert.equal(child.stdout.trim(), '1')
  await expectAll(event)
})

test('with the app\'s own SIGTERM handler, the client keeps capturing until the app exits', async () => {
  const event = unique('graceful')
  const child = spawn(process.execPath, ['--input-type=module', '-e', `
    import { Client } from ${JSON.stringify(PKG)}
    const [key, host, event] = process.argv.slice(1)
    const client = new Client({ writeKey: key, host, flushInterval: 60_000, diskBuffer: false })
    for (let i = 0; i < 50; i++) client.track({ userId: 'u', event, properties: { i } })
    const timer = setInterval(() => {}, 1000)
    process.on('SIGTERM', () => {
      // A graceful shutdown that still records events, then a plain exit.
      setTimeout(() => {
        for (let i = 50; i < 100; i++) client.track({ userId: 'u', event, properties: { i } })
        clearInterval(timer)
      }, 100)
    })
    console.log('ready')
  `, collector.writeKey, collector.host, event], { cwd: SDK_DIR, stdio: ['ignore', 'pipe', 'pipe'] })
  let stderr = ''
  child.stderr.on('data', (d) => (stderr += d))
  await new Promise((ok) => child.stdout.once('data', ok))
  const exited = new Promise((ok) => child.on('exit', (code, signal) => ok({ code, signal })))
  child.kill('SIGTERM')
  assert.deepEqual(await exited, { code: 0, signal: null }, stderr)
  await expectAll(event)
})

test('a SIGKILLed process: its disk-buffered events are delivered by the next one', async () => {
  const own = await Collector.create() // not started: down while the first process captures
  try {
    const event = unique('killed')
    const buffer = tempDir()
    const first = spawn(process.execPath, ['--input-type=module', '-e', `
      import { Client } from ${JSON.stringify(PKG)}
      const [key, host, event, buffer] = process.argv.slice(1)
      const client = new Client({ writeKey: key, host, diskBufferDirectory: buffer, flushInterval: 50,
        maxBatchMessages: 25, retryMinDelay: 50, retryMaxDelay: 200 })
      for (let i = 0; i < 200; i++) client.track({ userId: 'killed-user', event, properties: { i } })
      // Past the flush interval: every batch is sealed and in the segment files.
      setTimeout(() => console.log('captured'), 1000)
      setInterval(() => {}, 1000)
    `, own.writeKey, own.host, event, buffer], { cwd: SDK_DIR, stdio: ['ignore', 'pipe', 'pipe'] })
    let stderr = ''
    first.stderr.on('data', (d) => (stderr += d))
    const exited = new Promise((ok) => first.on('exit', (code, signal) => ok(signal)))
    await new Promise((ok, fail) => {
      first.stdout.once('data', ok)
      first.once('exit', () => fail(new Error(`first process exited: ${stderr}`)))
    })
    first.kill('SIGKILL')
    assert.equal(await exited, 'SIGKILL')

    await own.start()
    const second = await runNode(`
      import { Client } from ${JSON.stringify(PKG)}
      const [key, host, buffer] = process.argv.slice(1)
      const client = new Client({ writeKey: key, host, diskBufferDirectory: buffer, flushInterval: 50 })
      const deadline = Date.now() + 30_000
      while (client.stats().sent < 200 && Date.now() < deadline) await new Promise((ok) => setTimeout(ok, 50))
      const { replayedFromDisk, sent } = client.stats()
      await client.shutdown()
      console.log(replayedFromDisk, sent)
    `, [own.writeKey, own.host, buffer])
    assert.equal(second.code, 0, second.stderr)
    assert.equal(second.stdout.trim(), '200 200')
    const events = await own.waitFor(200, { event }, 5_000)
    assert.deepEqual(events.map((e) => e.properties.i).sort((a, b) => a - b), [...Array(200).keys()])
  } finally {
    await own.stop()
  }
})
