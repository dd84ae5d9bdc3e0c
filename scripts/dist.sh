#!/usr/bin/env bash
# Builds Pulseline's release artifacts into dist/ at the repository root.
#
#   scripts/dist.sh                      every artifact
#   scripts/dist.sh collector browser    only these (collector image browser python node crate)
#
# Each artifact is one function `dist_<name>` below. The collector's are built here; the SDK
# packages are built by a hook their package owns (`<package>/dist.sh DIST_DIR`), so the way a
# package is built lives next to it. The run ends with a list of what was built and what was not,
# and exits non-zero when a requested artifact could not be built.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
DIST=$ROOT/dist
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
if [[ -x $HOME/.cargo/bin/cargo ]]; then
    PATH=$HOME/.cargo/bin:$PATH
fi
BUILT=()
MISSING=()

# The collector binary, with the dashboard and the browser SDK inside.
dist_collector() {
    cargo build --release --locked -p pulseline-collector
    cp "$TARGET_DIR/release/pulseline-collector" "$DIST/"
    BUILT+=("collector: dist/pulseline-collector")
}

# The container image (Dockerfile target `prebuilt` around dist/pulseline-collector), saved as
# an archive `docker load` / `podman load` take. The base image comes from Debian's mirror
# (mmdebstrap) unless PULSELINE_RUNTIME_IMAGE names one the machine has.
dist_image() {
    if ! command -v podman >/dev/null || ! podman info >/dev/null 2>&1; then
        MISSING+=("image: podman is missing or cannot run here (apt-get install podman)")
        return
    fi
    [[ -x $DIST/pulseline-collector ]] || dist_collector
    local base=${PULSELINE_RUNTIME_IMAGE:-localhost/pulseline-base:bookworm}
    if ! podman image exists "$base"; then
        mmdebstrap --variant=minbase --include=ca-certificates,curl bookworm - | podman import - "$base"
    fi
    # runc and rlimits within the machine's: what this machine kind needs (scripts/test.sh,
    # container_image_test), and harmless elsewhere.
    local nofile nproc=4096 run=()
    nofile=$(ulimit -Hn)
    [[ $nofile != unlimited ]] && ((nofile < 65536)) || nofile=65536
    [[ $(ulimit -Hu) == unlimited ]] || ((nproc <= $(ulimit -Hu))) || nproc=$(ulimit -Hu)
    command -v runc >/dev/null && run=(--runtime runc)
    run+=(--ulimit "nofile=$nofile:$nofile" --ulimit "nproc=$nproc:$nproc")
    local context
    context=$(mktemp -d)
    cp "$DIST/pulseline-collector" "$context/"
    podman build "${run[@]}" --format docker --target prebuilt --build-arg RUNTIME_IMAGE="$base" \
        -f Dockerfile -t localhost/pulseline-collector:latest "$context"
    rm -rf "$context"
    rm -f "$DIST/pulseline-collector-image.tar"
    podman save --format docker-archive -o "$DIST/pulseline-collector-image.tar" localhost/pulseline-collector:latest
    BUILT+=("image: dist/pulseline-collector-image.tar (localhost/pulseline-collector:latest)")
}

# The browser package @pulseline/browser: the committed build in sdk-wasm/dist, which must be
# built from the current sources.
dist_browser() {
    sdk-wasm/build.sh --check
    local tarball
    tarball=$(cd sdk-wasm && npm pack --silent --pack-destination "$DIST")
    BUILT+=("browser: dist/$tarball")
}

hook() { # artifact package-dir: runs <package-dir>/dist.sh DIST when the package has one
    local artifact=$1 dir=$2
    if [[ -x $dir/dist.sh ]]; then
        "$dir/dist.sh" "$DIST"
        BUILT+=("$artifact: by $dir/dist.sh")
    else
        MISSING+=("$artifact: $dir/dist.sh does not exist yet")
    fi
}

dist_python() { hook python sdk-python; } # wheel (abi3 manylinux) and sdist
dist_node() { hook node sdk-node; }       # npm tarballs: main package and per-platform packages
dist_crate() { hook crate sdk-core; }     # cargo package -p pulseline

main() {
    local all=(collector image browser python node crate) name
    local wanted=("$@")
    ((${#wanted[@]})) || wanted=("${all[@]}")
    for name in "${wanted[@]}"; do
        [[ " ${all[*]} " == *" $name "* ]] || { echo "dist.sh: no artifact '$name' (${all[*]})" >&2; exit 2; }
    done
    mkdir -p "$DIST"
    for name in "${wanted[@]}"; do
        printf '\n\033[1m==> dist: %s\033[0m\n' "$name"
        "dist_$name"
    done
    printf '\n\033[1m==> dist/\033[0m\n'
    printf '  built    %s\n' "${BUILT[@]}"
    ((${#MISSING[@]} == 0)) || printf '  MISSING  %s\n' "${MISSING[@]}"
    ls -l "$DIST"
    ((${#MISSING[@]} == 0))
}

main "$@"
