"""A short-lived program (a script, a cron job, a serverless handler) delivers what an earlier
run left in the disk buffer within its `shutdown` budget, without waiting for a replay timer."""

from __future__ import annotations

import socket
from pathlib import Path

from conftest import run_python

PERSIST = """
import sys, pulseline
key, host, event, buffer = sys.argv[1:5]
client = pulseline.Client(key, host=host, disk_buffer_directory=buffer,
                          retry_min_delay=0.01, retry_max_delay=0.1)
for i in range(300):
    client.track("short-lived-user", event, {"i": i})
outcome = client.shutdown(2)
print(outcome.persisted, outcome.lost)
"""

DELIVER_AT_ONCE = """
import sys, pulseline
key, host, buffer = sys.argv[1:4]
client = pulseline.Client(key, host=host, disk_buffer_directory=buffer)
outcome = client.shutdown(15)
stats = client.stats()
print(outcome.timed_out, outcome.persisted, outcome.lost, stats.replayed_from_disk, stats.sent)
"""


def _closed_port() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


def test_shutdown_delivers_what_an_earlier_run_left(collector, tmp_path: Path, unique) -> None:
    event = unique("short-lived")
    buffer = str(tmp_path / "buffer")
    down = run_python(PERSIST, collector.write_key, _closed_port(), event, buffer)
    assert down.returncode == 0, down.stderr
    assert down.stdout.split() == ["300", "0"], "the first run persisted everything"

    up = run_python(DELIVER_AT_ONCE, collector.write_key, collector.host, buffer)
    assert up.returncode == 0, up.stderr
    assert up.stdout.split() == ["False", "0", "0", "300", "300"], up.stdout
    events = collector.wait_for(300, timeout=5, event=event)
    assert sorted(e["properties"]["i"] for e in events) == list(range(300))
