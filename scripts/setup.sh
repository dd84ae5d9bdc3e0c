#!/usr/bin/env bash
# Prepares a machine for Pulseline's test command: installs what is missing, quickly skips what
# is present. CI starts on a bare Debian 12 with rustup stable, Python 3.11 and Node 20 (as root,
# for apt-get); a developer's machine needs only what its groups use.
#
#   scripts/setup.sh                              what every group needs
#   PULSELINE_TEST_ONLY=node scripts/setup.sh     only what one group needs
#
# ./scripts/test.sh runs these same steps first (it sources this file), so running this alone is
# never required: it prepares a machine (or a CI cache) without running checks.
# scripts/dist.sh sources it too, for the build tools (maturin, napi, podman).
#
# What it installs, per group:
#   every group  rustup's rustfmt and clippy
#   postgres     PostgreSQL's server binaries (apt-get install postgresql)
#   interop, python  .venv: python3 -m venv with scripts/requirements-test.txt (again when that
#                file changes), which holds maturin and auditwheel for the wheel
#   interop, dashboard  chromium (apt-get); interop: collector/tests/segment-browser (npm ci)
#   node         sdk-node/node_modules and examples/node-*/node_modules (npm ci, again when
#                package-lock.json changes)
#   wasm         the wasm32-unknown-unknown target (rustup), wasm-bindgen-cli (exactly
#                Cargo.lock's wasm-bindgen, cargo install --debug), chromium + chromium-driver,
#                Debian's rustc-web + cargo-web + rust-web-src + lld-22 (sdk-wasm/build.sh
#                compiles the release wasm with std built from source), sdk-wasm/node_modules
#   container    podman, runc, mmdebstrap, uidmap, slirp4netns (apt-get); the container test
#                says why and skips when they cannot install or run
#   dashboard    dashboard/node_modules (uPlot, jsVectorMap, playwright-core)
#
# Sourced, this file only defines the shared environment (ROOT, ONLY, VENV, TARGET_DIR, PATH),
# the step bookkeeping (`step`, the summary table, `die`) and the `ensure_*` functions.

set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
ONLY=${PULSELINE_TEST_ONLY:-all}
GROUPS_ALL=(rust postgres interop python node wasm container dashboard)
VENV=$ROOT/.venv
REQUIREMENTS=$ROOT/scripts/requirements-test.txt
# shellcheck disable=SC2034 # used by test.sh and dist.sh, which source this file
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}

# Prefer rustup's toolchain: with Debian's rustc-web installed, /usr/bin/cargo is a different
# compiler, and a minimal PATH would pick it silently.
if [[ -x $HOME/.cargo/bin/cargo ]]; then
    PATH=$HOME/.cargo/bin:$PATH
fi
# Tests talk only to loopback; never route that through a proxy from the environment.
export NO_PROXY=127.0.0.1,localhost,::1 no_proxy=127.0.0.1,localhost,::1
# A clean clone builds once; incremental state would only cost disk (about 4 GB) and time.
if [[ -n ${CI:-} ]]; then
    export CARGO_INCREMENTAL=0
fi

die() {
    printf 'error: %s\n' "$*" >&2
    exit 1
}

# ---------------------------------------------------------------------------------------------
# Step bookkeeping: banners, timings, the summary table, fail fast, cleanups at exit.

SUMMARY=()
CURRENT=""
CURRENT_START=0
RUN_START=$(date +%s%N)
CLEANUPS=() # commands run at exit, last registered first (at_exit)

now_ns() { date +%s%N; }

seconds_since() { # start_ns -> "12.3s"
    local ms=$((($(now_ns) - $1) / 1000000))
    printf '%d.%01ds' $((ms / 1000)) $((ms % 1000 / 100))
}

check_only() {
    [[ $ONLY == all || " ${GROUPS_ALL[*]} " == *" $ONLY "* ]] ||
        die "PULSELINE_TEST_ONLY must be one of ${GROUPS_ALL[*]} (or unset for all), not '$ONLY'"
}

selected() { # groups ("node" or "interop,python"; "setup" is every run's)
    [[ $1 == setup || $ONLY == all || ,$1, == *",$ONLY,"* ]]
}

step() { # groups title function [args...]
    local group=$1 title=$2
    shift 2
    if ! selected "$group"; then
        SUMMARY+=("$(printf '  %-8s %-56s %s' skipped "$title" '')")
        return
    fi
    [[ $ONLY == all || $group == setup ]] || group=$ONLY
    printf '\n\033[1m==> [%s] %s\033[0m\n' "$group" "$title"
    CURRENT=$title
    CURRENT_START=$(now_ns)
    "$@" # errexit is live here: a failing command ends the run through on_exit
    SUMMARY+=("$(printf '  %-8s %-56s %s' ok "$title" "$(seconds_since "$CURRENT_START")")")
    CURRENT=""
}

at_exit() { CLEANUPS=("$*" "${CLEANUPS[@]}"); } # a command (one string) to run at exit

on_exit() {
    local rc=$? cleanup
    set +e
    for cleanup in "${CLEANUPS[@]}"; do
        eval "$cleanup"
    done
    if [[ -n $CURRENT ]]; then
        SUMMARY+=("$(printf '  %-8s %-56s %s' FAILED "$CURRENT" "$(seconds_since "$CURRENT_START")")")
    fi
    printf '\n\033[1m==> Summary (%s, PULSELINE_TEST_ONLY=%s)\033[0m\n' "$RUN_NAME" "$ONLY"
    printf '%s\n' "${SUMMARY[@]}"
    printf '  total %s\n' "$(seconds_since "$RUN_START")"
    if ((rc == 0)); then
        printf '\033[1;32mAll steps passed.\033[0m\n'
    else
        printf '\033[1;31mFAILED: %s (exit %d)\033[0m\n' "${CURRENT:-setup}" "$rc"
    fi
    exit "$rc"
}

begin_steps() { # run name: the summary is printed however the run ends
    RUN_NAME=$1
    check_only
    trap on_exit EXIT
}

# ---------------------------------------------------------------------------------------------
# What the groups need. Each is idempotent and quick when everything is present.

apt_install() { # packages...: apt-get install, refreshing the index once if that fails
    apt-get install -y -qq "$@" >/dev/null || { apt-get update -qq && apt-get install -y -qq "$@" >/dev/null; }
}

ensure_rust_toolchain() {
    command -v cargo >/dev/null || die "cargo not found: install rustup (stable) first"
    if command -v rustup >/dev/null; then
        local installed component
        installed=$(rustup component list --installed)
        for component in rustfmt clippy; do
            if ! grep -q "^$component" <<<"$installed"; then
                rustup component add "$component"
            fi
        done
    fi
    cargo --version
}

ensure_python_venv() {
    # The stamp records what the venv was built from; a change to either rebuilds it.
    local stamp=$VENV/.pulseline-requirements
    local want
    want="$(python3 --version 2>&1) $(sha256sum "$REQUIREMENTS" | cut -d' ' -f1)"
    if [[ -x $VENV/bin/python && -f $stamp && $(<"$stamp") == "$want" ]]; then
        echo "up to date: $VENV ($want)"
        return
    fi
    if [[ ! -x $VENV/bin/python ]] || ! "$VENV/bin/python" -c '' 2>/dev/null; then
        rm -rf "$VENV"
        if ! python3 -m venv "$VENV"; then
            # Debian's python3 ships venv separately.
            rm -rf "$VENV"
            apt_install python3-venv
            python3 -m venv "$VENV"
        fi
    fi
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-input \
        -r "$REQUIREMENTS"
    echo "$want" >"$stamp"
}

npm_ci() { # directory: `npm ci` unless node_modules already matches package-lock.json
    local dir=$1
    command -v node >/dev/null || die "node not found: install Node.js 18+ first"
    if [[ -f $dir/node_modules/.package-lock.json && $dir/node_modules/.package-lock.json -nt $dir/package-lock.json ]]; then
        echo "$dir/node_modules up to date"
        return
    fi
    # --ignore-scripts: nothing here needs an install script (the builds are explicit steps).
    # `npm ci` refuses this lock on some registries: npm cannot record @napi-rs/lzma's optional
    # per-platform packages (a dependency of @napi-rs/cli), so it reports them "missing from lock
    # file". `npm install --no-save` still installs the locked versions and leaves the lock as is.
    if ! (cd "$dir" && npm ci --ignore-scripts --no-audit --no-fund); then
        echo "npm ci refused the lock file; installing the locked versions with npm install"
        (cd "$dir" && npm install --no-save --ignore-scripts --no-audit --no-fund)
    fi
}

ensure_node_deps() {
    node --version 2>/dev/null || die "node not found: install Node.js 18+ first"
    npm_ci sdk-node
    local dir
    for dir in examples/node-*/; do
        npm_ci "${dir%/}"
    done
}

ensure_segment_browser_deps() { npm_ci collector/tests/segment-browser; }

postgres_bin() { # the newest installed server's bin directory, or nothing
    local dir found=""
    for dir in /usr/lib/postgresql/*/bin; do
        [[ -x $dir/initdb ]] && found=$dir
    done
    echo "$found"
}

ensure_postgres_installed() {
    if [[ -z $(postgres_bin) ]]; then
        apt_install postgresql
        [[ -n $(postgres_bin) ]] || die "PostgreSQL did not install (apt-get install postgresql)"
    fi
    "$(postgres_bin)/initdb" --version
}

ensure_chromium() {
    command -v chromium >/dev/null || apt_install chromium
    chromium --version 2>/dev/null || true
}

ensure_dashboard_deps() {
    # npm ci installs uPlot and jsVectorMap (embedded by collector/build.rs) and
    # playwright-core (dev). Checked each: build.rs's own `npm ci --omit=dev` for a missing
    # library would remove playwright-core.
    [[ -d dashboard/node_modules/playwright-core && -d dashboard/node_modules/uplot &&
        -d dashboard/node_modules/jsvectormap ]] ||
        (cd dashboard && npm ci --no-audit --no-fund)
}

wasm_bindgen_version() { # the wasm-bindgen in Cargo.lock (pinned with = in Cargo.toml)
    awk '$0 == "name = \"wasm-bindgen\"" { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock
}

ensure_wasm_toolchain() {
    if command -v rustup >/dev/null && ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
        timeout 120 rustup target add wasm32-unknown-unknown ||
            die "could not add the wasm32-unknown-unknown target (rustup target add wasm32-unknown-unknown)"
    fi
    local want
    want=$(wasm_bindgen_version)
    [[ -n $want ]] || die "no wasm-bindgen in Cargo.lock"
    if [[ $(wasm-bindgen --version 2>/dev/null) != "wasm-bindgen $want" ]]; then
        # No prebuilt download here; --debug builds in ~2 min and generates identical glue.
        cargo install wasm-bindgen-cli --version "$want" --debug --force
    fi
    wasm-bindgen --version
    if [[ ! -x /usr/bin/chromium || ! -x /usr/bin/chromedriver ]]; then
        apt_install chromium chromium-driver
    fi
    # The release wasm (sdk-wasm/build.sh) builds std from source with Debian's compiler, so
    # std too is optimised for size and carries no panic messages (sdk-wasm/README.md "Size").
    local debian_rust=(rustc-web cargo-web rust-web-src lld-22)
    if [[ ! -x /usr/bin/cargo || ! -x /usr/bin/rustc || ! -d /usr/lib/rustlib/src/rust/library ]]; then
        apt_install "${debian_rust[@]}" ||
            die "could not install Debian's Rust for the browser SDK build (apt-get install -y ${debian_rust[*]})"
    fi
    /usr/bin/rustc -V
}

ensure_wasm_deps() { npm_ci sdk-wasm; }

CONTAINER_TOOLS=(podman runc mmdebstrap uidmap slirp4netns)

# Never fails: where the tools cannot install, the image build and test say so and skip.
ensure_container_tools() {
    if ! command -v podman >/dev/null || ! command -v mmdebstrap >/dev/null || ! command -v runc >/dev/null; then
        apt_install "${CONTAINER_TOOLS[@]}" ||
            echo "podman and mmdebstrap did not install (apt-get install ${CONTAINER_TOOLS[*]}): the image steps will skip"
    fi
    if command -v podman >/dev/null; then podman --version; fi
}

# The setup steps of the selected groups: ./scripts/test.sh runs them before its checks, and
# starts its first build between the toolchain and the rest.
setup_steps() {
    setup_toolchain_step
    setup_other_steps
}

setup_toolchain_step() { step setup "Rust toolchain (rustfmt, clippy)" ensure_rust_toolchain; }

setup_other_steps() {
    step postgres "PostgreSQL server (apt)" ensure_postgres_installed
    step interop,python "Python venv (.venv, requirements-test.txt)" ensure_python_venv
    step interop,dashboard "Chromium (apt)" ensure_chromium
    step interop "npm dependencies (collector/tests/segment-browser)" ensure_segment_browser_deps
    step node "npm dependencies (sdk-node, examples/node-*)" ensure_node_deps
    step wasm "wasm toolchain (target, wasm-bindgen-cli, chromium)" ensure_wasm_toolchain
    step wasm "npm dependencies (sdk-wasm)" ensure_wasm_deps
    step container "container tools (podman, runc, mmdebstrap)" ensure_container_tools
    step dashboard "npm dependencies (dashboard: uPlot, jsVectorMap, playwright-core)" ensure_dashboard_deps
}

if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
    begin_steps setup
    setup_steps
fi
