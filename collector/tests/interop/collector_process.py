"""The real `pulseline-collector` binary as a child process, for the interop tests.

One process per test, on a fresh SQLite file in pytest's tmp dir and a free port of 127.0.0.1.
Only loopback is ever contacted: proxies from the environment are ignored.
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

REPO_ROOT = Path(__file__).resolve().parents[3]
COLLECTOR_BIN = Path(
    os.environ.get("PULSELINE_COLLECTOR_BIN", REPO_ROOT / "target" / "debug" / "pulseline-collector")
)
LOOPBACK = "127.0.0.1"
STARTUP_TIMEOUT_S = 20.0
SHUTDOWN_TIMEOUT_S = 15.0

# Nothing here may leave the machine, even when the environment names a proxy.
for _var in ("NO_PROXY", "no_proxy"):
    os.environ[_var] = "127.0.0.1,localhost,::1"


@dataclass
class Collector:
    """A running collector and the keys of its one project."""

    process: subprocess.Popen[str]
    base_url: str
    write_key: str
    secret_key: str
    log_path: Path
    stdout_lines: list[str] = field(default_factory=list)
    http: requests.Session = field(default_factory=requests.Session)

    def __post_init__(self) -> None:
        self.http.trust_env = False
        self.http.headers["Authorization"] = f"Bearer {self.secret_key}"

    def events(self, **params: str) -> list[dict]:
        """Every stored event matching `params` (event=, user_id=), following next_cursor."""
        events: list[dict] = []
        query: dict[str, str | int] = {"limit": 1000, **params}
        while True:
            resp = self.http.get(f"{self.base_url}/api/v1/events", params=query, timeout=10)
            assert resp.status_code == 200, f"GET /api/v1/events -> {resp.status_code}: {resp.text}"
            page = resp.json()
            events.extend(page["events"])
            if not page.get("next_cursor"):
                return events
            query["cursor"] = page["next_cursor"]

    def events_total(self) -> int:
        resp = self.http.get(f"{self.base_url}/api/v1/stats", timeout=10)
        assert resp.status_code == 200, f"GET /api/v1/stats -> {resp.status_code}: {resp.text}"
        return resp.json()["events_total"]

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


def _die_with_parent() -> None:
    """Runs in the child before exec: if pytest is killed, the collector gets SIGTERM too."""
    PR_SET_PDEATHSIG = 1
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def _env(database_url: str, port: int | None = None) -> dict[str, str]:
    env = dict(os.environ, PULSELINE_DATABASE_URL=database_url, NO_COLOR="1")
    if port is not None:
        env["PULSELINE_LISTEN"] = f"{LOOPBACK}:{port}"
    return env


def create_project(database_url: str, name: str) -> dict:
    """`pulseline-collector project create --json`: the documented machine-readable contract."""
    out = subprocess.run(
        [str(COLLECTOR_BIN), "project", "create", "--name", name, "--json"],
        env=_env(database_url),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert out.returncode == 0, f"project create failed ({out.returncode}):\n{out.stderr}"
    keys = json.loads(out.stdout)
    assert keys["write_key"] and keys["secret_key"], keys
    return keys


def _wait_ready(proc: subprocess.Popen[str], base_url: str, log_path: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    with requests.Session() as http:
        http.trust_env = False
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(
                    f"collector exited with {proc.returncode} during startup:\n{log_path.read_text()}"
                )
            try:
                if http.get(f"{base_url}/readyz", timeout=1).status_code == 200:
                    return
            except requests.ConnectionError:
                pass
            time.sleep(0.05)
    raise RuntimeError(f"collector not ready within {STARTUP_TIMEOUT_S}s:\n{log_path.read_text()}")


def start_collector(workdir: Path, keys: dict | None) -> Collector:
    """Start the binary on `workdir`/pulseline.db. With `keys` None the database starts empty
    and the keys are read from what the collector prints on first start."""
    if not COLLECTOR_BIN.exists():
        pytest.fail(f"{COLLECTOR_BIN} is missing: run ./scripts/test.sh (it builds it first)")
    database_url = f"sqlite://{workdir / 'pulseline.db'}"
    if keys is None and (workdir / "pulseline.db").exists():
        raise ValueError("first-start keys need an empty database")
    log_path = workdir / "collector.log"
    # A port freed by _free_port can be taken before the collector binds it; try a few.
    for _attempt in range(3):
        port = _free_port()
        base_url = f"http://{LOOPBACK}:{port}"
        with log_path.open("a") as log:
            proc = subprocess.Popen(
                [str(COLLECTOR_BIN), "serve"],
                env=_env(database_url, port),
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
                preexec_fn=_die_with_parent,
            )
        lines: list[str] = []
        threading.Thread(target=_collect_lines, args=(proc, lines), daemon=True).start()
        try:
            _wait_ready(proc, base_url, log_path)
            break
        except RuntimeError:
            stop(proc)
            if "address" not in log_path.read_text().lower():
                raise
    else:
        raise RuntimeError(f"could not bind a free loopback port:\n{log_path.read_text()}")

    if keys is None:
        keys = _printed_keys(lines, proc)
    return Collector(
        process=proc,
        base_url=base_url,
        write_key=keys["write_key"],
        secret_key=keys["secret_key"],
        log_path=log_path,
        stdout_lines=lines,
    )


def _collect_lines(proc: subprocess.Popen[str], lines: list[str]) -> None:
    assert proc.stdout is not None
    for line in proc.stdout:
        lines.append(line)


def _printed_keys(lines: list[str], proc: subprocess.Popen[str]) -> dict:
    """The keys printed on first start (`  write key:  plw_…`, `  secret key: pls_…`)."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        found = {}
        for line in list(lines):
            for label, name in (("write key:", "write_key"), ("secret key:", "secret_key")):
                if line.strip().startswith(label):
                    found[name] = line.split(":", 1)[1].split()[0]
        if len(found) == 2:
            return found
        time.sleep(0.05)
    stop(proc)
    pytest.fail(f"the collector did not print both keys on first start; stdout was:\n{''.join(lines)}")


def stop(proc: subprocess.Popen[str]) -> int:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=SHUTDOWN_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            return -signal.SIGKILL
    return proc.returncode
