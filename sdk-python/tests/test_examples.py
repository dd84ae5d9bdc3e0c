"""The examples run against the real collector and deliver what they say."""

from __future__ import annotations

import importlib.util
import json
import os
import select
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections import Counter
from pathlib import Path
from types import ModuleType
from typing import Any
from wsgiref.simple_server import make_server

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


def _load_example(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location("prefork_example", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_prefork_worker_stops_after_the_request_it_is_serving() -> None:
    """The example's worker loop, sent SIGTERM while it is inside a request: it answers that
    request and exits. (A handler that raises SystemExit instead has it caught by wsgiref's
    request handling, and the worker keeps serving: the hang this test guards against.)"""
    example = _load_example(REPO_ROOT / "examples" / "python-prefork-app" / "app.py")
    entered_r, entered_w = os.pipe()
    release_r, release_w = os.pipe()

    def slow_app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        os.write(entered_w, b"x")
        os.read(release_r, 1)  # SIGTERM arrives while the worker waits here
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"done"]

    server = make_server("127.0.0.1", 0, slow_app, handler_class=example.QuietHandler)
    port = server.server_address[1]
    pid = os.fork()
    if pid == 0:  # the worker: report through the exit code, never return into pytest
        code = 1
        try:
            example.serve(server)
            code = 0
        finally:
            os._exit(code)
    server.server_close()
    answer: dict[str, Any] = {}

    def request() -> None:
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        try:
            with opener.open(f"http://127.0.0.1:{port}/", timeout=30) as response:
                answer["status"], answer["body"] = response.status, response.read()
        except OSError as error:
            answer["error"] = error

    client = threading.Thread(target=request)
    reaped = False
    try:
        client.start()
        assert select.select([entered_r], [], [], 30)[0], "the worker never got the request"
        os.kill(pid, signal.SIGTERM)
        os.write(release_w, b"x")
        client.join(30)
        assert answer.get("status") == 200 and answer.get("body") == b"done", answer
        deadline = time.monotonic() + 30
        while (waited := os.waitpid(pid, os.WNOHANG))[0] == 0:
            assert time.monotonic() < deadline, "the worker kept serving after SIGTERM"
            time.sleep(0.05)
        reaped = True
        assert os.waitstatus_to_exitcode(waited[1]) == 0
    finally:
        if not reaped:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        for fd in (entered_r, entered_w, release_r, release_w):
            os.close(fd)


def test_prefork_workers_that_lose_the_accept_race_still_stop() -> None:
    """Workers polling one listening socket all wake for each connection; only one accepts it.
    A loser must not then block in accept(), where SIGTERM (whose handler only sets a flag)
    would leave it until another connection came, and the master would wait forever."""
    example = _load_example(REPO_ROOT / "examples" / "python-prefork-app" / "app.py")

    def ok_app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    server = make_server("127.0.0.1", 0, ok_app, handler_class=example.QuietHandler)
    port = server.server_address[1]
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    for round in range(5):
        pids = []
        # Blocked across the fork as the example's master does: each worker unblocks SIGTERM
        # once its handler is installed.
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
        try:
            for _ in range(8):  # more workers than cores: some wake late, after the accept
                pid = os.fork()
                if pid == 0:
                    code = 1
                    try:
                        example.serve(server)
                        code = 0
                    finally:
                        os._exit(code)
                pids.append(pid)
        finally:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})
        try:
            for _ in range(5):
                with opener.open(f"http://127.0.0.1:{port}/", timeout=30) as response:
                    assert response.read() == b"ok"
            for pid in pids:
                os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + 30
            while pids:
                for pid in list(pids):
                    done, status = os.waitpid(pid, os.WNOHANG)
                    if done:
                        assert os.waitstatus_to_exitcode(status) == 0
                        pids.remove(pid)
                assert time.monotonic() < deadline, f"round {round}: {len(pids)} worker(s) hung"
                time.sleep(0.05)
        finally:
            for pid in pids:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
    server.server_close()
