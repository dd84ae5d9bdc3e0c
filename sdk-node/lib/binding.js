'use strict'
// Loads the native addon through napi-rs's generated loader (native/index.js), which picks the
// per-platform package (`pulseline-linux-x64-gnu`, ...) npm installed as an optional dependency.
// The package builds nothing from source, so when no binary loads the error must say which
// platform this is, which platforms have binaries, and what to do: the loader's own message
// ("Cannot find native binding") says none of that.
const { optionalDependencies = {}, version } = require('../package.json')

/// This process's platform in napi-rs's naming (the suffix of the per-platform package).
function platform() {
  const { platform: os, arch } = process
  if (os === 'linux') {
    const glibc = process.report?.getReport?.().header?.glibcVersionRuntime
    return `linux-${arch}-${glibc ? 'gnu' : 'musl'}`
  }
  if (os === 'win32') return `win32-${arch}-msvc`
  return `${os}-${arch}`
}

function load() {
  try {
    return require('../native/index.js')
  } catch (cause) {
    const here = platform()
    const wanted = `pulseline-${here}`
    const available = Object.keys(optionalDependencies)
      .filter((name) => name.startsWith('pulseline-'))
      .map((name) => name.slice('pulseline-'.length))
    const fix = available.includes(here)
      ? `its package ${wanted}@${version} is not installed. It is an optional dependency of ` +
        'pulseline: install without --omit=optional / --no-optional, and if npm skipped it anyway ' +
        '(npm bug https://github.com/npm/cli/issues/4828), delete node_modules and package-lock.json ' +
        'and run npm install again.'
      : 'no prebuilt binary is published for this platform. Run on one of the platforms listed, ' +
        'or open an issue asking for this one.'
    const error = new Error(
      `pulseline: cannot load its native addon for this platform (${here}): ${fix} ` +
        `Platforms with prebuilt binaries: ${available.join(', ')}.`,
    )
    error.code = 'PULSELINE_NO_BINARY'
    error.platform = here
    error.platforms = available
    error.cause = cause
    throw error
  }
}

module.exports = load()
