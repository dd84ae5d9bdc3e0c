// The npm packages as a customer meets them: a fresh project installs the packed tarballs
// (`pulseline` and this platform's `pulseline-<platform>`) with no cargo or rustc on its PATH,
// then requires the package (CommonJS), imports it (ESM), sends events to the real collector and
// reads them back. scripts/test.sh packs the tarballs into dist/ (scripts/dist.sh node), given
// here as PULSELINE_NPM_PACKAGES.
import assert from 'node:assert/strict'
import { spawn, spawnSync } from 'node:child_process'
import { existsSync, readdirSync, readFileSync, renameSync, symlinkSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { after, before, test } from 'node:test'

import { Collector, tempDir, unique } from '../collector.mjs'

const PACKAGES = process.env.PULSELINE_NPM_PACKAGES
if (!PACKAGES) throw new Error('PULSELINE_NPM_PACKAGES is not set: run `PULSELINE_TEST_ONLY=node scripts/test.sh`, which packs the tarballs')
const tarballs = readdirSync(PACKAGES).filter((f) => f.endsWith('.tgz'))
const main = tarballs.find((f) => /^pulseline-\d/.test(f))
// dist/ holds @pulseline/browser's tarball too (pulseline-browser-<version>.tgz).
const native = tarballs.find((f) => f !== main && !f.startsWith('pulseline-browser-'))
assert.ok(main && native, `expected pulseline-<version>.tgz and pulseline-<platform>-<version>.tgz in ${PACKAGES}, found ${tarballs}`)
const PLATFORM = native.replace(/^pulseline-/, '').replace(/-\d[^-]*\.tgz$/, '')

// A PATH with node and npm only: Debian's rustc-web puts cargo in /usr/bin, next to node.
const bin = tempDir('pulseline-npm-bin-')
symlinkSync(process.execPath, join(bin, 'node'))
// npm's own script, where Node's installers put it (next to node's lib/).
const npmCli = join(dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'bin', 'npm-cli.js')
assert.ok(existsSync(npmCli), `npm is not at ${npmCli}`)
symlinkSync(npmCli, join(bin, 'npm'))

const project = tempDir('pulseline-npm-app-')
const home = tempDir('pulseline-npm-home-')
const env = {
  PATH: bin,
  HOME: home,
  TMPDIR: home,
  XDG_CACHE_HOME: join(home, '.cache'),
  // The machine's npm cache, so a run on a slow network does not download npm's own metadata.
  npm_config_cache: join(process.env.HOME ?? home, '.npm'),
  NO_PROXY: '127.0.0.1,localhost,::1',
}

function run(file, args, options = {}) {
  return new Promise((ok) => {
    const child = spawn(file, args, { cwd: project, env, ...options })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d) => (stdout += d))
    child.stderr.on('data', (d) => (stderr += d))
    child.on('exit', (code) => ok({ code, stdout, stderr }))
  })
}

let collector
before(async () => {
  collector = await (await Collector.create()).start()
})
after(() => collector?.stop())

test('the PATH of the install has no Rust toolchain', () => {
  for (const tool of ['cargo', 'rustc']) {
    const found = spawnSync('/bin/sh', ['-c', `command -v ${tool}`], { env })
    assert.notEqual(found.status, 0, `${tool} is on the test PATH ${env.PATH}`)
  }
})

test('npm install of the two tarballs, without Rust, gives a package with no build step', async () => {
  writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'customer-app', version: '1.0.0', private: true }))
  const install = await run(join(bin, 'npm'), ['install', '--no-audit', '--no-fund', join(PACKAGES, main), join(PACKAGES, native)])
  assert.equal(install.code, 0, install.stdout + install.stderr)
  const pkg = JSON.parse(readFileSync(join(project, 'node_modules', 'pulseline', 'package.json'), 'utf8'))
  for (const script of ['preinstall', 'install', 'postinstall']) assert.equal(pkg.scripts?.[script], undefined, `${script} script`)
  assert.equal(pkg.optionalDependencies[`pulseline-${PLATFORM}`], pkg.version)
  // Nothing to build from: the Rust sources stay in the repository.
  for (const file of ['Cargo.toml', 'src', 'build.rs']) assert.ok(!existsSync(join(project, 'node_modules', 'pulseline', file)), file)
  assert.ok(existsSync(join(project, 'node_modules', `pulseline-${PLATFORM}`, `pulseline.${PLATFORM}.node`)))
})

test('require (CommonJS) and import (ESM) both send events the collector stores', async () => {
  const event = unique('Packaged')
  const options = (via) => JSON.stringify({ writeKey: collector.writeKey, host: collector.host, diskBufferDirectory: join(home, via), flushInterval: 50 })
  writeFileSync(
    join(project, 'app.cjs'),
    `const { Client } = require('pulseline')
const client = new Client(${options('cjs')})
client.track({ userId: 'cjs-user', event: ${JSON.stringify(event)}, properties: { via: 'require' } })
client.flush().then((result) => { console.log(JSON.stringify(result)); return client.shutdown() })
`,
  )
  writeFileSync(
    join(project, 'app.mjs'),
    `import Client, { Client as Named } from 'pulseline'
if (Client !== Named) throw new Error('the default export is not Client')
const client = new Client(${options('esm')})
client.track({ userId: 'esm-user', event: ${JSON.stringify(event)}, properties: { via: 'import' } })
console.log(JSON.stringify(await client.flush()))
await client.shutdown()
`,
  )
  for (const app of ['app.cjs', 'app.mjs']) {
    const result = await run(join(bin, 'node'), [app])
    assert.equal(result.code, 0, result.stderr)
    assert.deepEqual(JSON.parse(result.stdout), { status: 'flushed', messages: 0 }, app)
  }
  const events = await collector.waitFor(2, { event }, 30_000)
  const seen = events.map((e) => [e.userId ?? e.user_id, e.properties.via]).sort()
  assert.deepEqual(seen, [['cjs-user', 'require'], ['esm-user', 'import']])
})

test('without the platform package, the error names the platform and those with binaries', async () => {
  const dir = join(project, 'node_modules', `pulseline-${PLATFORM}`)
  const hidden = `${dir}.hidden`
  renameSync(dir, hidden)
  try {
    for (const [file, code] of [
      ['missing.cjs', "try { require('pulseline') } catch (e) { console.log(JSON.stringify({ code: e.code, message: e.message, platforms: e.platforms })) }"],
      ['missing.mjs', "try { await import('pulseline') } catch (e) { console.log(JSON.stringify({ code: e.code, message: e.message, platforms: e.platforms })) }"],
    ]) {
      writeFileSync(join(project, file), code)
      const result = await run(join(bin, 'node'), [file])
      assert.equal(result.code, 0, result.stderr)
      const error = JSON.parse(result.stdout)
      assert.equal(error.code, 'PULSELINE_NO_BINARY', file)
      assert.deepEqual(error.platforms, [PLATFORM])
      assert.ok(error.message.includes(`for this platform (${PLATFORM})`), error.message)
      assert.ok(error.message.includes(`pulseline-${PLATFORM}@`), error.message)
      assert.ok(error.message.includes(`Platforms with prebuilt binaries: ${PLATFORM}.`), error.message)
      assert.doesNotMatch(error.message, /cargo|Cannot find native binding/)
    }
  } finally {
    renameSync(hidden, dir)
  }
})
