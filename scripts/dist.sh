#!/usr/bin/env bash
# Builds Pulseline's release artifacts into dist/ at the repository root:
#
#   pulseline-collector                  the collector (dashboard, browser SDK, migrations inside)
#   pulseline-collector-image.tar        its container image (`podman load` / `docker load`)
#   pulseline-browser-<v>.tgz            the npm package @pulseline/browser
#   pulseline-<v>-cp310-abi3-manylinux_*.whl, pulseline-<v>.tar.gz   the Python wheel and sdist
#   pulseline-<v>.tgz, pulseline-<platform>-<v>.tgz   the npm package and this platform's addon
#   pulseline-<v>.crate                  the Rust crate, as `cargo publish` uploads it
#
#   scripts/dist.sh                      every artifact
#   scripts/dist.sh collector browser    only these (collector image browser python node crate)
#
# Only this machine's platform is built; the release workflows in .github/workflows build the
# others. The image is skipped, saying why, where podman cannot run. The run ends with a table
# of the artifacts and their sizes. ./scripts/test.sh sources this file and calls the same
# `dist_<name>` functions, so its install tests use exactly these files.
#
# Needs what scripts/setup.sh installs (groups python, node, container): maturin and auditwheel
# in .venv, sdk-node's napi CLI, podman and mmdebstrap; the functions install what is missing.

# shellcheck source=scripts/setup.sh
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
DIST=$ROOT/dist
BUILT=()   # files of dist/ this run made
SKIPPED=() # "artifact: why"

dist_file() { # file in dist/: record it for the table
    [[ -f $DIST/$1 ]] || die "dist/$1 was not made"
    BUILT+=("$1")
}

# The collector binary, with the dashboard and the browser SDK inside.
dist_collector() {
    mkdir -p "$DIST"
    cargo build --release --locked -p pulseline-collector
    cp "$TARGET_DIR/release/pulseline-collector" "$DIST/"
    dist_file pulseline-collector
}

# podman's run options on this machine kind (cgroup v1 with an empty cgroup2 hierarchy beside
# it): crun refuses to start containers there ("cgroups in hybrid mode not supported"), and
# podman's default rlimits exceed the hard limits ("setrlimit RLIMIT_NOFILE: Operation not
# permitted"). runc and limits within the host's work here and are harmless elsewhere.
podman_run_options() {
    local nofile nproc=4096
    nofile=$(ulimit -Hn)
    [[ $nofile != unlimited ]] && ((nofile < 65536)) || nofile=65536
    [[ $(ulimit -Hu) == unlimited ]] || ((nproc <= $(ulimit -Hu))) || nproc=$(ulimit -Hu)
    PODMAN_RUN=(--ulimit "nofile=$nofile:$nofile" --ulimit "nproc=$nproc:$nproc")
    if command -v runc >/dev/null; then
        PODMAN_RUN=(--runtime runc "${PODMAN_RUN[@]}")
    fi
}

IMAGE=localhost/pulseline-collector:latest
IMAGE_BASE=${PULSELINE_RUNTIME_IMAGE:-localhost/pulseline-base:bookworm}

# The container image: the Dockerfile's `prebuilt` target around dist/pulseline-collector, on
# a Debian base made by mmdebstrap from Debian's mirror (no image registry is reachable here)
# unless PULSELINE_RUNTIME_IMAGE names an image the machine has. Saved as an archive.
dist_image() {
    local info
    if ! command -v podman >/dev/null; then
        SKIPPED+=("image: podman is not installed (apt-get install ${CONTAINER_TOOLS[*]})")
        return
    fi
    if ! info=$(podman info 2>&1); then
        SKIPPED+=("image: podman cannot run on this machine: $(tail -n 1 <<<"$info")")
        return
    fi
    [[ -x $DIST/pulseline-collector ]] || dist_collector
    podman_run_options
    if ! podman image exists "$IMAGE_BASE"; then
        command -v mmdebstrap >/dev/null ||
            { SKIPPED+=("image: no base image and no mmdebstrap to make one (apt-get install mmdebstrap)"); return; }
        # Debian 12 minbase plus what the Dockerfile's base stage installs (so it needs no fetch).
        mmdebstrap --variant=minbase --include=ca-certificates,curl bookworm - | podman import - "$IMAGE_BASE"
    fi
    local context
    context=$(mktemp -d)
    cp "$DIST/pulseline-collector" "$context/"
    podman build "${PODMAN_RUN[@]}" --quiet --format docker --target prebuilt \
        --build-arg RUNTIME_IMAGE="$IMAGE_BASE" -f Dockerfile -t "$IMAGE" "$context"
    rm -rf "$context"
    rm -f "$DIST/pulseline-collector-image.tar"
    podman save --quiet --format docker-archive -o "$DIST/pulseline-collector-image.tar" "$IMAGE"
    dist_file pulseline-collector-image.tar
}

# @pulseline/browser: the committed build in sdk-wasm/dist, which must be what the current
# sources build (sdk-wasm/build.sh --check; the wasm group rebuilds it). --ignore-scripts: the
# package's prepack would rebuild, which needs the wasm toolchain.
dist_browser() {
    mkdir -p "$DIST"
    sdk-wasm/build.sh --check
    rm -f "$DIST"/pulseline-browser-*.tgz
    local tarball
    tarball=$(cd sdk-wasm && npm pack --silent --ignore-scripts --pack-destination "$DIST")
    dist_file "$tarball"
}

# The Python package: one abi3 wheel for this platform, with a manylinux tag its symbols really
# satisfy (auditwheel confirms it), and the sdist `pip install` builds from source.
dist_python() {
    mkdir -p "$DIST"
    ensure_python_venv >/dev/null
    rm -f "$DIST"/pulseline-*.whl "$DIST"/pulseline-[0-9]*.tar.gz
    local out
    out=$(mktemp -d)
    "$VENV/bin/maturin" build --release --quiet -m sdk-python/Cargo.toml --out "$out"
    "$VENV/bin/maturin" sdist -m sdk-python/Cargo.toml --out "$out"
    local wheel=("$out"/pulseline-*.whl) sdist=("$out"/pulseline-*.tar.gz)
    [[ ${#wheel[@]} == 1 && ${wheel[0]} == */pulseline-*-cp310-abi3-manylinux_*.whl ]] ||
        die "not one abi3 manylinux wheel: ${wheel[*]}"
    local report tag=${wheel[0]##*-abi3-}
    tag=${tag%.whl}
    report=$("$VENV/bin/auditwheel" show "${wheel[0]}")
    echo "$report"
    tr -s ' \n' ' ' <<<"$report" | grep -qF "consistent with the following platform tag: \"$tag\"" ||
        die "auditwheel does not confirm the wheel's tag $tag"
    mv "${wheel[0]}" "${sdist[0]}" "$DIST/"
    rm -rf "$out"
    dist_file "$(basename "${wheel[0]}")"
    dist_file "$(basename "${sdist[0]}")"
}

dist_python_wheel() { # the wheel dist_python made
    local found=("$DIST"/pulseline-*-abi3-manylinux_*.whl)
    [[ ${#found[@]} == 1 && -f ${found[0]} ]] || die "expected one wheel in $DIST, found: ${found[*]}"
    echo "${found[0]}"
}

dist_python_sdist() { # the sdist dist_python made
    local found=("$DIST"/pulseline-[0-9]*.tar.gz)
    [[ ${#found[@]} == 1 && -f ${found[0]} ]] || die "expected one sdist in $DIST, found: ${found[*]}"
    echo "${found[0]}"
}

# The npm packages as napi-rs's release makes them (docs/install-node.md), for this platform:
# `pulseline`, wired by optionalDependencies to `pulseline-<platform>`, which carries the
# stripped release addon. sdk-node/scripts/pack.sh builds them; it also rebuilds the committed
# loader and typings, which must not change.
dist_node() {
    mkdir -p "$DIST"
    local out name file
    out=$(mktemp -d)
    sdk-node/scripts/pack.sh "$out"
    git diff --exit-code -- sdk-node/native/index.js sdk-node/native/index.d.ts ||
        die "sdk-node/native/index.{js,d.ts} differ from what the Rust source generates: commit them"
    rm -f "$DIST"/pulseline-[0-9]*.tgz
    for name in sdk-node/npm/*/; do
        rm -f "$DIST/pulseline-$(basename "$name")"-[0-9]*.tgz
    done
    for file in "$out"/*.tgz; do
        mv "$file" "$DIST/"
        dist_file "$(basename "$file")"
    done
    rm -rf "$out"
    local addon=(sdk-node/native/pulseline.*.node)
    if readelf -S "${addon[0]}" | grep -q "\.symtab"; then
        die "${addon[0]} is not stripped (profile.release.package.pulseline-node in Cargo.toml)"
    fi
}

# The Rust crate as crates.io takes it (manifest normalised, path dev-dependencies dropped),
# verified by building it from the package alone. --allow-dirty: a developer's uncommitted
# changes are what should be checked; a release is cut from a clean tag.
dist_crate() {
    mkdir -p "$DIST"
    cargo package -p pulseline --allow-dirty
    local version
    version=$(cargo pkgid -p pulseline | sed 's/.*[#@]//')
    rm -f "$DIST"/pulseline-*.crate
    cp "$TARGET_DIR/package/pulseline-$version.crate" "$DIST/"
    dist_file "pulseline-$version.crate"
}

dist_table() { # the artifacts made this run, with their sizes
    local file
    printf '\n\033[1m==> dist/ (%s)\033[0m\n' "$DIST"
    for file in "${BUILT[@]}"; do
        printf '  %-52s %10s  %s\n' "$file" "$(numfmt --to=iec-i --suffix=B "$(stat -c %s "$DIST/$file")")" \
            "$(stat -c %s "$DIST/$file") bytes"
    done
    for file in "${SKIPPED[@]}"; do
        printf '  SKIPPED %s\n' "$file"
    done
}

dist_main() {
    local all=(collector image browser python node crate) name
    local wanted=("$@")
    ((${#wanted[@]})) || wanted=("${all[@]}")
    for name in "${wanted[@]}"; do
        [[ " ${all[*]} " == *" $name "* ]] || die "dist.sh: no artifact '$name' (${all[*]})"
    done
    mkdir -p "$DIST"
    for name in "${wanted[@]}"; do
        printf '\n\033[1m==> dist: %s\033[0m\n' "$name"
        "dist_$name"
    done
    dist_table
}

if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
    dist_main "$@"
fi
