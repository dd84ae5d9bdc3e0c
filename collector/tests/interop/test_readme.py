"""The shell snippets of the README and of docs/, run as a reader would run them, against the
real collector; and the links between those documents, which must stay inside the repository.

Every ```sh block of a document in `DOCUMENTS` runs, in order, in one bash session per document
(variables set by one block are seen by the next, as in a reader's terminal), with
`set -euo pipefail`, against a collector started for that document on an empty database. A
block that is not meant to run (it starts a long-running server, installs toolchains, ...)
carries the marker `<!-- readme-test: skip (reason) -->` on the line just before its fence; a
marker without a reason, or one not followed by a block, fails the test. Only ```sh blocks run:
the README's Python and Node.js snippets are run by their own language's tests
(sdk-python/tests/test_readme.py, sdk-node/test/readme.test.mjs).

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

# The documents whose shell blocks must run; each file added to docs/ with runnable blocks
# belongs here. What each document's blocks must have done is checked in `EXPECTED` below.
DOCUMENTS = [
    "README.md",
    "CONTRIBUTING.md",
    "docs/ingest.md",
    "docs/keys.md",
    "docs/plans.md",
    "docs/alerting.md",
    "docs/postgres.md",
    "docs/configuration.md",
    "docs/operations.md",
    "docs/security.md",
    "docs/dashboard.md",
    "docs/sdks.md",
    "docs/benchmarks.md",
    "docs/dependencies.md",
    "docs/toolchain.md",
    "docs/privacy.md",
    "docs/inbound-webhooks.md",
    "docs/web-analytics.md",
    "docs/dashboard-web.md",
    "docs/sharing.md",
    "docs/alerting-quality.md",
    "docs/testing.md",
    "docs/http-routes.md",
    "docs/sdk-core-and-bindings.md",
    "docs/digest.md",
]
# Pages whose shell blocks build packages, images or start servers: the test command's python,
# node and container groups test what they describe. Their links are checked all the same.
LINKS_ONLY = [
    "docs/install.md",
    "docs/install-node.md",
    "docs/deploy.md",
    "docs/architecture/analytics-at-scale.md",
]
SKIP_MARKER = re.compile(r"^<!-- readme-test: skip \((?P<reason>[^)]+)\) -->$")
FENCE = re.compile(r"^```(?P<lang>\S*)\s*$")
RUN_TIMEOUT_S = 120


def readme_blocks(text: str, name: str = "README.md") -> list[tuple[int, str, str, str | None]]:
    """(line, language, body, skip reason) of every fenced block of document `name`, in order."""
    lines = text.splitlines()
    blocks = []
    i = 0
    while i < len(lines):
        opening = FENCE.match(lines[i])
        if opening is None:
            if lines[i].startswith("<!-- readme-test"):
                followed = i + 1 < len(lines) and FENCE.match(lines[i + 1])
                assert SKIP_MARKER.match(lines[i]) and followed, (
                    f"{name}:{i + 1}: a readme-test marker must read "
                    f"'<!-- readme-test: skip (reason) -->' and stand just before a ``` fence"
                )
            i += 1
            continue
        start = i
        i += 1
        while i < len(lines) and lines[i] != "```":
            i += 1
        assert i < len(lines), f"{name}:{start + 1}: unclosed ``` block"
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


def _runnable(name: str) -> list[int]:
    blocks = readme_blocks((REPO_ROOT / name).read_text(), name)
    return [line for line, lang, _, reason in blocks if lang == "sh" and reason is None]


# What each document's blocks did, checked after they ran: (collector, stdout, Discord stand-in's
# requests) -> None. A document with runnable blocks must have an entry, so that "it exited 0"
# is never all a snippet is checked for.
def _readme(collector: Collector, stdout: str, discord: list[dict]) -> None:
    assert any(e.get("event") == "Signed Up" for e in collector.events(user_id="user-42")), stdout
    assert '{"success":true,"accepted":1,"rejected":[]}' in stdout


def _ingest(collector: Collector, stdout: str, discord: list[dict]) -> None:
    _readme(collector, stdout, discord)
    assert any(e.get("event") == "Checkout" for e in collector.events(user_id="user-42")), stdout


def _keys(collector: Collector, stdout: str, discord: list[dict]) -> None:
    assert "Key 5 keeps working for 24 more hours." in stdout, stdout
    assert "Revoked secret key 5" in stdout, stdout


def _plans(collector: Collector, stdout: str, discord: list[dict]) -> None:
    assert "Plan team: 5000000 events/month, data kept 90 days." in stdout, stdout
    assert "Project 2 is now on plan team." in stdout, stdout


def _alerting(collector: Collector, stdout: str, discord: list[dict]) -> None:
    assert len(discord) == 1, "the channel test reached the Discord stand-in"
    rules = collector.http.get(f"{collector.base_url}/api/v1/rules", timeout=10).json()
    assert [r["name"] for r in rules["rules"]] == ["Signup surge"], rules


def _privacy(collector: Collector, stdout: str, discord: list[dict]) -> None:
    assert "Project 1 keeps raw events 90 days." in stdout, stdout
    assert "Project 1 keeps raw events as long as its plan." in stdout, stdout
    assert '{"ids":["user-7"],' in stdout and '"suppressed":true}' in stdout, stdout


def _inbound(collector: Collector, stdout: str, discord: list[dict]) -> None:
    sources = collector.http.get(f"{collector.base_url}/api/v1/inbound-sources", timeout=10)
    assert sorted(s["kind"] for s in sources.json()["sources"]) == [
        "generic",
        "github",
        "stripe",
    ], sources.text


EXPECTED = {
    "README.md": _readme,
    "docs/ingest.md": _ingest,
    "docs/keys.md": _keys,
    "docs/plans.md": _plans,
    "docs/alerting.md": _alerting,
    "docs/privacy.md": _privacy,
    "docs/inbound-webhooks.md": _inbound,
}


@pytest.mark.parametrize("name", DOCUMENTS)
def test_markers_name_a_reason_and_runnable_blocks_are_checked(name: str) -> None:
    blocks = readme_blocks((REPO_ROOT / name).read_text(), name)
    for line, lang, _, reason in blocks:
        assert reason is None or lang == "sh", f"{name}:{line}: only sh blocks take the marker"
    runnable = _runnable(name)
    assert bool(runnable) == (name in EXPECTED), (
        f"{name}: runnable sh blocks at {runnable}; EXPECTED must say what they do"
        if runnable
        else f"{name} has no runnable sh block left: drop it from EXPECTED"
    )


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_the_shell_snippets_work_as_written(
    name: str, first_start: Collector, discord: str, tmp_path: Path
) -> None:
    collector = first_start
    address = collector.base_url.removeprefix("http://")
    script = [
        "set -euo pipefail",
        'curl() { command curl --silent --show-error --fail-with-body "$@"; echo; }',
        f'pulseline-collector() {{ "{COLLECTOR_BIN}" "$@"; }}',
    ]
    ran = []
    for line, lang, body, reason in readme_blocks((REPO_ROOT / name).read_text(), name):
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
        script += [f"echo '### {name}:{line}'", body]
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
    last = re.findall(r"### (\S+:\d+)", run.stdout)
    assert run.returncode == 0, (
        f"the block at {last[-1] if last else '?'} failed (exit {run.returncode}):\n{output}"
    )
    assert len(last) == len(ran), output

    # What the snippets say happened, happened.
    print(output)
    EXPECTED[name](collector, run.stdout, _DiscordStandIn.received)


LINK = re.compile(r"\[[^\]]*\]\((?P<target>[^)\s]+)\)")


def _anchors(text: str) -> set[str]:
    """GitHub's ids for the headings of a Markdown text."""
    ids = set()
    for heading in re.findall(r"^#+ (.+)$", text, flags=re.MULTILINE):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        ids.add(slug)
    return ids


def test_every_docs_page_is_checked() -> None:
    pages = {p.relative_to(REPO_ROOT).as_posix() for p in (REPO_ROOT / "docs").rglob("*.md")}
    unchecked = sorted(pages - set(DOCUMENTS) - set(LINKS_ONLY))
    assert not unchecked, f"add {unchecked} to DOCUMENTS in {Path(__file__).name}"


@pytest.mark.parametrize("name", DOCUMENTS + LINKS_ONLY)
def test_links_stay_inside_the_repository_and_resolve(name: str) -> None:
    path = REPO_ROOT / name
    text = path.read_text()
    # Code blocks and spans hold commands and output, not links.
    prose = re.sub(r"^```.*?^```$", "", text, flags=re.DOTALL | re.MULTILINE)
    prose = re.sub(r"`+[^`]*`+", "", prose)
    for outside in ("../shared", "TOOLCHAIN.md"):
        assert outside not in text, f"{name} points outside the repository: {outside}"
    for match in LINK.finditer(prose):
        target = match.group("target")
        if re.match(r"^[a-z]+:", target):
            continue  # https:, mailto:
        file_part, _, anchor = target.partition("#")
        resolved = (path.parent / file_part).resolve() if file_part else path
        inside = resolved.is_relative_to(REPO_ROOT.resolve())
        assert inside, f"{name}: {target} leaves the repository"
        assert resolved.exists(), f"{name}: {target} does not exist"
        if anchor and resolved.suffix == ".md":
            headings = _anchors(resolved.read_text())
            assert anchor in headings, f"{name}: no heading for #{anchor} in {target}"
