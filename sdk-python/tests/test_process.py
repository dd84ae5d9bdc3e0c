"""Process lifetime: exit flushes what is pending; a SIGKILLed process's disk-buffered events are
sent by the next process; many threads capture without loss."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import pulseline
from conftest import Collector, run_python

EXIT_SCRIPT = """
import sys, pulseline
key, host, event = sys.argv[1:4]
# A minute-long flush interval: only the exit hook can deliver these in time.
client = pulseline.Client(key, host=host, flush_interval=60, disk_buffer=False)
for i in range(100):
    client.track("exit-user", event, {"i": i})
"""


def test_interpreter_exit_flushes_without_an_explicit_flush(collector, unique) -> None:
    event = unique("exit")
    started = time.monotonic()
    done = run_python(EXIT_SCRIPT, collector.write_key, collector.host, event)
    assert done.returncode == 0, done.stderr
    assert time.monotonic() - started < 15
    events = collector.wait_for(100, timeout=5, event=event)
    assert sorted(e["properties"]["i"] for e in events) == list(range(100))


CAPTURE_THEN_HANG = """
import sys, time, pulseline
key, host, event, buffer = sys.argv[1:5]
client = pulseline.Client(key, host=host, disk_buffer_directory=buffer, flush_interval=0.05,
                          max_batch_messages=25, retry_min_delay=0.05, retry_max_delay=0.2)
for i in range(200):
    client.track("killed-user", event, {"i": i})
time.sleep(1.0)  # past the flush interval: every batch is sealed and in the segment files
print("captured", flush=True)
time.sleep(600)
"""

DRAIN = """
import sys, time, pulseline
key, host, buffer, expected = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
client = pulseline.Client(key, host=host, disk_buffer_directory=buffer, flush_interval=0.05)
deadline = time.monotonic() + 30
while client.stats().sent < expected and time.monotonic() < deadline:
    time.sleep(0.05)
stats = client.stats()
client.shutdown(5)
print(stats.replayed_from_disk, stats.sent)
"""


@pytest.fixture
def own_collector(tmp_path_factory: pytest.TempPathFactory):
    c = Collector(tmp_path_factory.mktemp("own-collector"))
    yield c
    c.stop()


def test_killed_process_events_are_delivered_by_the_next_process(
    own_collector: Collector, tmp_path: Path, unique
) -> None:
    event, buffer = unique("killed"), str(tmp_path / "buffer")
    # The collector is down while the first process captures.
    first = subprocess.Popen(
        [sys.executable, "-c", CAPTURE_THEN_HANG, own_collector.write_key, own_collector.host, event, buffer],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert first.stdout is not None
        assert first.stdout.readline().strip() == "captured", first.stderr.read() if first.stderr else ""
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    assert first.returncode == -signal.SIGKILL

    own_collector.start()
    second = run_python(DRAIN, own_collector.write_key, own_collector.host, buffer, "200")
    assert second.returncode == 0, second.stderr
    replayed, sent = map(int, second.stdout.split())
    assert replayed == 200 and sent == 200, second.stdout
    events = own_collector.wait_for(200, timeout=5, event=event)
    assert sorted(e["properties"]["i"] for e in events) == list(range(200))


def test_threads_hammering_track_lose_nothing(collector, tmp_path: Path, unique) -> None:
    event = unique("threads")
    threads, per_thread = 8, 5_000
    client = pulseline.Client(collector.write_key, **collector.client_kwargs(tmp_path))
    barrier = threading.Barrier(threads)
    failures: list[BaseException] = []

    def hammer(t: int) -> None:
        try:
            barrier.wait()
            for i in range(per_thread):
                assert client.track(f"t{t}", event, {"t": t, "i": i}) is not None
        except BaseException as e:  # reported below
            failures.append(e)

    workers = [threading.Thread(target=hammer, args=(t,)) for t in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert not failures
    assert client.shutdown(30).complete
    stats = client.stats()
    assert (stats.captured, stats.sent, stats.dropped_total) == (threads * per_thread,) * 2 + (0,)
    events = collector.wait_for(threads * per_thread, event=event)
    assert len({(e["properties"]["t"], e["properties"]["i"]) for e in events}) == threads * per_thread
