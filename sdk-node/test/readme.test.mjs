// The root README's Node.js snippet, run as written in a fresh process against the real
// collector: the placeholders a reader replaces ('plw_...', 'http://127.0.0.1:8080') are
// replaced, nothing else. It ends without a flush, so this also checks "flushes on beforeExit".
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { after, before, test } from 'node:test'

import { Collector, SDK_DIR, tempDir } from './collector.mjs'

let collector
before(async () => {
  collector = await (await Collector.create()).start()
})
after(() => collector?.stop())

test("the README's Node.js snippet delivers its event", async () => {
  const readme = readFileSync(join(SDK_DIR, '..', 'README.md'), 'utf8')
  const blocks = [...readme.matchAll(/^```js\n([\s\S]*?)^```$/gm)].map((m) => m[1])
  assert.equal(blocks.length, 1, "expected the one JavaScript snippet of README.md")
  const code = blocks[0].replaceAll('plw_...', collector.writeKey).replaceAll('http://127.0.0.1:8080', collector.host)
  const home = tempDir()
  // CommonJS, as written; run inside the package so `require('pulseline')` resolves to it.
  const child = spawn(process.execPath, ['-e', code], {
    cwd: SDK_DIR,
    env: { ...process.env, NODE_PATH: '', HOME: home, TMPDIR: home, XDG_CACHE_HOME: home },
  })
  let stderr = ''
  child.stderr.on('data', (d) => (stderr += d))
  const exit = await new Promise((ok) => child.on('exit', (c) => ok(c)))
  assert.equal(exit, 0, stderr)
  const events = await collector.waitFor(1, { user_id: 'user-42', event: 'Signed Up' }, 20_000)
  assert.equal(events.length, 1)
  assert.deepEqual(events[0].properties, { plan: 'pro' })
})

// Every JavaScript snippet of sdk-node/README.md, saved under the file name its first line
// gives (which decides CommonJS or ESM, as it would for the reader) in a fresh project where
// `pulseline` is this package, and run with node. A snippet exporting `handler` is then called
// the way a serverless platform calls it.
test("sdk-node/README.md's snippets run as written, each in the file it names", async () => {
  const readme = readFileSync(join(SDK_DIR, 'README.md'), 'utf8')
  const blocks = [...readme.matchAll(/^```js\n([\s\S]*?)^```$/gm)].map((m) => m[1])
  assert.ok(blocks.length >= 3, 'the CommonJS, ESM and serverless snippets')
  const project = tempDir('pulseline-readme-app-')
  writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'readme-app', private: true }))
  mkdirSync(join(project, 'node_modules'))
  symlinkSync(SDK_DIR, join(project, 'node_modules', 'pulseline'), 'dir')
  const env = {
    ...process.env,
    NODE_PATH: '',
    HOME: project,
    TMPDIR: project,
    XDG_CACHE_HOME: project,
    PULSELINE_WRITE_KEY: collector.writeKey,
    PULSELINE_HOST: collector.host,
  }
  const node = (args) =>
    new Promise((ok) => {
      const child = spawn(process.execPath, args, { cwd: project, env })
      let out = ''
      child.stdout.on('data', (d) => (out += d))
      child.stderr.on('data', (d) => (out += d))
      child.on('exit', (code) => ok({ code, out }))
    })
  for (const block of blocks) {
    const file = block.match(/^\/\/ (\S+\.(?:js|mjs|cjs))\b/)?.[1]
    assert.ok(file, `a snippet must name its file on its first line (// app.mjs):\n${block}`)
    writeFileSync(join(project, file), block.replaceAll('plw_...', collector.writeKey).replaceAll('http://127.0.0.1:8080', collector.host))
    const ran = await node([file])
    assert.equal(ran.code, 0, `${file}:\n${ran.out}`)
    if (/^export async function handler/m.test(block)) {
      const called = await node(['--input-type=module', '-e', `import { handler } from './${file}'; console.log(JSON.stringify(await handler({ userId: 'lambda-user' })))`])
      assert.equal(called.code, 0, called.out)
      assert.deepEqual(JSON.parse(called.out), { statusCode: 200 })
    }
  }
  assert.equal((await collector.waitFor(2, { user_id: 'user-42', event: 'signup' }, 20_000)).length, 2)
  assert.equal((await collector.waitFor(1, { user_id: 'lambda-user', event: 'invoked' }, 20_000)).length, 1)
})
