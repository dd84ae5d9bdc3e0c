#!/usr/bin/env bash
# Builds the npm packages of the Node SDK for this machine's platform, the way the release
# workflow (.github/workflows/release-npm.yml) builds them for every platform:
#   pulseline-<version>.tgz             the package: JavaScript, loader, typings; no Rust
#   pulseline-<platform>-<version>.tgz  the prebuilt addon, wired by optionalDependencies
# Usage: sdk-node/scripts/pack.sh [output directory, default target/npm-packages]
# Then, in an app: npm install <dir>/pulseline-<version>.tgz <dir>/pulseline-<platform>-<version>.tgz
# Needs Rust and Node 18+ (docs/install-node.md); the installing machine needs only Node.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
SDK=$PWD
ROOT=$(cd .. && pwd)
OUT=$(mkdir -p "${1:-$ROOT/target/npm-packages}" && cd "${1:-$ROOT/target/npm-packages}" && pwd)
# Inside the work tree: napi pre-publish reads the last commit.
STAGE=$ROOT/target/npm-stage

# The napi CLI (a dev dependency). `npm ci` can refuse this lock (scripts/test.sh's npm_ci says
# why); `npm install --no-save` installs the same locked versions.
if [[ ! -x node_modules/.bin/napi ]]; then
    npm ci --ignore-scripts --no-audit --no-fund || npm install --no-save --ignore-scripts --no-audit --no-fund
fi
npx napi build --platform --release --output-dir native --js index.js --dts index.d.ts

# The per-platform package directories are napi's own, generated from package.json's napi.targets.
npx napi create-npm-dirs >/dev/null 2>&1
if ! git diff --quiet -- npm || [[ -n $(git ls-files --others --exclude-standard -- npm) ]]; then
    git status --short -- npm
    echo "error: sdk-node/npm differs from what \`napi create-npm-dirs\` generates: commit it" >&2
    exit 1
fi

rm -rf "$STAGE" "$OUT"/pulseline-*.tgz
mkdir -p "$STAGE/artifacts"
trap 'rm -rf "$STAGE"' EXIT
# The files the package ships (package.json "files"), as npm packs them, plus napi's npm/.
npm pack --silent --pack-destination "$STAGE" >/dev/null
tar -xzf "$STAGE"/pulseline-*.tgz -C "$STAGE"
cp -r npm "$STAGE/package/npm"
rm -f "$STAGE"/package/npm/*/*.node
cp native/pulseline.*.node "$STAGE/artifacts/"

# Only this machine's target is built here: napi's config with the targets narrowed to it.
host=$(rustc -vV | sed -n 's/^host: //p')
printf '{"targets": ["%s"]}\n' "$host" >"$STAGE/napi-host.json"
cd "$STAGE/package"
napi=$SDK/node_modules/.bin/napi
# Copies the addon into npm/<platform>/.
"$napi" artifacts -c "$STAGE/napi-host.json" --output-dir "$STAGE/artifacts" --npm-dir npm
# Sets optionalDependencies; publishes nothing (the release runs it with `-t npm`).
"$napi" pre-publish -c "$STAGE/napi-host.json" --skip-optional-publish
for dir in npm/*/; do
    if compgen -G "$dir*.node" >/dev/null; then
        npm pack --silent --pack-destination "$OUT" "./$dir" >/dev/null
    fi
done
npm pack --silent --pack-destination "$OUT" . >/dev/null
ls -l "$OUT"/pulseline-*.tgz
