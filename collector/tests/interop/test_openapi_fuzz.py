"""schemathesis fuzzes every operation in /openapi.json: no input may make the collector answer 5xx.

Two runs, because the two halves of the API take different keys: ingest (`/v1/...`) with the
write key, everything else (read API, health, metrics) with the secret key. Each run is bounded
by a number of examples per operation. A failure prints schemathesis' report, with its seed and
a curl line per failing case; PULSELINE_SCHEMATHESIS_SEED=N replays a run.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from collector_process import Collector

SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")
MAX_EXAMPLES = 50
RUN_TIMEOUT_S = 300

INGEST = r"^/v1/"


@pytest.mark.parametrize(
    ("key", "path_filter"),
    [("write_key", "--include-path-regex"), ("secret_key", "--exclude-path-regex")],
    ids=["ingest-with-write-key", "read-and-ops-with-secret-key"],
)
def test_no_input_makes_the_collector_fail(
    collector: Collector, tmp_path: Path, key: str, path_filter: str
) -> None:
    schema_url = f"{collector.base_url}/openapi.json"
    spec = requests.get(schema_url, timeout=10).json()
    ingest = re.compile(INGEST)
    expected_ops = sum(
        len(ops)
        for path, ops in spec["paths"].items()
        if bool(ingest.search(path)) == (path_filter == "--include-path-regex")
    )
    assert expected_ops > 0, f"no operations to test in {sorted(spec['paths'])}"

    cmd = [
        str(SCHEMATHESIS),
        "run",
        schema_url,
        path_filter,
        INGEST,
        "--checks",
        "not_a_server_error",
        "--max-examples",
        str(MAX_EXAMPLES),
        "--header",
        f"Authorization: Bearer {getattr(collector, key)}",
        "--request-timeout",
        "10",
        "--generation-database",
        "none",
        "--no-color",
    ]
    if seed := os.environ.get("PULSELINE_SCHEMATHESIS_SEED"):
        cmd += ["--seed", seed]
    # cwd: schemathesis writes its own state dirs there, not in the work tree.
    run = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=RUN_TIMEOUT_S, check=False)
    output = run.stdout + run.stderr
    print(output)

    assert run.returncode == 0, f"schemathesis found failures (exit {run.returncode}):\n{output}"
    tested = re.search(r"Tested:\s+(\d+)", output)
    assert tested and int(tested.group(1)) == expected_ops, f"expected {expected_ops} operations tested:\n{output}"
    cases = re.search(r"(\d+) generated", output)
    assert cases and int(cases.group(1)) >= expected_ops, f"too few test cases generated:\n{output}"
