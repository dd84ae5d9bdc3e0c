#!/usr/bin/env bash
# Pulseline's test command: ./scripts/test.sh  (CI runs it through .ci/run)
#
# First the setup steps of scripts/setup.sh (install what is missing; quick when present), then
# every check, stopping at the first failure, and a summary table of the steps. The groups run
# in this order, except that the container steps and the sdist's install come last (the release
# builds run in the background: start_release_builds below):
#   rust: sdk-wasm/build.sh --check (the committed browser SDK matches its sources)
#         cargo fmt --all --check
#         the workspace's test build (--all-targets), linted by clippy as it compiles (-D warnings)
#         cargo test --workspace --no-fail-fast
#         scripts/bump-version.sh --check (one version everywhere); the crate package into
#         dist/ (scripts/dist.sh crate) and cargo publish --dry-run; its docs with -D warnings
#   postgres: a throwaway PostgreSQL cluster, and the collector's suite again on it
#   interop: pytest collector/tests/interop against the real debug binary
#            (Segment's own Python SDK; schemathesis fuzzing /openapi.json), and Segment's
#            analytics-next in Chromium
#   python: the abi3 wheel and sdist built into dist/ (scripts/dist.sh python: maturin,
#           auditwheel), that wheel installed into .venv, its pytest suite and examples/python-*
#           against the real collector, mypy stubtest of the native module's .pyi and mypy
#           --strict of the package; then the wheel in a fresh venv without cargo/rustc on PATH,
#           and the sdist via pip install, each sending events to the real collector and
#           reading them back
#   node: the npm tarballs built into dist/ (scripts/dist.sh node: pulseline + this platform's
#         pulseline-<platform> with the stripped release addon, napi's layout; the committed
#         loader and index.d.ts checked against the Rust source), tsc --strict on a typings
#         test, the tarballs installed in a fresh project without Rust and used from CommonJS
#         and ESM, node --test sdk-node/test/ (examples/node-* included), and the browser SDK's
#         converter against the Node SDK's (sdk-wasm/test/node-parity.mjs)
#   wasm: the browser SDK built (sdk-wasm/build.sh), wasm-bindgen-test in Node and Chromium,
#         its typings, and its end-to-end tests in Chromium, among them the @pulseline/browser
#         tarball of dist/ (scripts/dist.sh browser) installed in an esbuild project
#   container: the release collector and its image built into dist/ (scripts/dist.sh collector
#              image), the image loaded from dist/ and run with podman, an event sent to it and
#              read back (skipped, saying why, where podman cannot run)
#   dashboard: the dashboard, and the browser SDK embedded in the collector, in Chromium
# The artifacts a run built are listed with their sizes at the end.
#
# Environment:
#   PULSELINE_TEST_ONLY=rust|postgres|interop|python|node|wasm|container|dashboard  run one group (default: all)
#   PULSELINE_TEST_PG_PORT=55432      port of the throwaway PostgreSQL cluster
#   PULSELINE_PYTEST_ARGS='-k gzip'   extra arguments for the interop pytest run
#   PULSELINE_SCHEMATHESIS_SEED=N     replay a schemathesis run (its seed is printed)
#
# Adding a step: write a function (something to install: an `ensure_*` in scripts/setup.sh and
# a line in its setup_other_steps; an artifact: a `dist_*` in scripts/dist.sh; a check: here),
# then add one `step GROUP "title" function` line to main(). Steps of groups not selected are
# skipped.

# shellcheck source=scripts/dist.sh
source "$(dirname "${BASH_SOURCE[0]}")/dist.sh"
COLLECTOR_DEBUG=$TARGET_DIR/debug/pulseline-collector

# ---------------------------------------------------------------------------------------------
# Checks.

rust_fmt() { cargo fmt --all --check; }

# sdk-wasm/dist is committed (every collector binary embeds it): it must be what its sources
# build. Compares the SHA-256 of the inputs with dist/.inputs; needs no wasm toolchain.
sdk_dist_fresh() { sdk-wasm/build.sh --check; }

# The workspace is built for its tests once, linted as it compiles: clippy's driver wraps rustc
# for the workspace's own crates, as `cargo clippy` does, so the lint run needs no check build
# of every dependency beside the test build (docs/testing.md). Every debug build of this script
# goes through clippy_cargo: without the same wrapper, cargo would rebuild the workspace.
clippy_cargo() {
    local driver
    driver=$(rustup which clippy-driver 2>/dev/null || command -v clippy-driver) ||
        die "no clippy-driver: rustup component add clippy"
    RUSTC_WORKSPACE_WRAPPER=$driver CLIPPY_ARGS="-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__" \
        cargo "$@"
}

# --all-targets: the benches and examples too, which the test run itself does not build.
rust_build_linted() { clippy_cargo test --workspace --all-targets --no-run; }

# The collector's suite waits on timers, disks and child processes about as much as it computes:
# with one test thread per core it leaves a third of the CPU idle (docs/testing.md, "How long
# the test command takes"). RUST_TEST_THREADS in the environment still wins.
TEST_THREADS=${RUST_TEST_THREADS:-4}

rust_tests() { RUST_TEST_THREADS=$TEST_THREADS clippy_cargo test --workspace --no-fail-fast; }

check_versions() { scripts/bump-version.sh --check; }

# --no-verify: dist_crate has just built the package alone (cargo package verifies).
rust_crate_publish_dry_run() { cargo publish --dry-run --no-verify -p pulseline --allow-dirty; }

rust_crate_docs() { RUSTDOCFLAGS="-D warnings" cargo doc -p pulseline --no-deps --all-features; }

build_collector() {
    if [[ $ONLY == all ]]; then
        # The same command and features as rust_tests, so here it is a no-op (a plain
        # `cargo build` unifies features differently and would rebuild the binary, ~50 s).
        clippy_cargo test --workspace --no-run
    else
        # Just the binary: interop-only runs should not need every Rust test to compile.
        clippy_cargo build -p pulseline-collector --bin pulseline-collector
    fi
    [[ -x $COLLECTOR_DEBUG ]] || die "no $COLLECTOR_DEBUG"
}

interop_tests() {
    local -a extra=()
    if [[ -n ${PULSELINE_PYTEST_ARGS:-} ]]; then
        read -r -a extra <<<"$PULSELINE_PYTEST_ARGS"
    fi
    # No cache dir or bytecode in the work tree; the fixtures keep everything under pytest's tmp.
    # Two workers (pytest-xdist; every test has its own collector on a free port): the three
    # schemathesis runs are most of the time, each one Python process busy on one core.
    PULSELINE_COLLECTOR_BIN=$COLLECTOR_DEBUG \
        PYTHONDONTWRITEBYTECODE=1 \
        timeout --kill-after=30 900 \
        "$VENV/bin/python" -m pytest collector/tests/interop -p no:cacheprovider -v -ra \
        -n 2 --dist worksteal "${extra[@]}"
}

# Segment's own browser SDK (@segment/analytics-next, bundled with esbuild) against the collector
# in headless Chromium (docs/web-analytics.md).
segment_browser_tests() {
    PULSELINE_COLLECTOR_BIN=$COLLECTOR_DEBUG \
        timeout --kill-after=30 600 node --test collector/tests/segment-browser/segment.test.mjs
}

# ---------------------------------------------------------------------------------------------
# The Python SDK (sdk-python), from the wheel and sdist of dist/ (dist_python).

# The wheel into .venv, for the SDK's own tests and types.
python_venv_install() {
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps \
        --force-reinstall "$(dist_python_wheel)"
    "$VENV/bin/python" -c 'import pulseline; print("pulseline", pulseline.__version__)'
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
        "$(dist_python_wheel)"
    "${bare[@]}" python sdk-python/tests/installed_package.py "$COLLECTOR_DEBUG" "$dir"
    rm -rf "$dir"
}

# `pip install` of the sdist compiles the extension from its sources alone (cargo on PATH). It
# shares the target directory, so what the wheel build compiled is reused: a file missing from
# the sdist still fails, as cargo must then rebuild from the sdist's tree.
python_sdist_install() {
    local dir
    dir=$(mktemp -d /tmp/pulseline-sdist.XXXXXX)
    python3 -m venv "$dir/venv"
    CARGO_TARGET_DIR=$TARGET_DIR "$dir/venv/bin/python" -m pip install --quiet \
        --disable-pip-version-check --no-cache-dir "$(dist_python_sdist)"
    "$dir/venv/bin/python" sdk-python/tests/installed_package.py "$COLLECTOR_DEBUG" "$dir"
    rm -rf "$dir"
}

python_sdk_tests() {
    # Includes tests/test_examples.py, which runs examples/python-*.
    PULSELINE_COLLECTOR_BIN=$COLLECTOR_DEBUG \
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
# The Node SDK (sdk-node), from the npm tarballs of dist/ (dist_node built the release addon
# into sdk-node/native too, which the SDK's own tests load).

node_sdk_types() {
    # Correct usage compiles; every `@ts-expect-error` line must fail to compile.
    (cd sdk-node && npx tsc --strict --noEmit --target es2022 --module nodenext \
        --moduleResolution nodenext --types node test/types/usage.ts)
}

node_sdk_package_tests() {
    # A fresh project installs the tarballs with no cargo or rustc on its PATH, then uses them.
    PULSELINE_COLLECTOR_BIN=$COLLECTOR_DEBUG PULSELINE_NPM_PACKAGES=$DIST \
        timeout --kill-after=30 600 node --test sdk-node/test/packages/
}

# The browser SDK's converter (sdk-wasm/js/convert.js) against the Node SDK's, whose addon
# dist_node has just built: the same table of values, the same JSON and error texts.
browser_node_conversion_parity() {
    timeout --kill-after=30 300 node --test sdk-wasm/test/node-parity.mjs
}

node_sdk_tests() {
    # Includes test/examples.test.mjs, which runs examples/node-*.
    # test/packages/ needs the packed tarballs: node_sdk_package_tests runs it.
    PULSELINE_COLLECTOR_BIN=$COLLECTOR_DEBUG node --test sdk-node/test/*.test.mjs
}

# ---------------------------------------------------------------------------------------------
# PostgreSQL: a throwaway cluster on loopback for this run (docs/toolchain.md), stopped at exit.

PG_PORT=${PULSELINE_TEST_PG_PORT:-55432}
PG_DIR=""
# The cluster lives only for this run: no crash safety, and little WAL kept, so that its disk
# use stays near one test binary's databases (about 10 MB each) on a small CI disk.
PG_LEAN="-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c wal_level=minimal"
PG_LEAN+=" -c max_wal_senders=0 -c max_wal_size=96MB -c min_wal_size=32MB"

start_postgres() {
    local bin
    bin=$(postgres_bin)
    [[ -n $bin ]] || die "no PostgreSQL server (scripts/setup.sh installs it: apt-get install postgresql)"
    # A port nothing listens on (another run or a developer's server may hold the default).
    while (: </dev/tcp/127.0.0.1/"$PG_PORT") 2>/dev/null; do
        PG_PORT=$((PG_PORT + 1))
    done
    PG_DIR=$(mktemp -d /tmp/pulseline-pg.XXXXXX)
    chown postgres:postgres "$PG_DIR"
    at_exit stop_postgres
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
    fi
    [[ -z $PG_DIR ]] || rm -rf "$PG_DIR"
}

# The whole collector suite again (one test binary, tests/api/), each test on a fresh database
# of the cluster. Selected by test target inside a --workspace build, so it reuses what
# `cargo test --workspace` compiled (`-p pulseline-collector` would unify features differently
# and rebuild the collector). All databases at once would need ~2 GB: the suite drops each
# test's database once its test has ended, and what is left at the end is dropped here.
collector_tests_postgres() {
    local ok=1
    PULSELINE_TEST_POSTGRES_URL=$PULSELINE_PG_URL RUST_TEST_THREADS=$TEST_THREADS \
        clippy_cargo test --workspace --quiet --test api || ok=0
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

# ---------------------------------------------------------------------------------------------
# The dashboard in headless Debian Chromium, driven by playwright-core (no browser download),
# against the real collector binary. Screenshots land in target/dashboard-screenshots/.

# The dashboard test sends events with the Rust SDK's quickstart example too. A full run has
# built it already (cargo test --workspace --no-run); a dashboard-only run builds it here.
build_quickstart() {
    [[ $ONLY == all && -x $TARGET_DIR/debug/rust-quickstart ]] ||
        clippy_cargo build -p rust-quickstart
}

dashboard_browser_tests() {
    PULSELINE_COLLECTOR_BIN=$COLLECTOR_DEBUG \
        PULSELINE_QUICKSTART_BIN=$TARGET_DIR/debug/rust-quickstart \
        timeout --kill-after=30 600 node dashboard/tests/browser.mjs
}

# The browser SDK embedded in the collector, as a customer's page meets it: the Keys page's
# snippet on another origin in Chromium sends an event; prints the bytes the page downloaded.
embedded_sdk_browser_test() {
    PULSELINE_COLLECTOR_BIN=$COLLECTOR_DEBUG \
        timeout --kill-after=30 300 node collector/tests/browser/embedded_sdk.mjs
}

# The Web page (docs/dashboard-web.md): a seeded week, filters, the URL, screenshots.
dashboard_web_tests() {
    PULSELINE_COLLECTOR_BIN=$COLLECTOR_DEBUG \
        timeout --kill-after=30 300 node dashboard/tests/web.mjs
}

# A shared overview (docs/sharing.md), logged out: no nav, no live tail, the password form.
dashboard_share_tests() {
    PULSELINE_COLLECTOR_BIN=$COLLECTOR_DEBUG \
        timeout --kill-after=30 300 node dashboard/tests/share.mjs
}

# The dashboard under load (docs/dashboard.md): a card refused for load counts down and asks
# again, then offers "Try again"; a query over its time budget is not asked again by itself.
dashboard_busy_tests() {
    PULSELINE_COLLECTOR_BIN=$COLLECTOR_DEBUG \
        timeout --kill-after=30 300 node dashboard/tests/busy.mjs
}

# ---------------------------------------------------------------------------------------------
# The container image of dist/ (dist_image), as an operator meets it: loaded from the archive,
# run with podman, an event sent to the container read back, a backup, a clean stop. Where
# podman cannot run, dist_image said why and this step skips.

container_image_test() {
    local archive=$DIST/pulseline-collector-image.tar
    if [[ " ${BUILT[*]} " != *" pulseline-collector-image.tar "* ]]; then
        echo "SKIPPED: no image was built: ${SKIPPED[*]}"
        return
    fi
    podman_run_options
    local loaded
    loaded=$(podman load --quiet -i "$archive")
    [[ $loaded == *"$IMAGE"* ]] || die "podman load of $archive gave '$loaded', not $IMAGE"
    local name=pulseline-test-$$ port=18080
    while (: </dev/tcp/127.0.0.1/"$port") 2>/dev/null; do port=$((port + 1)); done
    at_exit "podman rm -f $name >/dev/null 2>&1"
    podman run "${PODMAN_RUN[@]}" -d --name "$name" -p "127.0.0.1:$port:8080" "$IMAGE" >/dev/null
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
    echo "container image: loaded from dist/, ran as uid 10001, healthy, event stored and read back, backed up, stopped cleanly"
}

# ---------------------------------------------------------------------------------------------
# The browser SDK (sdk-wasm): wasm-bindgen build, wasm tests, typings, Chromium end to end.

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
    # test/package.test.mjs installs dist/'s @pulseline/browser tarball in an esbuild project.
    local tarball=("$DIST"/pulseline-browser-*.tgz)
    (cd sdk-wasm && PULSELINE_BROWSER_PACKAGE=${tarball[0]} PULSELINE_COLLECTOR_BIN=$COLLECTOR_DEBUG \
        node --test test/*.test.mjs)
}

# ---------------------------------------------------------------------------------------------
# The workspace's test build (rust_build_linted's command) starts as soon as the toolchain is
# there, beside the rest of the setup: its downloads and installs leave the CPU mostly idle.
# The step then runs the same command, which waits for cargo's lock on target/ and finds the
# build fresh, or compiles what failed again and shows why.
DEBUG_BUILD_PID=""

start_debug_build() {
    at_exit stop_debug_build
    set -m
    (rust_build_linted >/dev/null 2>&1) &
    DEBUG_BUILD_PID=$!
    set +m
    echo "started in the background (pid $DEBUG_BUILD_PID)"
}

stop_debug_build() {
    [[ -z $DEBUG_BUILD_PID ]] || kill -TERM -- "-$DEBUG_BUILD_PID" 2>/dev/null || true
}

# The release artifacts: the Python wheel and sdist (maturin), the npm tarballs with the Node
# addon (napi) and the collector. From a cold cache their builds are most of the run's
# compiling, and only later steps need them, so their dist_* functions run in the background
# right after the setup, one after the other, at the lowest CPU priority, using what the tests
# leave idle. The steps that need an artifact wait for its function and show its output. No
# step runs a release build of its own meanwhile: cargo's lock on target/release would make it
# wait for every background build still running.
RELEASE_BUILDS_DIR=""
RELEASE_BUILDS_PID=""

start_release_builds() {
    RELEASE_BUILDS_DIR=$(mktemp -d /tmp/pulseline-release.XXXXXX)
    at_exit stop_release_builds
    local -a wanted=()
    selected python && wanted+=(python)
    selected node && wanted+=(node)
    selected container && wanted+=(collector)
    # Its own process group (job control on for the fork), so that an early exit stops the
    # compilers too, not only the shell that waits for them.
    set -m
    (
        renice -n 19 -p "$BASHPID" >/dev/null
        set +e
        for name in "${wanted[@]}"; do
            # The files dist_* recorded (BUILT) go back to the foreground's table through a file.
            (
                set -e
                BUILT=()
                "dist_$name"
                printf '%s\n' "${BUILT[@]}" >"$RELEASE_BUILDS_DIR/$name.built"
            ) >"$RELEASE_BUILDS_DIR/$name.log" 2>&1
            echo $? >"$RELEASE_BUILDS_DIR/$name.rc"
        done
    ) &
    RELEASE_BUILDS_PID=$!
    set +m
    echo "started in the background (pid $RELEASE_BUILDS_PID, nice 19): ${wanted[*]}"
}

stop_release_builds() {
    [[ -z $RELEASE_BUILDS_PID ]] || kill -TERM -- "-$RELEASE_BUILDS_PID" 2>/dev/null || true
    [[ -z $RELEASE_BUILDS_DIR ]] || rm -rf "$RELEASE_BUILDS_DIR"
}

# release_artifact NAME: waits for the background dist_NAME, shows its output and takes its
# files into the run's table; ends the run if it failed.
release_artifact() {
    local name=$1 start=$SECONDS rc file
    while [[ ! -e $RELEASE_BUILDS_DIR/$name.rc ]] && kill -0 "$RELEASE_BUILDS_PID" 2>/dev/null; do
        sleep 1
    done
    rc=$(cat "$RELEASE_BUILDS_DIR/$name.rc" 2>/dev/null || echo none)
    echo "waited $((SECONDS - start)) s for dist_$name in the background (exit $rc); its output:"
    cat "$RELEASE_BUILDS_DIR/$name.log" 2>/dev/null || true
    [[ $rc == 0 ]] || die "dist_$name failed in the background (exit $rc): its output is above"
    while read -r file; do
        [[ -z $file ]] || dist_file "$file" # an empty BUILT prints one empty line
    done <"$RELEASE_BUILDS_DIR/$name.built"
}

# ---------------------------------------------------------------------------------------------

main() {
    begin_steps test
    setup_toolchain_step
    step rust "the workspace's build, in the background" start_debug_build
    setup_other_steps
    step python,node,container "release builds, in the background" start_release_builds

    step rust "browser SDK in sdk-wasm/dist built from its sources" sdk_dist_fresh
    step rust "cargo fmt --all --check" rust_fmt
    step rust "build the workspace, linted (clippy -D warnings)" rust_build_linted
    step rust "cargo test --workspace" rust_tests
    step rust "one version for every package (bump-version --check)" check_versions
    step rust "dist/: the pulseline crate (cargo package)" dist_crate
    step rust "pulseline crate: cargo publish --dry-run" rust_crate_publish_dry_run
    step rust "pulseline crate docs (cargo doc, -D warnings)" rust_crate_docs
    step postgres "throwaway PostgreSQL cluster (loopback)" start_postgres
    step postgres "collector tests on PostgreSQL" collector_tests_postgres

    step interop,python,node,wasm,dashboard "build pulseline-collector (debug)" build_collector
    step interop "interop tests (Segment SDK, schemathesis)" interop_tests
    step interop "Segment analytics-next in Chromium (playwright-core)" segment_browser_tests

    step python "dist/: the pulseline wheel and sdist (maturin)" release_artifact python
    step python "the wheel of dist/ installed into .venv" python_venv_install
    step python "Python SDK tests and examples (pytest)" python_sdk_tests
    step python "Python SDK types (stubtest, mypy --strict)" python_sdk_types
    step python "the wheel installs and runs without Rust" python_wheel_install

    step node "dist/: npm tarballs, pulseline + this platform's (napi)" release_artifact node
    step node "TypeScript typings (tsc --strict)" node_sdk_types
    step node "npm packages installed without Rust (CJS, ESM)" node_sdk_package_tests
    step node "Node SDK tests and examples (node --test)" node_sdk_tests
    step node "browser SDK converts values as the Node SDK (node-parity.mjs)" browser_node_conversion_parity

    step wasm "build the browser SDK (sdk-wasm/build.sh, cached)" wasm_sdk_build
    step wasm "dist/: the @pulseline/browser tarball (npm pack)" dist_browser
    step wasm "core in wasm (wasm-bindgen-test: Node, Chromium)" wasm_core_tests
    step wasm "TypeScript typings (tsc --strict)" wasm_sdk_types
    step wasm "browser SDK end to end (headless Chromium)" wasm_browser_tests

    step dashboard "build the Rust SDK quickstart (debug)" build_quickstart
    step dashboard "dashboard in Chromium (playwright-core)" dashboard_browser_tests
    step dashboard "embedded browser SDK in Chromium (Keys page snippet)" embedded_sdk_browser_test
    step dashboard "the Web page in Chromium" dashboard_web_tests
    step dashboard "a shared page in Chromium, logged out" dashboard_share_tests
    step dashboard "the dashboard under load in Chromium (503 retries)" dashboard_busy_tests

    # Last: the collector's release build, the longest of the background ones, has had every
    # step before these to finish in. The sdist's own release build would wait for it.
    step container "dist/: the collector release binary" release_artifact collector
    step container "dist/: the container image (podman)" dist_image
    step container "container image: run, send, read back" container_image_test
    step python "the sdist builds and installs (pip install)" python_sdist_install

    ((${#BUILT[@]} + ${#SKIPPED[@]} == 0)) || dist_table
}

main "$@"
