#!/usr/bin/env bash
# One version for every package Pulseline ships.
#
#   scripts/bump-version.sh 0.2.0     set it everywhere, and date the CHANGELOG's Unreleased section
#   scripts/bump-version.sh --check   exit 1, naming each file, unless every package agrees
#
# Where the version lives:
#   Cargo.toml [workspace.package] version   every crate inherits it (version.workspace = true),
#                                            so the Rust crate `pulseline`, and the Python wheel
#                                            (pyproject.toml takes its version from Cargo)
#   Cargo.lock                               the workspace members' entries
#   sdk-node/package.json, sdk-wasm/package.json, their package-lock.json root entries,
#   sdk-node/npm/*/package.json              the per-platform binary packages, when present, and
#                                            the main package's optionalDependencies on them
#   sdk-node/native/index.js                 the napi-rs loader, which compares the binary
#                                            package's version with its own
#   CHANGELOG.md                             its "## Unreleased" notes become "## <version> - <date>"
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

usage() {
    echo "usage: scripts/bump-version.sh <major.minor.patch[-pre]> | --check" >&2
    exit 2
}

(($# == 1)) || usage
if [[ -x $HOME/.cargo/bin/cargo ]]; then
    PATH=$HOME/.cargo/bin:$PATH
fi

# The JSON files are rewritten with the formatting npm itself writes (2 spaces, a final newline),
# so a bump changes only the version lines.
python3 - "$1" <<'PY'
import datetime
import glob
import json
import re
import subprocess
import sys

arg = sys.argv[1]
check = arg == "--check"
SEMVER = re.compile(r"[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?")
if not check and not SEMVER.fullmatch(arg):
    sys.exit(f"error: {arg!r} is not a version like 1.2.3 or 1.2.3-beta.1")

WORKSPACE = re.compile(r'(\[workspace\.package\][^\[]*?\nversion = ")([^"]*)(")', re.S)
PACKAGE_JSONS = ["sdk-node/package.json", "sdk-wasm/package.json"]
LOCKS = ["sdk-node/package-lock.json", "sdk-wasm/package-lock.json"]
PLATFORM_JSONS = sorted(glob.glob("sdk-node/npm/*/package.json"))
LOADER = "sdk-node/native/index.js"
# The napi-rs loader's two spellings of the version it expects.
LOADER_VERSION = re.compile(r"(bindingPackageVersion !== '|expected )([^' ]+)('| but got)")


def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def write(path, text):
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


def ours(name):
    return name.startswith("@pulseline/")


def json_versions(path, data):
    """Every version a package.json / package-lock.json states for a Pulseline package."""
    found = [(path, data.get("version"))]
    root = data.get("packages", {}).get("")
    for where, block in (("", data), ("packages[''].", root or {})):
        for name, spec in block.get("optionalDependencies", {}).items():
            if ours(name):
                found.append((f"{path} {where}optionalDependencies {name}", spec))
    if root is not None:
        found.append((f"{path} packages['']", root.get("version")))
    for key, entry in data.get("packages", {}).items():
        if ours(key.removeprefix("node_modules/")) and "version" in entry:
            found.append((f"{path} packages[{key!r}]", entry["version"]))
    return found


def set_json(path, version):
    data = json.loads(read(path))
    data["version"] = version
    root = data.get("packages", {}).get("")
    for block in (data, root or {}):
        for name in block.get("optionalDependencies", {}):
            if ours(name):
                block["optionalDependencies"][name] = version
    if root is not None:
        root["version"] = version
    for key, entry in data.get("packages", {}).items():
        if ours(key.removeprefix("node_modules/")) and "version" in entry:
            entry["version"] = version
    write(path, json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def cargo_versions():
    meta = json.loads(subprocess.run(
        ["cargo", "metadata", "--no-deps", "--format-version", "1", "--offline"],
        check=True, capture_output=True, text=True).stdout)
    return [(f"crate {p['name']} ({p['manifest_path']})", p["version"]) for p in meta["packages"]]


def changelog_versions():
    return re.findall(r"^## \[?([0-9][^\] ]*)\]?", read("CHANGELOG.md"), re.M)


def current():
    m = WORKSPACE.search(read("Cargo.toml"))
    if not m:
        sys.exit("error: no version in Cargo.toml's [workspace.package]")
    return m.group(2)


if check:
    want = current()
    found = cargo_versions()
    pyproject = read("sdk-python/pyproject.toml")
    if not re.search(r'^dynamic = \[[^\]]*"version"', pyproject, re.M):
        found.append(("sdk-python/pyproject.toml (must take its version from Cargo: "
                      'dynamic = ["version"])', None))
    for path in PACKAGE_JSONS + LOCKS + PLATFORM_JSONS:
        found += json_versions(path, json.loads(read(path)))
    found += [(LOADER, m.group(2)) for m in LOADER_VERSION.finditer(read(LOADER))]
    wrong = [(where, v) for where, v in found if v != want]
    for where, v in wrong:
        print(f"version mismatch: {where} says {v!r}, Cargo.toml's workspace says {want!r}",
              file=sys.stderr)
    if wrong:
        sys.exit("error: versions disagree; set them all with scripts/bump-version.sh <version>")
    print(f"every package is at version {want} ({len(found)} places checked)")
    sys.exit(0)

new = arg
old = current()
write("Cargo.toml", WORKSPACE.sub(lambda m: m.group(1) + new + m.group(3), read("Cargo.toml"), 1))
subprocess.run(["cargo", "update", "--workspace", "--quiet"], check=True)
for path in PACKAGE_JSONS + LOCKS + PLATFORM_JSONS:
    set_json(path, new)
write(LOADER, LOADER_VERSION.sub(lambda m: m.group(1) + new + m.group(3), read(LOADER)))

changelog = read("CHANGELOG.md")
if new not in changelog_versions():
    today = datetime.datetime.now(datetime.timezone.utc).date().isoformat()
    changelog, n = re.subn(r"^## Unreleased\n", f"## Unreleased\n\n## {new} - {today}\n",
                           changelog, count=1, flags=re.M)
    if n == 0:
        sys.exit("error: CHANGELOG.md has no '## Unreleased' section to turn into " + new)
    write("CHANGELOG.md", changelog)
print(f"version {old} -> {new}; review with git diff, then commit")
PY
