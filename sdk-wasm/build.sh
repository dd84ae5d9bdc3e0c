#!/usr/bin/env bash
# Builds the browser SDK into sdk-wasm/dist (loader.js, pulseline.js, pulseline_bg.wasm,
# web-vitals.js, pulseline.d.ts, each with its .br and .gz, SIZES.txt). Skips everything when no
# input changed since the last build. dist/ is committed: every collector binary embeds it, so
# a fresh clone serves the SDK without this toolchain. After changing an input, run this and
# commit dist/ (dist/.inputs is the SHA-256 of the inputs).
#
#   sdk-wasm/build.sh           build when an input changed
#   sdk-wasm/build.sh --force   build anyway (e.g. after a toolchain change)
#   sdk-wasm/build.sh --check   only say whether dist/ was built from the current inputs (exit 1
#                               if not); needs no toolchain (scripts/test.sh runs it)
#
# Needs: Debian's Rust with the standard library's source (`apt-get install -y rustc-web
# cargo-web rust-web-src lld-22`), wasm-bindgen-cli of exactly the wasm-bindgen version in
# Cargo.lock, and `npm ci` in sdk-wasm (esbuild, binaryen's wasm-opt, typescript, web-vitals).
# scripts/test.sh (group wasm) installs all of them.
#
# The wasm is compiled with the standard library built from source (`-Zbuild-std`, allowed on
# Debian's stable 1.96 by RUSTC_BOOTSTRAP=1, see docs/toolchain.md), which lets std itself be
# compiled for size and without panic messages and their source locations (README "Size").
# PULSELINE_WASM_TOOLCHAIN=rustup builds with rustup's precompiled std instead: it needs only
# `rustup target add wasm32-unknown-unknown`, but the wasm is about 11 KB brotli larger and
# test/size.test.mjs fails on it.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
SDK=$PWD
ROOT=$(cd .. && pwd)
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
BIN=$SDK/node_modules/.bin
# The SHA-256 of every input of dist/ (not of the toolchain: --check must work without it).
# Cargo.lock and the root Cargo.toml count whole, as they hold the wasm's dependencies and profile.
inputs_hash() {
    (
        cd "$ROOT"
        find sdk-core/src sdk-core/Cargo.toml sdk-wasm/src sdk-wasm/Cargo.toml sdk-wasm/js \
            sdk-wasm/build.sh sdk-wasm/tsconfig.build.json sdk-wasm/package-lock.json \
            Cargo.lock Cargo.toml .cargo/config.toml -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum
    ) | sha256sum | cut -d' ' -f1
}

HASH=$(inputs_hash)
if [[ ${1:-} == --check ]]; then
    if [[ -f dist/.inputs && $(head -n1 dist/.inputs) == "$HASH" ]]; then
        echo "sdk-wasm/dist was built from the current sources (inputs $HASH)"
        exit 0
    fi
    echo "sdk-wasm/dist is stale: the browser SDK's sources changed since it was built" >&2
    echo "  (inputs now $HASH, dist/.inputs says $(head -n1 dist/.inputs 2>/dev/null || echo nothing))." >&2
    echo "  Rebuild it and commit the result: sdk-wasm/build.sh && git add sdk-wasm/dist" >&2
    exit 1
fi

TOOLCHAIN=${PULSELINE_WASM_TOOLCHAIN:-debian}
# Where Debian's rust-web-src puts the standard library's source.
DEBIAN_STD_SRC=/usr/lib/rustlib/src/rust/library

case $TOOLCHAIN in
debian)
    if [[ ! -x /usr/bin/cargo || ! -x /usr/bin/rustc || ! -d $DEBIAN_STD_SRC ]]; then
        echo "build.sh: Debian's Rust with the std source is missing (/usr/bin/cargo, /usr/bin/rustc, $DEBIAN_STD_SRC)." >&2
        echo "  Install it: apt-get install -y rustc-web cargo-web rust-web-src lld-22" >&2
        echo "  or build a larger wasm with rustup's std: PULSELINE_WASM_TOOLCHAIN=rustup sdk-wasm/build.sh" >&2
        exit 1
    fi
    RUSTC_VERSION=$(/usr/bin/rustc -V)
    WASM_TARGET_DIR=$TARGET_DIR/wasm-debian
    ;;
rustup)
    RUSTC_VERSION=$(rustc -V)
    WASM_TARGET_DIR=$TARGET_DIR
    ;;
*)
    echo "build.sh: PULSELINE_WASM_TOOLCHAIN must be debian (default) or rustup, not '$TOOLCHAIN'" >&2
    exit 1
    ;;
esac

HASH=$(inputs_hash)
if [[ ${1:-} != --force && -f dist/.inputs && $(head -n1 dist/.inputs) == "$HASH" && -f dist/pulseline_bg.wasm ]]; then
    echo "sdk-wasm/dist is up to date"
    exit 0
fi

if [[ $TOOLCHAIN == debian ]]; then
    # Debian's cargo and rustc together (rustup's would not match the std source), in a target
    # directory of their own. On top of the wasm-release profile, for std as well as the SDK:
    # `panic=immediate-abort` (a panic traps at once: no panic messages, no formatting of
    # them), `-Zlocation-detail=none` (no file/line/column of `track_caller` locations) and
    # std's `optimize_for_size` (its smaller algorithm variants). The flags are appended to the
    # target's rustflags in .cargo/config.toml.
    PATH=/usr/bin:$PATH RUSTC=/usr/bin/rustc RUSTC_BOOTSTRAP=1 CARGO_TARGET_DIR=$WASM_TARGET_DIR \
        /usr/bin/cargo build -p pulseline-browser --target wasm32-unknown-unknown --profile wasm-release \
        -Zbuild-std=std,panic_abort -Zbuild-std-features=optimize_for_size \
        --config 'target.wasm32-unknown-unknown.rustflags = ["-Zunstable-options", "-Cpanic=immediate-abort", "-Zlocation-detail=none"]'
else
    echo "build.sh: PULSELINE_WASM_TOOLCHAIN=rustup: precompiled std, a larger wasm (see README \"Size\")" >&2
    cargo build -p pulseline-browser --target wasm32-unknown-unknown --profile wasm-release
fi
rm -rf build/wasm dist
mkdir -p build/wasm dist
wasm-bindgen --target web --out-dir build/wasm --out-name pulseline_glue \
    "$WASM_TARGET_DIR/wasm32-unknown-unknown/wasm-release/pulseline_browser.wasm"
# -Oz until nothing shrinks, then the control flow flattened and rebuilt by the Relooper and
# -Oz again (0.6 KB brotli less, ~15 s more), no producers section, plus the features
# wasm-bindgen's output relies on in every current browser. --low-memory-unused folds constant
# address offsets into loads and stores (0.3 KB brotli less): `load(add(p, C))`, C < 1024,
# becomes `load offset=C (p)`, which differs only when p + C wraps past 4 GiB into the first
# 1 KiB, and Rust forms no such pointer (README "Size").
"$BIN/wasm-opt" -Oz --converge --flatten --rereloop -Oz --converge --low-memory-unused --strip-debug --strip-producers --enable-bulk-memory --enable-nontrapping-float-to-int --enable-sign-ext \
    --enable-mutable-globals --enable-reference-types --enable-multivalue \
    build/wasm/pulseline_glue_bg.wasm -o dist/pulseline_bg.wasm
# The SDK module: the public API and the wasm-bindgen glue. The glue looks for its wasm next to
# the module (import.meta.url): same directory, new name. web-vitals (attribution build) is a
# module of its own, imported by pulseline.js from next to it only when Web Vitals are on.
# ES2022 keeps class private fields native (not WeakMap helpers): every browser that runs the
# wasm (reference types: Chrome 96, Firefox 79, Safari 15) has them.
"$BIN/esbuild" js/index.js --bundle --format=esm --minify --target=es2022 --external:./web-vitals.js \
    --outfile=dist/pulseline.js --log-level=warning
"$BIN/esbuild" js/web-vitals.js --bundle --format=esm --minify --target=es2020 --outfile=dist/web-vitals.js --log-level=warning
"$BIN/esbuild" js/loader.js --minify --target=es2015 --outfile=dist/loader.js --log-level=warning
"$BIN/tsc" -p tsconfig.build.json
cp build/types/js/index.d.ts dist/pulseline.d.ts 2>/dev/null || cp build/types/index.d.ts dist/pulseline.d.ts
node --input-type=module -e '
import { readFileSync, writeFileSync } from "node:fs"
import { brotliCompressSync, constants } from "node:zlib"
const size = (f) => {
  const raw = readFileSync("dist/" + f)
  const br = brotliCompressSync(raw, { params: { [constants.BROTLI_PARAM_QUALITY]: 11 } }).length
  return { f, raw: raw.length, br }
}
const rows = ["loader.js", "pulseline.js", "pulseline_bg.wasm", "web-vitals.js"].map(size)
const kb = (n) => (n / 1024).toFixed(1) + " KB"
let text = "file                 raw        brotli\n"
for (const r of rows) text += r.f.padEnd(20) + kb(r.raw).padStart(10) + kb(r.br).padStart(11) + "\n"
const sdk = rows[1].br + rows[2].br
text += "pulseline.js + wasm (brotli): " + kb(sdk) + "\n"
text += "with web-vitals.js (Web Vitals on, the default): " + kb(sdk + rows[3].br) + "\n"
writeFileSync("dist/SIZES.txt", text)
process.stdout.write(text)
'
# The collector serves everything but the loader under /sdk/v1/<version>/, cached for a year:
# the version is a hash of those files (the collector computes it the same way,
# collector/src/routes/sdk.rs), and the loader, cached briefly, loads that version.
VERSION=$(cd dist && sha256sum pulseline.d.ts pulseline.js pulseline_bg.wasm web-vitals.js | sha256sum | cut -c1-16)
sed -i "s#/sdk/v1/pulseline.js#/sdk/v1/$VERSION/pulseline.js#" dist/loader.js
grep -q "/sdk/v1/$VERSION/pulseline.js" dist/loader.js ||
    { echo "build.sh: dist/loader.js does not load /sdk/v1/pulseline.js: cannot version it" >&2; exit 1; }
# Precompressed once here, so the collector serves brotli or gzip without compressing per request.
node --input-type=module -e '
import { readFileSync, writeFileSync } from "node:fs"
import { brotliCompressSync, gzipSync, constants } from "node:zlib"
for (const f of ["loader.js", "pulseline.js", "pulseline_bg.wasm", "web-vitals.js", "pulseline.d.ts"]) {
  const raw = readFileSync("dist/" + f)
  writeFileSync("dist/" + f + ".br", brotliCompressSync(raw, { params: { [constants.BROTLI_PARAM_QUALITY]: 11, [constants.BROTLI_PARAM_SIZE_HINT]: raw.length } }))
  writeFileSync("dist/" + f + ".gz", gzipSync(raw, { level: 9 }))
}
'
printf '%s\nbuilt with %s %s\n' "$HASH" "$TOOLCHAIN" "$RUSTC_VERSION" > dist/.inputs
