"""The README's shell snippets, run as a reader would run them, against the real collector.

Every ```sh block of README.md runs, in order, in one bash session (variables set by one block
are seen by the next, as in a reader's terminal), with `set -euo pipefail`. A block that is not
meant to run (it starts a long-running server, installs toolchains, ...) carries the marker
`<!-- readme-test: skip (reason) -->` on the line just before its fence; a marker without a
reason, or one not followed by a block, fails the test. Only ```sh blocks run: SDK snippets are
run by their own language's tests.

What the reader would replace is replaced, and nothing else:
- `plw_...` / `plw_…` and `pls_...` / `pls_…`: the keys the collector printed at first start;
- `127.0.0.1:8080` and `localhost:8080`: the test collector's loopback address;
- `https://discord.com/api/webhooks/…`: a local stand-in that answers like Discord (no request
  ever leaves the machine);
- `pulseline-collector`: the binary under test, on the collector's database.
`curl` fails on any HTTP error status (`--fail-with-body`), so a snippet that gets a 4xx fails.
"""

from __future__ import annotations

import json
import re
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from collector_process import COLLECTOR_BIN, REPO_ROOT, Collector, start_collector, stop

README = REPO_ROOT / "README.md"
SKIP_MARKER = re.compile(r"^<!-- readme-test: skip \((?P<reason>[^)]+)\) -->$")
FENCE = re.compile(r"^```(?P<lang>\S*)\s*$")
RUN_TIMEOUT_S = 120


def readme_blocks(text: str) -> list[tuple[int, str, str, str | None]]:
    """(line, language, body, skip reason) of every fenced block, in order."""
    lines = text.splitlines()
    blocks = []
    i = 0
    while i < len(lines):
        opening = FENCE.match(lines[i])
        if opening is None:
            if lines[i].startswith("<!-- readme-test"):
                followed = i + 1 < len(lines) and FENCE.match(lines[i + 1])
                assert SKIP_MARKER.match(lines[i]) and followed, (
                    f"README.md:{i + 1}: a readme-test marker must read "
                    f"'<!-- readme-test: skip (reason) -->' and stand just before a ``` fence"
                )
            i += 1
            continue
        start = i
        i += 1
        while i < len(lines) and lines[i] != "```":
            i += 1
        assert i < len(lines), f"README.md:{start + 1}: unclosed ``` block"
        marker = SKIP_MARKER.match(lines[start - 1]) if start > 0 else None
        reason = marker.group("reason") if marker else None
        blocks.append((start + 1, opening.group("lang"), "\n".join(lines[start + 1 : i]), reason))
        i += 1
    return blocks


class _DiscordStandIn(BaseHTTPRequestHandler):
    received: list[dict] = []

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        type(self).received.append(json.loads(body or b"{}"))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def discord() -> Iterator[str]:
    _DiscordStandIn.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _DiscordStandIn)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/api/webhooks/1/token"
    server.shutdown()
    server.server_close()


@pytest.fixture
def first_start(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Collector]:
    """A collector on an empty database, as after `cargo run`; its stand-in targets are local."""
    monkeypatch.setenv("PULSELINE_ALLOW_PRIVATE_WEBHOOKS", "true")
    collector = start_collector(tmp_path, keys=None)
    yield collector
    assert stop(collector.process) == 0, collector.log_tail()


def test_markers_name_a_reason_and_every_other_sh_block_runs() -> None:
    blocks = readme_blocks(README.read_text())
    runnable = [b for b in blocks if b[1] == "sh" and b[3] is None]
    assert len(runnable) >= 5, f"too few runnable sh blocks: {[b[0] for b in runnable]}"
    for line, lang, _, reason in blocks:
        assert reason is None or lang == "sh", f"README.md:{line}: only sh blocks take the marker"


def test_the_readme_shell_snippets_work_as_written(
    first_start: Collector, discord: str, tmp_path: Path
) -> None:
    collector = first_start
    address = collector.base_url.removeprefix("http://")
    script = [
        "set -euo pipefail",
        'curl() { command curl --silent --show-error --fail-with-body "$@"; echo; }',
        f'pulseline-collector() {{ "{COLLECTOR_BIN}" "$@"; }}',
    ]
    ran = []
    for line, lang, body, reason in readme_blocks(README.read_text()):
        if lang != "sh" or reason is not None:
            continue
        for placeholder, value in [
            ("plw_...", collector.write_key),
            ("plw_…", collector.write_key),
            ("pls_...", collector.secret_key),
            ("pls_…", collector.secret_key),
            ("127.0.0.1:8080", address),
            ("localhost:8080", address),
            ("https://discord.com/api/webhooks/…", discord),
        ]:
            body = body.replace(placeholder, value)
        script += [f"echo '### README.md:{line}'", body]
        ran.append(line)

    run = subprocess.run(
        ["bash", "-c", "\n".join(script)],
        cwd=tmp_path,
        env={
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "HOME": str(tmp_path),
            "NO_PROXY": "127.0.0.1,localhost,::1",
            "PULSELINE_DATABASE_URL": f"sqlite://{tmp_path / 'pulseline.db'}",
            "PULSELINE_LOG": "warn",
        },
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
        check=False,
    )
    output = run.stdout + run.stderr
    last = re.findall(r"### (README\.md:\d+)", run.stdout)
    assert run.returncode == 0, (
        f"the block at {last[-1] if last else '?'} failed (exit {run.returncode}):\n{output}"
    )
    assert len(last) == len(ran), output

    # What the snippets say happened, happened.
    print(output)
    assert any(e.get("event") == "Signed Up" for e in collector.events(user_id="user-42")), output
    assert any(e.get("event") == "Checkout" for e in collector.events()), output
    assert '{"success":true,"accepted":1,"rejected":[]}' in run.stdout
    assert len(_DiscordStandIn.received) == 1, "the channel test reached the Discord stand-in"
