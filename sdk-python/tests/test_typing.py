"""The typed surface matches the extension: option names, and (in scripts/test.sh) mypy stubtest
of `_native.pyi` plus mypy --strict of the package."""

from __future__ import annotations

import inspect
from pathlib import Path

import pulseline
from pulseline import _native


def test_typed_options_are_exactly_the_native_options() -> None:
    assert tuple(pulseline.ClientOptions.__annotations__) == _native.Client.OPTIONS


def test_module_functions_mirror_the_client_methods() -> None:
    for name in ("track", "identify", "page", "screen", "group", "alias", "flush", "shutdown"):
        method = inspect.signature(getattr(_native.Client, name))
        function = inspect.signature(getattr(pulseline, name))
        assert list(function.parameters) == list(method.parameters)[1:], name


def _documented(source: str) -> dict[str, str]:
    """`ClientOptions`' `#:` comment of each field in `_options.py`, joined into one line."""
    docs: dict[str, str] = {}
    comment: list[str] = []
    for line in source.splitlines():
        line = line.strip()
        if line.startswith("#:"):
            comment.append(line[2:].strip())
        elif comment and ":" in line:
            docs[line.split(":", 1)[0]] = " ".join(comment)
            comment = []
        else:
            comment = []
    return docs


def _python_text(name: str, value: object) -> str:
    """A value of the core's table as `_options.py` writes it (seconds, KiB/MiB, 1,000)."""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):  # seconds
        if value >= 86400 and value % 86400 == 0:
            return f"{int(value // 86400)} days"
        return f"{value:g}"
    assert isinstance(value, int), (name, value)
    if name.endswith("bytes"):
        for unit, size in (("MiB", 1 << 20), ("KiB", 1 << 10)):
            if value >= size and value % size == 0:
                return f"{value // size} {unit}"
    return f"{value:,}"


def test_documented_defaults_and_limits_are_the_cores() -> None:
    """Each option's documented "Default …" and "at most …" are the core's option table, in
    Python's units: the docs of the batch limit once said 1,000 where the core took 2,500."""
    import re

    source = (Path(pulseline.__file__).parent / "_options.py").read_text()
    docs = _documented(source)
    table = _native.OPTION_TABLE
    assert set(docs) == set(table) - {"host"}
    for name, (default, maximum) in table.items():
        if name == "host":  # Client's positional argument, documented with Client
            continue
        doc = docs[name]
        if default is not None:
            assert f"Default {_python_text(name, default)}." in doc, (name, doc)
        bounds = re.findall(r"at most ([^)]*)\)", doc)
        expected = [] if maximum is None else [_python_text(name, maximum)]
        assert bounds == expected, (name, doc)
