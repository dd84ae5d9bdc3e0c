"""The examples run against the real collector and deliver what they say."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

from conftest import REPO_ROOT


def test_prefork_web_app_example(collector, tmp_path: Path) -> None:
    app = REPO_ROOT / "examples" / "python-prefork-app" / "app.py"
    env = dict(
        os.environ,
        PULSELINE_WRITE_KEY=collector.write_key,
        PULSELINE_HOST=collector.host,
        TMPDIR=str(tmp_path),  # its own disk buffer directory
    )
    done = subprocess.run(
        [sys.executable, str(app), "--demo"], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary == {"requests": 10, "worker_exit_codes": [0, 0], "master_complete": True}
    started = collector.wait_for(1, event="app_started")
    assert len(started) == 1, "the master's pre-fork event was sent once"
    signups = collector.wait_for(5, event="signup")
    assert sorted(e["userId"] for e in signups) == [f"demo-user-{i}" for i in (1, 3, 5, 7, 9)]
    pages = [e for e in collector.events(user_id="demo-user-0") if e["type"] == "page"]
    assert len(pages) == 1 and pages[0]["name"] == "/"
    page_pids = Counter(
        e["properties"]["worker_pid"]
        for i in range(10)
        for e in collector.events(user_id=f"demo-user-{i}")
        if e["type"] == "page"
    )
    assert sum(page_pids.values()) == 10
