"""The root README's Python snippet, run as written in a fresh interpreter against the real
collector: the placeholders a reader replaces (`plw_...`, `http://127.0.0.1:8080`) are replaced,
nothing else. It ends without a flush, so this also checks the README's "flushed at exit"."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from conftest import REPO_ROOT


def readme_python_blocks() -> list[str]:
    text = (REPO_ROOT / "README.md").read_text()
    return re.findall(r"^```python\n(.*?)^```$", text, flags=re.DOTALL | re.MULTILINE)


def test_the_readme_python_snippet_delivers_its_event(collector, tmp_path: Path) -> None:
    blocks = readme_python_blocks()
    assert len(blocks) == 1, f"expected the one Python snippet of README.md, found {len(blocks)}"
    code = blocks[0].replace("plw_...", collector.write_key).replace(
        "http://127.0.0.1:8080", collector.host
    )
    before = len(collector.events(user_id="user-42", event="Signed Up"))
    # Its own disk buffer and home: nothing shared with other tests or the machine.
    env = dict(os.environ, HOME=str(tmp_path), TMPDIR=str(tmp_path), XDG_CACHE_HOME=str(tmp_path))
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    events = collector.wait_for(before + 1, user_id="user-42", event="Signed Up")
    assert len(events) == before + 1, events
    assert events[0]["properties"] == {"plan": "pro"}
