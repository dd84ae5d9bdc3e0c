#!/usr/bin/env bash
# Refreshes collector/data/uap-core/ from the npm package `uap-core` (the ua-parser project's
# maintained regexes.yaml): the collector embeds it as JSON so it needs no YAML parser.
# Usage: scripts/update-uap-core.sh [version]   (then run the collector's ingest tests)
set -euo pipefail
version="${1:-0.18.0}"
repo="$(cd "$(dirname "$0")/.." && pwd)"
out="$repo/collector/data/uap-core"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent "uap-core@$version" >/dev/null && tar xzf "uap-core-$version.tgz")
python3 -c 'import yaml' 2>/dev/null || apt-get install -y python3-yaml >/dev/null
python3 - "$work/package/regexes.yaml" "$out/regexes.json" <<'PY'
import json, sys, yaml
with open(sys.argv[1], encoding="utf-8") as f:
    data = yaml.safe_load(f)
keep = ("user_agent_parsers", "os_parsers", "device_parsers")
with open(sys.argv[2], "w", encoding="utf-8") as f:
    # One parser per line: an update's diff shows which patterns changed.
    f.write("{\n")
    for i, key in enumerate(keep):
        f.write(f' "{key}": [\n')
        rows = [json.dumps(p, ensure_ascii=False, sort_keys=True) for p in data[key]]
        f.write(",\n".join("  " + r for r in rows))
        f.write("\n ]" + ("," if i < len(keep) - 1 else "") + "\n")
    f.write("}\n")
PY
cp "$work/package/LICENSE" "$out/LICENSE"
echo "$version" > "$out/VERSION"
echo "collector/data/uap-core: uap-core $version"
