#!/usr/bin/env bash
# Pulseline's test command: ./scripts/test.sh  (CI runs it through .ci/run)
#
# Runs every check, in order, and stops at the first failure:
#   rust: sdk-wasm/build.sh --check (the committed browser SDK matches its sources)
#         cargo fmt --all --check
#         cargo clippy --workspace --all-targets -- -D warnings
#         cargo test --workspace --no-fail-fast
#         scripts/bump-version.sh --check (one version everywhere); cargo package and
#         cargo publish --dry-run of the `pulseline` crate; its docs with -D warnings
#   postgres: a throwaway PostgreSQL cluster, and the collector's suite again on it
#   interop: pytest collector/tests/interop against the real debug binary
#            (Segment's own Python SDK; schemathesis fuzzing /openapi.json)
#   python: the `pulseline` Python package (sdk-python): abi3 wheel and sdist built with
#           maturin (auditwheel show confirms the manylinux tag), the wheel installed into
#           .venv, its pytest suite and examples/python-* against the real collector, mypy
#           stubtest of the native module's .pyi and mypy --strict of the package; then the
#           wheel in a fresh venv without cargo/rustc on PATH, and the sdist via pip install,
#           each sending events to the real collector and reading them back
#   node: the `pulseline` npm package (sdk-node) built with napi-rs (release), its committed
#         loader and index.d.ts checked against the Rust source, tsc --strict on a typings
#         test, the npm tarballs (pulseline + this platform's pulseline-<platform>, napi's layout)
#         installed in a fresh project without Rust and used from CommonJS and ESM, and
#         node --test sdk-node/test/ (examples/node-* included) against the real collector
#   container: the Dockerfile's image (around the debug collector) built and run with podman,
#              an event sent to it and read back (skipped, saying why, where podman cannot run)
#   dashboard: the dashboard, and the browser SDK embedded in the collector, in Chromium
#
# It installs what it needs when missing, and skips that quickly when present:
#   .venv  python3 -m venv, with scripts/requirements-test.txt (reinstalled when that file changes)
#   sdk-node/node_modules, examples/node-*/node_modules  npm ci (again when package-lock.json changes)
#   wasm32-unknown-unknown target (rustup), wasm-bindgen-cli (exactly Cargo.lock's wasm-bindgen,
#   cargo install --debug into ~/.cargo/bin), chromium + chromium-driver (apt-get), Debian's
#   rustc-web + cargo-web + rust-web-src + lld-22 (apt-get; sdk-wasm/build.sh compiles the
#   release wasm with std built from source), sdk-wasm/node_modules (npm ci)
#
# Environment:
#   PULSELINE_TEST_ONLY=rust|postgres|interop|python|node|wasm|container|dashboard  run one group (default: all)
#   PULSELINE_TEST_PG_PORT=55432      port of the throwaway PostgreSQL cluster
#   PULSELINE_PYTEST_ARGS='-k gzip'   extra arguments for the interop pytest run
#   PULSELINE_SCHEMATHESIS_SEED=N     replay a schemathesis run (its seed is printed)
#
# Adding a step: write a function below (a setup `ensure_*` or a check), then add one
# `step GROUP "title" function` line to main(). Steps of a group not selected are skipped;
# group `setup` always runs.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
ONLY=${PULSELINE_TEST_ONLY:-all}
VENV=$ROOT/.venv
REQUIREMENTS=$ROOT/scripts/requirements-test.txt
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

# ---------------------------------------------------------------------------------------------
# Step bookkeeping: banners, timings, summary, fail fast.

SUMMARY=()
CURRENT=""
CURRENT_START=0
RUN_START=$(date +%s%N)

now_ns() { date +%s%N; }

seconds_since() { # start_ns -> "12.3s"
    local ms=$((($(now_ns) - $1) / 1000000))
    printf '%d.%01ds' $((ms / 1000)) $((ms % 1000 / 100))
}

step() { # group title function [args...]
    local group=$1 title=$2
    shift 2
    if [[ $group != setup && $ONLY != all && $ONLY != "$group" ]]; then
        SUMMARY+=("$(printf '  %-8s %-52s %s' skipped "$title" '')")
        return
    fi
    printf '\n\033[1m==> [%s] %s\033[0m\n' "$group" "$title"
    CURRENT=$title
    CURRENT_START=$(now_ns)
    "$@" # errexit is live here: a failing command ends the run through on_exit
    SUMMARY+=("$(printf '  %-8s %-52s %s' ok "$title" "$(seconds_since "$CURRENT_START")")")
    CURRENT=""
}

on_exit() {
    local rc=$?
    stop_postgres
    if [[ -n $CURRENT ]]; then
        SUMMARY+=("$(printf '  %-8s %-52s %s' FAILED "$CURRENT" "$(seconds_since "$CURRENT_START")")")
    fi
    printf '\n\033[1m==> Summary (PULSELINE_TEST_ONLY=%s)\033[0m\n' "$ONLY"
    printf '%s\n' "${SUMMARY[@]}"
    printf '  total %s\n' "$(seconds_since "$RUN_START")"
    if ((rc == 0)); then
        printf '\033[1;32mAll steps passed.\033[0m\n'
    else
        printf '\033[1;31mFAILED: %s (exit %d)\033[0m\n' "${CURRENT:-setup}" "$rc"
    fi
    exit "$rc"
}
trap on_exit EXIT

die() {
    printf 'error: %s\n' "$*" >&2
    exit 1
}

# ---------------------------------------------------------------------------------------------
# Setup: install what is missing. Each is idempotent and quick when everything is present.

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
            apt-get install -y python3-venv
            python3 -m venv "$VENV"
        fi
    fi
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-input \
        -r "$REQUIREMENTS"
    echo "$want" >"$stamp"
}

# ---------------------------------------------------------------------------------------------
# Checks.

rust_fmt() { cargo fmt --all --check; }

# sdk-wasm/dist is committed (every collector binary embeds it): it must be what its sources
# build. Compares the SHA-256 of the inputs with dist/.inputs; needs no wasm toolchain.
sdk_dist_fresh() { sdk-wasm/build.sh --check; }

rust_clippy() { cargo clippy --workspace --all-targets -- -D warnings; }

rust_tests() { cargo test --workspace --no-fail-fast; }

check_versions() { scripts/bump-version.sh --check; }

# The `pulseline` crate as crates.io would take it: packaged (its manifest normalised, path
# dev-dependencies dropped), built from the package alone, and documented as docs.rs does.
# --allow-dirty: a developer's uncommitted changes are what should be checked.
rust_crate_package() {
    cargo package -p pulseline --allow-dirty
    cargo publish --dry-run --no-verify -p pulseline --allow-dirty
}

rust_crate_docs() { RUSTDOCFLAGS="-D warnings" cargo doc -p pulseline --no-deps --all-features; }

build_collector() {
    if [[ $ONLY == all ]]; then
        # The same command and features as rust_tests, so here it is a no-op (a plain
        # `cargo build` unifies features differently and would rebuild the binary, ~50 s).
        cargo test --workspace --no-run
    else
        # Just the binary: interop-only runs should not need every Rust test to compile.
        cargo build -p pulseline-collector --bin pulseline-collector
    fi
    [[ -x $TARGET_DIR/debug/pulseline-collector ]] || die "no $TARGET_DIR/debug/pulseline-collector"
}

interop_tests() {
    local -a extra=()
    if [[ -n ${PULSELINE_PYTEST_ARGS:-} ]]; then
        read -r -a extra <<<"$PULSELINE_PYTEST_ARGS"
    fi
    # No cache dir or bytecode in the work tree; the fixtures keep everything under pytest's tmp.
    PULSELINE_COLLECTOR_BIN=$TARGET_DIR/debug/pulseline-collector \
        PYTHONDONTWRITEBYTECODE=1 \
        timeout --kill-after=30 900 \
        "$VENV/bin/python" -m pytest collector/tests/interop -p no:cacheprovider -v -ra "${extra[@]}"
}

# Segment's own browser SDK (@segment/analytics-next, bundled with esbuild) against the collector
# in headless Chromium (docs/web-analytics.md).
segment_browser_tests() {
    npm_ci collector/tests/segment-browser
    PULSELINE_COLLECTOR_BIN=$TARGET_DIR/debug/pulseline-collector \
        timeout --kill-after=30 600 node --test collector/tests/segment-browser/segment.test.mjs
}

# ---------------------------------------------------------------------------------------------
# The Python SDK (sdk-python): built once, as the wheel and sdist a release publishes, and that
# wheel installed into .venv for the tests; incremental after the first build.

WHEELS=$TARGET_DIR/wheels

python_sdk_build() {
    rm -f "$WHEELS"/pulseline-*
    "$VENV/bin/maturin" build --release --quiet -m sdk-python/Cargo.toml --out "$WHEELS"
    "$VENV/bin/maturin" sdist -m sdk-python/Cargo.toml --out "$WHEELS"
    local wheel
    wheel=$(python_wheel)
    # One abi3 wheel per platform, with a manylinux tag its symbols really satisfy.
    [[ $wheel == */pulseline-*-cp310-abi3-manylinux_*.whl ]] || die "not an abi3 manylinux wheel: $wheel"
    local report
    report=$("$VENV/bin/auditwheel" show "$wheel")
    echo "$report"
    local tag=${wheel##*-abi3-}
    tag=${tag%.whl}
    tr -s ' \n' ' ' <<<"$report" | grep -qF "consistent with the following platform tag: \"$tag\"" ||
        die "auditwheel does not confirm the wheel's tag $tag"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps \
        --force-reinstall "$wheel"
    "$VENV/bin/python" -c 'import pulseline; print("pulseline", pulseline.__version__)'
}

python_wheel() { # the one wheel python_sdk_build left in $WHEELS
    # Only manylinux: maturin also drops the sdist install's own build (linux_x86_64) here.
    local found=("$WHEELS"/pulseline-*-manylinux_*.whl)
    [[ ${#found[@]} == 1 && -f ${found[0]} ]] || die "expected one wheel in $WHEELS, found: ${found[*]}"
    echo "${found[0]}"
}

# A customer's install: a fresh venv, the wheel alone (--no-index), and neither cargo nor rustc
# reachable (only the venv's bin on PATH; Debian's rustc-web puts cargo in /usr/bin). Then the
# installed package sends events to the real collector and reads them back.
python_wheel_install() {
    local dir
    dir=$(mktemp -d /tmp/pulseline-wheel.XXXXXX)
    python3 -m venv "$dir/venv"
    local -a bare=(env -i "HOME=$dir" "PATH=$dir/venv/bin" "LANG=C.UTF-8" "NO_PROXY=$NO_PROXY")
    if "${bare[@]}" /bin/sh -c 'command -v cargo || command -v rustc'; then
        die "cargo or rustc is reachable on the install PATH"
    fi
    "${bare[@]}" python -m pip install --quiet --disable-pip-version-check --no-index --no-deps \
        "$(python_wheel)"
    "${bare[@]}" python sdk-python/tests/installed_package.py \
        "$TARGET_DIR/debug/pulseline-collector" "$dir"
    rm -rf "$dir"
}

# `pip install` of the sdist compiles the extension from its sources alone (cargo on PATH). It
# shares the target directory, so what the wheel build compiled is reused: a file missing from
# the sdist still fails, as cargo must then rebuild from the sdist's tree.
python_sdist_install() {
    local dir sdist=("$WHEELS"/pulseline-*.tar.gz)
    [[ -f ${sdist[0]} ]] || die "no sdist in $WHEELS"
    dir=$(mktemp -d /tmp/pulseline-sdist.XXXXXX)
    python3 -m venv "$dir/venv"
    CARGO_TARGET_DIR=$TARGET_DIR "$dir/venv/bin/python" -m pip install --quiet \
        --disable-pip-version-check --no-cache-dir "${sdist[0]}"
    "$dir/venv/bin/python" sdk-python/tests/installed_package.py \
        "$TARGET_DIR/debug/pulseline-collector" "$dir"
    rm -rf "$dir"
}

python_sdk_tests() {
    # Includes tests/test_examples.py, which runs examples/python-*.
    PULSELINE_COLLECTOR_BIN=$TARGET_DIR/debug/pulseline-collector \
        PYTHONDONTWRITEBYTECODE=1 \
        timeout --kill-after=30 600 \
        "$VENV/bin/python" -m pytest sdk-python/tests -p no:cacheprovider -v -ra
}

python_sdk_types() {
    # The hand-written stub must match the compiled module, and the package must type-check.
    (cd sdk-python && "$VENV/bin/python" -m mypy.stubtest pulseline._native)
    (cd sdk-python && "$VENV/bin/python" -m mypy --strict --no-incremental python/pulseline)
}

# ---------------------------------------------------------------------------------------------
# The Node SDK (sdk-node): napi-rs addon, generated typings, node:test suite and examples.

npm_ci() { # directory: `npm ci` unless node_modules already matches package-lock.json
    local dir=$1
    if [[ -f $dir/node_modules/.package-lock.json && $dir/node_modules/.package-lock.json -nt $dir/package-lock.json ]]; then
        echo "$dir/node_modules up to date"
        return
    fi
    # --ignore-scripts: nothing here needs an install script (node_sdk_build builds the addon).
    # `npm ci` refuses this lock on some registries: npm cannot record @napi-rs/lzma's optional
    # per-platform packages (a dependency of @napi-rs/cli), so it reports them "missing from lock
    # file". `npm install --no-save` still installs the locked versions and leaves the lock as is.
    if ! (cd "$dir" && npm ci --ignore-scripts --no-audit --no-fund); then
        echo "npm ci refused the lock file; installing the locked versions with npm install"
        (cd "$dir" && npm install --no-save --ignore-scripts --no-audit --no-fund)
    fi
}

ensure_node_deps() {
    command -v node >/dev/null || die "node not found: install Node.js 18+ first"
    node --version
    npm_ci sdk-node
}

node_sdk_build() {
    # Release: what users install, and what the benchmark measures.
    (cd sdk-node && npx napi build --platform --release --output-dir native --js index.js --dts index.d.ts)
    # The loader and typings are committed (a dependency install has no napi CLI); they must be
    # what the Rust source generates.
    git diff --exit-code -- sdk-node/native/index.js sdk-node/native/index.d.ts ||
        die "sdk-node/native/index.{js,d.ts} differ from what the Rust source generates: commit them"
}

node_sdk_types() {
    # Correct usage compiles; every `@ts-expect-error` line must fail to compile.
    (cd sdk-node && npx tsc --strict --noEmit --target es2022 --module nodenext \
        --moduleResolution nodenext --types node test/types/usage.ts)
}

# The npm packages as napi-rs's release makes them (docs/install-node.md), for this platform
# only: `pulseline` wired by optionalDependencies to `pulseline-<platform>`, which carries the
# release addon (node_sdk_build made it; the script's own napi build finds it up to date).
NPM_PACKAGES=$TARGET_DIR/npm-packages

node_sdk_pack() { sdk-node/scripts/pack.sh "$NPM_PACKAGES"; }

node_sdk_package_tests() {
    # A fresh project installs the tarballs with no cargo or rustc on its PATH, then uses them.
    PULSELINE_COLLECTOR_BIN=$TARGET_DIR/debug/pulseline-collector PULSELINE_NPM_PACKAGES=$NPM_PACKAGES \
        timeout --kill-after=30 600 node --test sdk-node/test/packages/
}

node_examples_deps() {
    local dir
    for dir in examples/node-*/; do
        npm_ci "${dir%/}"
    done
}

node_sdk_tests() {
    # Includes test/examples.test.mjs, which runs examples/node-*.
    # test/packages/ needs the packed tarballs: node_sdk_package_tests runs it.
    PULSELINE_COLLECTOR_BIN=$TARGET_DIR/debug/pulseline-collector node --test sdk-node/test/*.test.mjs
}

# ---------------------------------------------------------------------------------------------
# PostgreSQL: a throwaway cluster on loopback for this run (TOOLCHAIN.md), stopped at exit.

PG_PORT=${PULSELINE_TEST_PG_PORT:-55432}
PG_DIR=""
# The cluster lives only for this run: no crash safety, and little WAL kept, so that its disk
# use stays near one test binary's databases (about 10 MB each) on a small CI disk.
PG_LEAN="-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c wal_level=minimal"
PG_LEAN+=" -c max_wal_senders=0 -c max_wal_size=96MB -c min_wal_size=32MB"

postgres_bin() { # the newest installed server's bin directory, or nothing
    local dir found=""
    for dir in /usr/lib/postgresql/*/bin; do
        [[ -x $dir/initdb ]] && found=$dir
    done
    echo "$found"
}

ensure_postgres() {
    local bin
    bin=$(postgres_bin)
    if [[ -z $bin ]]; then
        apt-get update -qq && apt-get install -y -qq postgresql >/dev/null
        bin=$(postgres_bin)
        [[ -n $bin ]] || die "PostgreSQL did not install (apt-get install postgresql)"
    fi
    # A port nothing listens on (another run or a developer's server may hold the default).
    while (: </dev/tcp/127.0.0.1/"$PG_PORT") 2>/dev/null; do
        PG_PORT=$((PG_PORT + 1))
    done
    PG_DIR=$(mktemp -d /tmp/pulseline-pg.XXXXXX)
    chown postgres:postgres "$PG_DIR"
    runuser -u postgres -- "$bin/initdb" -D "$PG_DIR/data" -U postgres --auth=trust -E UTF8 \
        --locale=C.UTF-8 >"$PG_DIR/initdb.log"
    runuser -u postgres -- "$bin/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w \
        -o "-p $PG_PORT -k $PG_DIR -c listen_addresses=127.0.0.1 -c max_connections=300 $PG_LEAN" start
    PG_BIN=$bin
    export PULSELINE_PG_URL="postgres://postgres@127.0.0.1:$PG_PORT/postgres"
}

stop_postgres() {
    if [[ -n $PG_DIR && -d $PG_DIR/data ]]; then
        runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m fast -w stop >/dev/null || true
        rm -rf "$PG_DIR"
    fi
}

# The whole collector suite again (one test binary, tests/api/), each test on a fresh database
# of the cluster. Selected by test target inside a --workspace build, so it reuses what
# `cargo test --workspace` compiled (`-p pulseline-collector` would unify features differently
# and rebuild the collector). All databases at once would need ~2 GB: the suite drops each
# test's database once its test has ended, and what is left at the end is dropped here.
collector_tests_postgres() {
    local ok=1
    PULSELINE_TEST_POSTGRES_URL=$PULSELINE_PG_URL \
        cargo test --workspace --quiet --test api || ok=0
    drop_test_databases
    ((ok)) || die "collector tests failed on PostgreSQL"
}

drop_test_databases() {
    local name
    for name in $("$PG_BIN/psql" "$PULSELINE_PG_URL" -Atc \
        "SELECT datname FROM pg_database WHERE datname LIKE 'pl\_test\_%'"); do
        "$PG_BIN/psql" "$PULSELINE_PG_URL" -qc "DROP DATABASE \"$name\" WITH (FORCE)" >/dev/null
    done
}

# The dashboard in headless Debian Chromium, driven by playwright-core (no browser download),
# against the real collector binary. Screenshots land in target/dashboard-screenshots/.
ensure_chromium() {
    command -v chromium >/dev/null && return
    apt-get update -qq && apt-get install -y -qq chromium >/dev/null
}

ensure_dashboard_deps() {
    # npm ci installs uPlot (embedded by collector/build.rs) and playwright-core (dev).
    [[ -d dashboard/node_modules/playwright-core ]] ||
        (cd dashboard && npm ci --no-audit --no-fund)
}

# The dashboard test sends events with the Rust SDK's quickstart example too. A full run has
# built it already (cargo test --workspace --no-run); a dashboard-only run builds it here.
build_quickstart() {
    [[ $ONLY == all && -x $TARGET_DIR/debug/rust-quickstart ]] || cargo build -p rust-quickstart
}

dashboard_browser_tests() {
    PULSELINE_COLLECTOR_BIN=$TARGET_DIR/debug/pulseline-collector \
        PULSELINE_QUICKSTART_BIN=$TARGET_DIR/debug/rust-quickstart \
        timeout --kill-after=30 600 node dashboard/tests/browser.mjs
}

# The browser SDK embedded in the collector, as a customer's page meets it: the Keys page's
# snippet on another origin in Chromium sends an event; prints the bytes the page downloaded.
embedded_sdk_browser_test() {
    PULSELINE_COLLECTOR_BIN=$TARGET_DIR/debug/pulseline-collector \
        timeout --kill-after=30 300 node collector/tests/browser/embedded_sdk.mjs
}

# ---------------------------------------------------------------------------------------------
# The container image: the Dockerfile's `prebuilt` target holding the collector built above, on
# a Debian base image made by mmdebstrap from Debian's mirror (no image registry is reachable),
# run with podman; an event sent to the container is read back. When podman cannot run on the
# machine, the step says exactly why and skips.

CONTAINER_BASE=localhost/pulseline-base:bookworm
CONTAINER_IMAGE=localhost/pulseline-collector:test

container_image_test() {
    local tools=(podman runc mmdebstrap uidmap slirp4netns)
    if ! command -v podman >/dev/null || ! command -v mmdebstrap >/dev/null || ! command -v runc >/dev/null; then
        apt-get install -y -qq "${tools[@]}" >/dev/null ||
            { apt-get update -qq && apt-get install -y -qq "${tools[@]}" >/dev/null; } ||
            { echo "SKIPPED: podman and mmdebstrap did not install (apt-get install ${tools[*]})"; return; }
    fi
    local info
    if ! info=$(podman info 2>&1); then
        echo "SKIPPED: podman cannot run on this machine: $(tail -n 3 <<<"$info")"
        return
    fi
    # On this machine kind (cgroup v1 with an empty cgroup2 hierarchy beside it), crun refuses
    # to start containers ("cgroups in hybrid mode not supported") and podman's default rlimits
    # exceed the hard limits ("setrlimit RLIMIT_NOFILE: Operation not permitted"): use runc and
    # limits within the host's.
    local nofile nproc=4096
    nofile=$(ulimit -Hn)
    [[ $nofile != unlimited ]] && ((nofile < 65536)) || nofile=65536
    [[ $(ulimit -Hu) == unlimited ]] || ((nproc <= $(ulimit -Hu))) || nproc=$(ulimit -Hu)
    local run=(--runtime runc --ulimit "nofile=$nofile:$nofile" --ulimit "nproc=$nproc:$nproc")
    if ! podman image exists "$CONTAINER_BASE"; then
        # Debian 12 minbase, plus what the Dockerfile's base stage installs (so it needs no fetch).
        mmdebstrap --variant=minbase --include=ca-certificates,curl bookworm - |
            podman import - "$CONTAINER_BASE"
    fi
    local context
    context=$(mktemp -d)
    cp "$TARGET_DIR/debug/pulseline-collector" "$context/"
    podman build "${run[@]}" --quiet --format docker --target prebuilt --build-arg RUNTIME_IMAGE="$CONTAINER_BASE" \
        -f Dockerfile -t "$CONTAINER_IMAGE" "$context"
    rm -rf "$context"
    local name=pulseline-test-$$ port=18080
    while (: </dev/tcp/127.0.0.1/"$port") 2>/dev/null; do port=$((port + 1)); done
    podman run "${run[@]}" -d --name "$name" -p "127.0.0.1:$port:8080" "$CONTAINER_IMAGE" >/dev/null
    # Removed however the step ends; on_exit must still see the step's exit status.
    # shellcheck disable=SC2064 # the name is fixed now
    trap "rc=\$?; set +e; podman rm -f $name >/dev/null 2>&1; (exit \$rc); on_exit" EXIT
    local url=http://127.0.0.1:$port deadline=$((SECONDS + 90))
    until curl -fs -o /dev/null "$url/readyz"; do
        ((SECONDS < deadline)) || { podman logs "$name" | tail -n 20; die "the container did not become ready"; }
        sleep 0.5
    done
    [[ $(podman exec "$name" id -u) == 10001 ]] || die "the container runs as $(podman exec "$name" id -u), not uid 10001"
    # Run by hand: podman's healthcheck timer needs systemd, which this machine kind lacks.
    podman healthcheck run "$name" || die "the image's HEALTHCHECK fails on a ready collector"
    local keys write secret
    keys=$(podman exec "$name" pulseline-collector project create --name container --json)
    write=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["write_key"])' <<<"$keys")
    secret=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["secret_key"])' <<<"$keys")
    curl -fsS -u "$write:" -H 'Content-Type: application/json' "$url/v1/track" \
        -d '{"type":"track","userId":"u1","event":"Container Test","messageId":"container-1"}'
    echo
    curl -fsS -H "Authorization: Bearer $secret" "$url/api/v1/events?event=Container%20Test" |
        grep -q '"messageId":"container-1"' || die "the event sent to the container was not read back"
    podman exec "$name" pulseline-collector backup --to /data/backup.db
    podman exec "$name" ls -l /data
    # SIGTERM, as an orchestrator stops it: the collector exits cleanly within its grace.
    podman stop --time 40 "$name" >/dev/null
    [[ $(podman inspect --format '{{.State.ExitCode}}' "$name") == 0 ]] || die "the collector exited non-zero on SIGTERM"
    podman rm -f "$name" >/dev/null
    trap on_exit EXIT
    echo "container image: built, ran as uid 10001, healthy, event stored and read back, backed up, stopped cleanly"
}

# The Web page (docs/dashboard-web.md): a seeded week, filters, the URL, screenshots.
dashboard_web_tests() {
    PULSELINE_COLLECTOR_BIN=$TARGET_DIR/debug/pulseline-collector \
        timeout --kill-after=30 300 node dashboard/tests/web.mjs
}

# ---------------------------------------------------------------------------------------------
# The browser SDK (sdk-wasm): wasm-bindgen build, wasm tests, typings, Chromium end to end.

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
        apt-get install -y chromium chromium-driver ||
            { apt-get update && apt-get install -y chromium chromium-driver; }
    fi
    # The release wasm (sdk-wasm/build.sh) builds std from source with Debian's compiler, so
    # std too is optimised for size and carries no panic messages (sdk-wasm/README.md "Size").
    local debian_rust=(rustc-web cargo-web rust-web-src lld-22)
    if [[ ! -x /usr/bin/cargo || ! -x /usr/bin/rustc || ! -d /usr/lib/rustlib/src/rust/library ]]; then
        apt-get install -y "${debian_rust[@]}" ||
            { apt-get update && apt-get install -y "${debian_rust[@]}"; } ||
            die "could not install Debian's Rust for the browser SDK build (apt-get install -y ${debian_rust[*]})"
    fi
    /usr/bin/rustc -V
}

ensure_wasm_deps() {
    command -v node >/dev/null || die "node not found: install Node.js 18+ first"
    npm_ci sdk-wasm
}

wasm_sdk_build() { sdk-wasm/build.sh; }

wasm_core_tests() {
    local runner=CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER
    env "$runner=wasm-bindgen-test-runner" \
        cargo test -p pulseline-browser --target wasm32-unknown-unknown --test core
    env "$runner=wasm-bindgen-test-runner" WASM_BINDGEN_USE_BROWSER=1 CHROMEDRIVER=/usr/bin/chromedriver \
        cargo test -p pulseline-browser --target wasm32-unknown-unknown --test core
}

wasm_sdk_types() {
    # The generated dist/pulseline.d.ts as a TypeScript user sees it; @ts-expect-error lines must fail.
    (cd sdk-wasm && npx tsc --strict --noEmit --target es2022 --module es2022 \
        --moduleResolution bundler --lib es2022,dom test/types/usage.ts)
}

wasm_browser_tests() {
    cat sdk-wasm/dist/SIZES.txt
    (cd sdk-wasm && node --test test/*.test.mjs)
}

# ---------------------------------------------------------------------------------------------

main() {
    case $ONLY in
    all | rust | postgres | interop | python | node | wasm | container | dashboard) ;;
    *) die "PULSELINE_TEST_ONLY must be rust, postgres, interop, python, node, wasm, container or dashboard (or unset for all), not '$ONLY'" ;;
    esac

    step setup "Rust toolchain (rustfmt, clippy)" ensure_rust_toolchain
    step rust "browser SDK in sdk-wasm/dist built from its sources" sdk_dist_fresh
    step rust "cargo fmt --all --check" rust_fmt
    step rust "cargo clippy --workspace --all-targets -D warnings" rust_clippy
    step rust "cargo test --workspace" rust_tests
    step rust "one version for every package (bump-version --check)" check_versions
    step rust "pulseline crate: cargo package, publish --dry-run" rust_crate_package
    step rust "pulseline crate docs (cargo doc, -D warnings)" rust_crate_docs
    step postgres "throwaway PostgreSQL cluster (loopback)" ensure_postgres
    step postgres "collector tests on PostgreSQL" collector_tests_postgres

    step interop "Python venv (.venv, requirements-test.txt)" ensure_python_venv
    step interop "build pulseline-collector (debug)" build_collector
    step interop "interop tests (Segment SDK, schemathesis)" interop_tests
    step interop "Chromium (apt)" ensure_chromium
    step interop "Segment analytics-next in Chromium (playwright-core)" segment_browser_tests

    step python "Python venv (.venv, requirements-test.txt)" ensure_python_venv
    step python "build pulseline-collector (debug)" build_collector
    step python "build the pulseline wheel and sdist (maturin)" python_sdk_build
    step python "Python SDK tests and examples (pytest)" python_sdk_tests
    step python "Python SDK types (stubtest, mypy --strict)" python_sdk_types
    step python "the wheel installs and runs without Rust" python_wheel_install
    step python "the sdist builds and installs (pip install)" python_sdist_install

    step node "npm dependencies (sdk-node)" ensure_node_deps
    step node "build pulseline-collector (debug)" build_collector
    step node "build the pulseline npm package (napi-rs, release)" node_sdk_build
    step node "TypeScript typings (tsc --strict)" node_sdk_types
    step node "npm pack: pulseline + this platform's package (napi)" node_sdk_pack
    step node "npm packages installed without Rust (CJS, ESM)" node_sdk_package_tests
    step node "npm dependencies (examples/node-*)" node_examples_deps
    step node "Node SDK tests and examples (node --test)" node_sdk_tests

    step wasm "wasm toolchain (target, wasm-bindgen-cli, chromium)" ensure_wasm_toolchain
    step wasm "npm dependencies (sdk-wasm)" ensure_wasm_deps
    step wasm "build pulseline-collector (debug)" build_collector
    step wasm "build the browser SDK (sdk-wasm/build.sh, cached)" wasm_sdk_build
    step wasm "core in wasm (wasm-bindgen-test: Node, Chromium)" wasm_core_tests
    step wasm "TypeScript typings (tsc --strict)" wasm_sdk_types
    step wasm "browser SDK end to end (headless Chromium)" wasm_browser_tests
    step container "build pulseline-collector (debug)" build_collector
    step container "container image (podman): run, send, read back" container_image_test
    step dashboard "Chromium (apt)" ensure_chromium
    step dashboard "npm dependencies (dashboard: uPlot, playwright-core)" ensure_dashboard_deps
    step dashboard "build pulseline-collector (debug)" build_collector
    step dashboard "build the Rust SDK quickstart (debug)" build_quickstart
    step dashboard "dashboard in Chromium (playwright-core)" dashboard_browser_tests
    step dashboard "embedded browser SDK in Chromium (Keys page snippet)" embedded_sdk_browser_test
    step dashboard "the Web page in Chromium" dashboard_web_tests
}

main "$@"
