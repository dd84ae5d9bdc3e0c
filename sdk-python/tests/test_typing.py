"""The typed surface matches the extension: option names, and (in scripts/test.sh) mypy stubtest
of `_native.pyi` plus mypy --strict of the package."""

from __future__ import annotations

import inspect

import pulseline
from pulseline import _native


def test_typed_options_are_exactly_the_native_options() -> None:
    assert tuple(pulseline.ClientOptions.__annotations__) == _native.Client.OPTIONS


def test_module_functions_mirror_the_client_methods() -> None:
    for name in ("track", "identify", "page", "screen", "group", "alias", "flush", "shutdown"):
        method = inspect.signature(getattr(_native.Client, name))
        function = inspect.signature(getattr(pulseline, name))
        assert list(function.parameters) == list(method.parameters)[1:], name
