"""Checks an installed `pulseline` package the way a customer meets it: run by scripts/test.sh
with a fresh venv's interpreter, after `pip install` of the built wheel (or the sdist).

    python installed_package.py COLLECTOR_BIN WORKDIR

Standard library only (the venv holds nothing but pulseline). It starts the real collector on a
fresh SQLite file and a free 127.0.0.1 port, sends events through the installed package and
reads them back through /api/v1/events. Not collected by pytest (its name has no test_ prefix).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import sysconfig
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

# urllib must never go through a proxy named by the environment.
HTTP = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def check_installed_from_venv() -> None:
    """The package and its native module come from this venv, not from a checkout."""
    import pulseline
    import pulseline._native as native

    site = Path(sysconfig.get_paths()["platlib"]).resolve()
    for module in (pulseline, native):
        path = Path(module.__file__ or "").resolve()
        assert site in path.parents, f"{module.__name__} loaded from {path}, not from {site}"
    # One abi3 extension serves every CPython >= 3.10.
    assert Path(native.__file__ or "").name.endswith(".abi3.so"), native.__file__
    print(f"pulseline {pulseline.__version__} from {Path(pulseline.__file__ or '').parent}")


class Collector:
    def __init__(self, binary: Path, workdir: Path) -> None:
        self.binary = binary
        self.port = free_port()
        self.host = f"http://127.0.0.1:{self.port}"
        self.env = dict(
            os.environ,
            PULSELINE_DATABASE_URL=f"sqlite://{workdir / 'pulseline.db'}",
            PULSELINE_LISTEN=f"127.0.0.1:{self.port}",
            NO_COLOR="1",
        )
        created = subprocess.run(
            [str(binary), "project", "create", "--name", "installed-package", "--json"],
            env=self.env, capture_output=True, text=True, timeout=60, check=True,
        )
        keys = json.loads(created.stdout)
        self.write_key: str = keys["write_key"]
        self.secret_key: str = keys["secret_key"]
        self.log = workdir / "collector.log"
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen([str(binary), "serve"], env=self.env, stdout=log, stderr=log)
        deadline = time.monotonic() + 60
        while True:
            assert self.process.poll() is None, self.log.read_text()
            try:
                if HTTP.open(f"{self.host}/readyz", timeout=1).status == 200:
                    return
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("the collector did not become ready") from None
                time.sleep(0.05)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def events(self, **params: Any) -> list[dict[str, Any]]:
        url = f"{self.host}/api/v1/events?{urllib.parse.urlencode({'limit': 1000, **params})}"
        request = urllib.request.Request(url, headers={"Authorization": f"Bearer {self.secret_key}"})
        with HTTP.open(request, timeout=10) as response:
            return list(json.load(response)["events"])

    def wait_for(self, count: int, **params: Any) -> list[dict[str, Any]]:
        deadline = time.monotonic() + 60
        while True:
            events = self.events(**params)
            if len(events) >= count or time.monotonic() > deadline:
                return events
            time.sleep(0.1)


def send_and_read_back(collector: Collector, workdir: Path) -> None:
    import pulseline

    user = f"installed-{time.time_ns()}"
    client = pulseline.Client(
        collector.write_key, host=collector.host, disk_buffer_directory=str(workdir / "buffer")
    )
    sent = {
        client.track(user, "wheel_installed", {"n": 1, "plan": "pro"}): "track",
        client.identify(user, {"email": "ada@example.com"}): "identify",
        client.page(user, "Pricing", {"path": "/pricing"}): "page",
        # Any non-empty string is a messageId, as for the collector and Segment.
        client.track(user, "backfilled", message_id=f"order-{user}"): "track",
    }
    assert None not in sent, sent
    assert f"order-{user}" in sent
    outcome = client.flush(timeout=30)
    assert outcome, f"flush did not deliver: {outcome!r}, {client.stats()!r}"
    client.shutdown()

    stored = {e["messageId"]: e for e in collector.wait_for(len(sent), user_id=user)}
    assert {k: e["type"] for k, e in stored.items()} == sent, (stored, sent)
    tracked = next(e for e in stored.values() if e.get("event") == "wheel_installed")
    assert tracked["properties"] == {"n": 1, "plan": "pro"}, tracked
    print(f"{len(stored)} events sent through the installed package and read back")


def main() -> None:
    binary, workdir = Path(sys.argv[1]), Path(sys.argv[2])
    check_installed_from_venv()
    collector = Collector(binary, workdir)
    try:
        send_and_read_back(collector, workdir)
    finally:
        collector.stop()


if __name__ == "__main__":
    main()
