"""Fixtures for the interop tests: each test gets its own real collector process.

Run through ./scripts/test.sh, which builds the binary and the venv first.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from collector_process import Collector, create_project, start_collector, stop


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    # Lets a fixture see whether its test failed (to show the collector's log then).
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


def _run(request: pytest.FixtureRequest, collector: Collector) -> Iterator[Collector]:
    yield collector
    code = stop(collector.process)
    failed = getattr(request.node, "report_call", None)
    if failed is not None and failed.failed:
        print(f"\n--- collector log (tail) ---\n{collector.log_tail()}")
    assert code == 0, f"collector did not exit cleanly on SIGTERM (exit {code}):\n{collector.log_tail()}"


@pytest.fixture
def collector(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Collector]:
    """A collector on a fresh database with a project made by `project create --json`."""
    keys = create_project(f"sqlite://{tmp_path / 'pulseline.db'}", "interop")
    yield from _run(request, start_collector(tmp_path, keys))


@pytest.fixture
def fresh_collector(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Collector]:
    """A collector started on an empty database: the keys are the ones it prints once."""
    yield from _run(request, start_collector(tmp_path, keys=None))
