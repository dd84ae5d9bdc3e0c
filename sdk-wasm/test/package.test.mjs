// @pulseline/browser as a customer's bundler meets it: `npm pack` of this package, installed in a
// fresh project, a tiny page importing it bundled by esbuild (the wasm through esbuild's file
// loader, as the README says), loaded in headless Chromium; the event it sends is stored.
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:http'
import { tmpdir } from 'node:os'
import { extname, join } from 'node:path'
import { after, before, test } from 'node:test'
import * as esbuild from 'esbuild'

import { Collector, SDK_DIR, launchChromium, watchErrors } from './harness.mjs'

const work = mkdtempSync(join(tmpdir(), 'pulseline-browser-package-'))
let collector
let browser
let tarball

before(async () => {
  // The tarball a release publishes: scripts/dist.sh's (PULSELINE_BROWSER_PACKAGE, set by
  // scripts/test.sh), else packed here from the built dist/ (the prepack script runs the same
  // build.sh). The file list is read from the tarball itself.
  const file = process.env.PULSELINE_BROWSER_PACKAGE ?? join(work, packTarball())
  const listing = execFileSync('tar', ['-tzf', file], { encoding: 'utf8' })
  const files = listing.split('\n').filter((f) => f && !f.endsWith('/')).map((f) => f.replace(/^package\//, ''))
  tarball = { file, files: files.sort() }
  collector = await (await Collector.create()).start()
  browser = await launchChromium()
})

function packTarball() {
  const [packed] = JSON.parse(execFileSync('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', work], { cwd: SDK_DIR, encoding: 'utf8' }))
  return packed.filename
}

after(async () => {
  await browser?.close()
  await collector?.stop()
})

test('npm pack gives the built files and typings, and no sources', () => {
  for (const file of ['dist/pulseline.js', 'dist/pulseline.d.ts', 'dist/pulseline_bg.wasm', 'dist/web-vitals.js', 'dist/loader.js', 'package.json', 'README.md']) {
    assert.ok(tarball.files.includes(file), `${file} missing from ${tarball.files}`)
  }
  assert.deepEqual(tarball.files.filter((f) => !f.startsWith('dist/') && !['package.json', 'README.md', 'LICENSE'].includes(f)), [])
})

test('a page bundled with esbuild from the installed package sends an event the collector stores', async () => {
  const project = join(work, 'app')
  mkdirSync(project)
  writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'browser-app', private: true, type: 'module' }))
  execFileSync('npm', ['install', '--no-audit', '--no-fund', tarball.file], { cwd: project, stdio: 'pipe' })
  assert.ok(existsSync(join(project, 'node_modules', '@pulseline', 'browser', 'dist', 'pulseline.d.ts')))

  writeFileSync(
    join(project, 'main.js'),
    `import { init } from '@pulseline/browser'
import wasm from '@pulseline/browser/pulseline_bg.wasm'

const client = await init({ writeKey: ${JSON.stringify(collector.writeKey)}, host: ${JSON.stringify(collector.host)}, wasm: new URL(wasm, import.meta.url) })
client.track('Bundled Page', { bundler: 'esbuild' })
await client.flush()
document.title = 'sent'
`,
  )
  const out = join(project, 'out')
  await esbuild.build({
    absWorkingDir: project,
    entryPoints: ['main.js'],
    bundle: true,
    format: 'esm',
    splitting: true,
    outdir: out,
    loader: { '.wasm': 'file' },
    logLevel: 'warning',
  })
  writeFileSync(join(out, 'index.html'), '<!doctype html><title>app</title><script type="module" src="main.js"></script>')

  const types = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript', '.wasm': 'application/wasm' }
  const server = createServer((req, res) => {
    const path = new URL(req.url, 'http://x').pathname
    if (path === '/favicon.ico') return res.writeHead(204).end()
    const file = join(out, path === '/' ? 'index.html' : path)
    if (!file.startsWith(out) || !existsSync(file)) return res.writeHead(404).end(path)
    res.writeHead(200, { 'Content-Type': types[extname(file)] ?? 'application/octet-stream' }).end(readFileSync(file))
  })
  const port = await new Promise((ok) => server.listen(0, '127.0.0.1', () => ok(server.address().port)))
  const page = await browser.newPage()
  const errors = watchErrors(page)
  try {
    await page.goto(`http://127.0.0.1:${port}/`)
    await page.waitForFunction(() => document.title === 'sent', null, { timeout: 30_000 })
    const events = await collector.waitUntil({ event: 'Bundled Page' }, (e) => e.length >= 1, 'the bundled page event')
    assert.equal(events.length, 1)
    assert.deepEqual(events[0].properties, { bundler: 'esbuild' })
    assert.deepEqual(errors, [])
  } finally {
    await page.close()
    await new Promise((ok) => server.close(ok))
  }
})
