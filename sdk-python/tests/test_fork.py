"""Real os.fork(): each child delivers its own events with a working client, and what the
parent captured before the fork is delivered once, by the parent."""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import pulseline

CHILDREN = 3


def test_forked_children_deliver_their_own_events_and_never_the_parents(
    collector, tmp_path: Path, unique
) -> None:
    event = unique("fork")
    deduplicated_before = collector.deduplicated()
    options = collector.client_kwargs(tmp_path)
    # A long flush interval keeps the pre-fork events in the parent's queue at fork time.
    options["flush_interval"] = 2.0
    client = pulseline.Client(collector.write_key, **options)
    for i in range(50):
        client.track("parent", event, {"seq": f"before-{i}"})

    pids = []
    for child in range(CHILDREN):
        pid = os.fork()
        if pid == 0:  # child: report through the exit code, never return into pytest
            code = 1
            try:
                for i in range(20):
                    client.track(f"child-{child}", event, {"seq": f"child{child}-{i}"})
                flushed = client.flush(15)
                stats = client.stats()
                if flushed.status != "flushed":
                    code = 2
                elif (stats.captured, stats.sent) != (20, 20):
                    code = 3  # it sent something captured by the parent
                else:
                    code = 0
            finally:
                os._exit(code)
        pids.append(pid)

    for i in range(10):
        client.track("parent", event, {"seq": f"after-{i}"})
    for pid in pids:
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
    assert client.shutdown(15).complete
    stats = client.stats()
    assert (stats.captured, stats.sent) == (60, 60)

    expected = {f"before-{i}" for i in range(50)} | {f"after-{i}" for i in range(10)}
    expected |= {f"child{c}-{i}" for c in range(CHILDREN) for i in range(20)}
    events = collector.wait_for(len(expected), event=event)
    seqs = Counter(e["properties"]["seq"] for e in events)
    assert set(seqs) == expected
    assert max(seqs.values()) == 1
    assert len({e["messageId"] for e in events}) == len(expected)
    assert collector.deduplicated() == deduplicated_before, "a message was sent twice"


def test_a_client_shut_down_before_fork_stays_shut_down(collector, tmp_path: Path) -> None:
    client = pulseline.Client(collector.write_key, **collector.client_kwargs(tmp_path))
    client.shutdown(5)
    pid = os.fork()
    if pid == 0:
        os._exit(0 if client.is_shut_down and client.track("u", "late") is None else 1)
    assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0


def test_a_forked_child_stays_opted_out(collector, tmp_path: Path, unique) -> None:
    event = unique("fork_opt_out")
    client = pulseline.Client(collector.write_key, **collector.client_kwargs(tmp_path))
    client.opt_out()
    pid = os.fork()
    if pid == 0:  # child: report through the exit code, never return into pytest
        code = 1
        try:
            client.track("child", event)
            client.flush(15)
            stats = client.stats()
            seen = (client.is_opted_out, stats.sent, stats.dropped["opted_out"])
            code = 0 if seen == (True, 0, 1) else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    client.opt_in()
    client.track("parent", event)
    assert client.shutdown(15).complete
    assert [e["userId"] for e in collector.wait_for(1, event=event)] == ["parent"]
