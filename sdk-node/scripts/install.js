'use strict'
// `npm install` of this package from a checkout (`npm install ./sdk-node`): builds the native
// addon with cargo when it is missing, so a fresh machine needs only Rust and Node. A package
// with a prebuilt addon skips the build.
const { execFileSync } = require('node:child_process')
const fs = require('node:fs')
const path = require('node:path')

const root = path.join(__dirname, '..')
const nativeDir = path.join(root, 'native')
if (fs.existsSync(nativeDir) && fs.readdirSync(nativeDir).some((f) => f.endsWith('.node'))) process.exit(0)

const cli = path.join(root, 'node_modules', '@napi-rs', 'cli', 'dist', 'cli.js')
if (fs.existsSync(cli)) {
  execFileSync(process.execPath, [cli, 'build', '--platform', '--release', '--output-dir', 'native', '--js', 'index.js', '--dts', 'index.d.ts'], { cwd: root, stdio: 'inherit' })
  process.exit(0)
}

// Without the napi CLI (a dependency install skips devDependencies): cargo directly. The JS
// loader and the type declarations are committed (native/index.js, native/index.d.ts).
const abi = process.report?.getReport?.().header?.glibcVersionRuntime ? 'gnu' : 'musl'
const triple = process.platform === 'linux' ? `linux-${process.arch}-${abi}` : process.platform === 'win32' ? `win32-${process.arch}-msvc` : `${process.platform}-${process.arch}`
const meta = JSON.parse(execFileSync('cargo', ['metadata', '--format-version', '1', '--no-deps', '--manifest-path', path.join(root, 'Cargo.toml')], { encoding: 'utf8', maxBuffer: 64 << 20 }))
execFileSync('cargo', ['build', '--release', '--lib', '--manifest-path', path.join(root, 'Cargo.toml')], { cwd: root, stdio: 'inherit' })
const lib = { linux: 'libpulseline_node.so', darwin: 'libpulseline_node.dylib', win32: 'pulseline_node.dll' }[process.platform]
fs.copyFileSync(path.join(meta.target_directory, 'release', lib), path.join(nativeDir, `pulseline.${triple}.node`))
