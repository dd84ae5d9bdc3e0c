"""The real `pulseline-collector` binary, started per test module on a fresh SQLite file and a
free 127.0.0.1 port. Nothing here contacts anything but loopback."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
COLLECTOR_BIN = Path(
    os.environ.get("PULSELINE_COLLECTOR_BIN", REPO_ROOT / "target" / "debug" / "pulseline-collector")
)
# urllib must never go through a proxy named by the environment.
_HTTP = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Collector:
    """A collector on `workdir`/pulseline.db; can be stopped and started again on one port."""

    def __init__(self, workdir: Path) -> None:
        if not COLLECTOR_BIN.exists():
            pytest.fail(f"{COLLECTOR_BIN} is missing: run `cargo build -p pulseline-collector`")
        self.workdir = workdir
        self.database_url = f"sqlite://{workdir / 'pulseline.db'}"
        self.port = free_port()
        self.host = f"http://127.0.0.1:{self.port}"
        keys = json.loads(self._run("project", "create", "--name", "python-sdk-tests", "--json"))
        self.write_key: str = keys["write_key"]
        self.secret_key: str = keys["secret_key"]
        self.process: subprocess.Popen[bytes] | None = None

    def _env(self) -> dict[str, str]:
        return dict(
            os.environ,
            PULSELINE_DATABASE_URL=self.database_url,
            PULSELINE_LISTEN=f"127.0.0.1:{self.port}",
            NO_COLOR="1",
        )

    def _run(self, *args: str) -> str:
        out = subprocess.run(
            [str(COLLECTOR_BIN), *args], env=self._env(), capture_output=True, text=True, timeout=60
        )
        assert out.returncode == 0, f"{args} failed: {out.stderr}"
        return out.stdout

    def start(self) -> None:
        log = open(self.workdir / "collector.log", "ab")
        self.process = subprocess.Popen(
            [str(COLLECTOR_BIN), "serve"], env=self._env(), stdout=log, stderr=log
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert self.process.poll() is None, (self.workdir / "collector.log").read_text()
            try:
                if _HTTP.open(f"{self.host}/readyz", timeout=1).status == 200:
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("collector did not become ready")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def _get(self, path: str, **params: Any) -> Any:
        url = f"{self.host}{path}?{urllib.parse.urlencode(params)}"
        request = urllib.request.Request(url, headers={"Authorization": f"Bearer {self.secret_key}"})
        with _HTTP.open(request, timeout=10) as response:
            return json.load(response)

    def deduplicated(self) -> float:
        """Messages the collector received again and stored once (its Prometheus counter)."""
        with _HTTP.open(f"{self.host}/metrics", timeout=10) as response:
            text = response.read().decode()
        return sum(
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith("pulseline_events_deduplicated_total")
        )

    def events(self, **params: Any) -> list[dict[str, Any]]:
        """Every stored event matching `params` (event=, user_id=), following next_cursor."""
        events: list[dict[str, Any]] = []
        query: dict[str, Any] = {"limit": 1000, **params}
        while True:
            page = self._get("/api/v1/events", **query)
            events.extend(page["events"])
            if not page.get("next_cursor"):
                return events
            query["cursor"] = page["next_cursor"]

    def wait_for(
        self, count: int, timeout: float = 20.0, **params: Any
    ) -> list[dict[str, Any]]:
        """The matching events once there are at least `count` (or whatever is there at the
        deadline, for the caller's assertion to report)."""
        deadline = time.monotonic() + timeout
        while True:
            events = self.events(**params)
            if len(events) >= count or time.monotonic() > deadline:
                return events
            time.sleep(0.1)

    def client_kwargs(self, tmp_path: Path) -> dict[str, Any]:
        """Options pointing a client at this collector with a disk buffer in `tmp_path`."""
        return {
            "host": self.host,
            "disk_buffer_directory": str(tmp_path / "buffer"),
            "flush_interval": 0.05,
        }


@pytest.fixture(scope="module")
def collector(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Collector]:
    c = Collector(tmp_path_factory.mktemp("collector"))
    c.start()
    yield c
    c.stop()


@pytest.fixture
def unique(request: pytest.FixtureRequest) -> Callable[[str], str]:
    """Names unique to the running test, so tests sharing a collector never see each other."""
    stamp = f"{request.node.name}-{time.time_ns()}"
    return lambda name: f"{name}-{stamp}"


def run_python(code: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Runs `code` in a fresh interpreter (the same one running the tests)."""
    return subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=timeout
    )
