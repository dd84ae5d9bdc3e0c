#!/usr/bin/env bash
# Builds the browser SDK into sdk-wasm/dist (loader.js, pulseline.js, pulseline_bg.wasm,
# pulseline.d.ts, SIZES.txt). Skips everything when no input changed since the last build.
#
# Needs: rustup target wasm32-unknown-unknown, wasm-bindgen-cli of exactly the wasm-bindgen
# version in Cargo.lock, and `npm ci` in sdk-wasm (esbuild, binaryen's wasm-opt, typescript,
# web-vitals). scripts/test.sh (group wasm) installs all of them.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
SDK=$PWD
ROOT=$(cd .. && pwd)
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
BIN=$SDK/node_modules/.bin

inputs_hash() {
    (
        cd "$ROOT"
        find sdk-core/src sdk-core/Cargo.toml sdk-wasm/src sdk-wasm/Cargo.toml sdk-wasm/js \
            sdk-wasm/build.sh sdk-wasm/tsconfig.build.json sdk-wasm/package-lock.json \
            Cargo.lock Cargo.toml .cargo/config.toml -type f -print0 | sort -z | xargs -0 sha256sum
    ) | sha256sum | cut -d' ' -f1
}

HASH=$(inputs_hash)
if [[ ${1:-} != --force && -f dist/.inputs && $(cat dist/.inputs) == "$HASH" && -f dist/pulseline_bg.wasm ]]; then
    echo "sdk-wasm/dist is up to date"
    exit 0
fi

cargo build -p pulseline-browser --target wasm32-unknown-unknown --profile wasm-release
rm -rf build/wasm dist
mkdir -p build/wasm dist
wasm-bindgen --target web --out-dir build/wasm --out-name pulseline_glue \
    "$TARGET_DIR/wasm32-unknown-unknown/wasm-release/pulseline_browser.wasm"
# -Oz until nothing shrinks, no producers section, plus the features wasm-bindgen's output relies
# on in every current browser.
"$BIN/wasm-opt" -Oz --converge --strip-debug --strip-producers --enable-bulk-memory --enable-nontrapping-float-to-int --enable-sign-ext \
    --enable-mutable-globals --enable-reference-types --enable-multivalue \
    build/wasm/pulseline_glue_bg.wasm -o dist/pulseline_bg.wasm
# One ES module: the public API, the wasm-bindgen glue and web-vitals (attribution build).
# The glue looks for its wasm next to the module (import.meta.url): same directory, new name.
"$BIN/esbuild" js/index.js --bundle --format=esm --minify --target=es2020 --outfile=dist/pulseline.js --log-level=warning
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
const rows = ["loader.js", "pulseline.js", "pulseline_bg.wasm"].map(size)
const kb = (n) => (n / 1024).toFixed(1) + " KB"
let text = "file                 raw        brotli\n"
for (const r of rows) text += r.f.padEnd(20) + kb(r.raw).padStart(10) + kb(r.br).padStart(11) + "\n"
const sdk = rows[1].br + rows[2].br
text += "pulseline.js + wasm (brotli): " + kb(sdk) + "\n"
writeFileSync("dist/SIZES.txt", text)
process.stdout.write(text)
'
echo "$HASH" > dist/.inputs
