"""Python values to JSON: every supported type arrives as documented; anything else raises a
TypeError naming the key path, before anything is queued."""

from __future__ import annotations

import enum
import math
import sys
import uuid
from collections import OrderedDict
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any, NamedTuple

import pytest

import pulseline


class Plan(str, enum.Enum):
    PRO = "pro"


class Level(enum.IntEnum):
    HIGH = 3


class Shape(enum.Enum):
    BOX = {"w": 1, "h": [2, 3]}


class Point(NamedTuple):
    x: int
    y: int


class MyStr(str):
    pass


class MyInt(int):
    pass


class MyFloat(float):
    pass


class MyDict(dict):  # type: ignore[type-arg]
    pass


EXPECTED: dict[str, tuple[Any, Any]] = {
    # key: (Python value, JSON value as stored)
    "str": ("héllo \"w\" \U0001f600\n", "héllo \"w\" \U0001f600\n"),
    "empty": ("", ""),
    "int": (-42, -42),
    "i64_max": (2**63 - 1, 2**63 - 1),
    "u64": (2**64 - 1, 2**64 - 1),
    "float": (42.5, 42.5),
    "tiny": (1e-300, 1e-300),
    "true": (True, True),
    "false": (False, False),
    "none": (None, None),
    "list": ([1, "a", None], [1, "a", None]),
    "tuple": ((1, 2), [1, 2]),
    "namedtuple": (Point(1, 2), [1, 2]),
    "nested": ({"a": [{"b": {"c": [1.5]}}]}, {"a": [{"b": {"c": [1.5]}}]}),
    "ordered": (OrderedDict(z=1, a=2), {"z": 1, "a": 2}),
    "dict_subclass": (MyDict(k="v"), {"k": "v"}),
    "str_subclass": (MyStr("s"), "s"),
    "int_subclass": (MyInt(7), 7),
    "float_subclass": (MyFloat(0.25), 0.25),
    "datetime_utc": (
        datetime(2026, 1, 2, 3, 4, 5, 600000, tzinfo=timezone.utc),
        "2026-01-02T03:04:05.600000+00:00",
    ),
    "datetime_offset": (
        datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone(timedelta(hours=2))),
        "2026-01-02T03:04:05+02:00",
    ),
    "datetime_naive": (datetime(2026, 1, 2, 3, 4, 5), "2026-01-02T03:04:05"),
    "date": (date(2026, 2, 28), "2026-02-28"),
    "decimal": (Decimal("19.99"), 19.99),
    "decimal_int": (Decimal("-7"), -7),
    "uuid": (uuid.UUID("12345678-1234-5678-1234-567812345678"), "12345678-1234-5678-1234-567812345678"),
    "enum_str": (Plan.PRO, "pro"),
    "enum_int": (Level.HIGH, 3),
    "enum_dict": (Shape.BOX, {"w": 1, "h": [2, 3]}),
}


def test_every_supported_type_arrives_as_json(collector, tmp_path: Path, unique) -> None:
    event = unique("types")
    properties = {key: value for key, (value, _) in EXPECTED.items()}
    with pulseline.Client(collector.write_key, **collector.client_kwargs(tmp_path)) as client:
        assert client.track("u", event, properties) is not None
    [stored] = collector.wait_for(1, event=event)
    expected = {key: json for key, (_, json) in EXPECTED.items()}
    assert stored["properties"] == expected


def test_big_ints_keep_every_digit(collector, tmp_path: Path, unique) -> None:
    event = unique("bigint")
    with pulseline.Client(collector.write_key, **collector.client_kwargs(tmp_path)) as client:
        client.track("u", event, {"big": 10**30, "neg": -(10**25), "u128": 2**128 - 1})
    [stored] = collector.wait_for(1, event=event)
    # Python's json reads integers exactly: the collector must return the digits sent.
    assert stored["properties"] == {"big": 10**30, "neg": -(10**25), "u128": 2**128 - 1}


def test_numbers_beyond_a_float_are_refused_not_altered(
    collector, tmp_path: Path, unique
) -> None:
    event = unique("hugeint")
    client = pulseline.Client(collector.write_key, **collector.client_kwargs(tmp_path))
    client.track("u", event, {"huge": 2**10000})
    client.track("u", event, {"fine": 1})
    # The refused message will never arrive, so the flush says so.
    outcome = client.flush(10)
    assert (outcome.status, outcome.messages) == ("dropped", 1)
    client.shutdown(5)
    # The collector refuses that one message (naming the field) and stores the other whole.
    stored = collector.wait_for(1, event=event)
    assert [e["properties"] for e in stored] == [{"fine": 1}]
    assert client.stats().dropped["rejected_by_server"] == 1


@pytest.fixture
def offline() -> pulseline.Client:
    # Nothing listens there: conversion errors must be raised without any I/O.
    return pulseline.Client("k", host="http://127.0.0.1:9", disk_buffer=False)


@pytest.mark.parametrize(
    ("properties", "path", "type_name"),
    [
        ({"tags": {"a", "b"}}, "properties.tags", "set"),
        ({"raw": b"x"}, "properties.raw", "bytes"),
        ({"cart": [{"sku": 1}, {"added": object()}]}, "properties.cart[1].added", "object"),
        ({"t": (1, [2, timedelta(1)])}, "properties.t[1][1]", "datetime.timedelta"),
        ({"it's": {"x\\y": 1j}}, 'properties["it\'s"]["x\\\\y"]', "complex"),
        ({"m": {1: "int key"}}, "properties.m", "int"),
    ],
)
def test_unsupported_values_raise_type_error_naming_the_path(
    offline: pulseline.Client, properties: dict[str, Any], path: str, type_name: str
) -> None:
    with pytest.raises(TypeError) as raised:
        offline.track("u", "e", properties)
    error = raised.value
    assert isinstance(error, pulseline.UnsupportedTypeError)
    assert isinstance(error, pulseline.PulselineError)
    assert (error.path, error.type_name) == (path, type_name)
    assert str(error).startswith(path + ":")
    assert offline.stats().captured == 0


def test_unsupported_values_in_other_arguments(offline: pulseline.Client) -> None:
    with pytest.raises(TypeError, match=r"traits\.x: set has no JSON representation"):
        offline.identify("u", {"x": set()})
    with pytest.raises(TypeError, match=r"context\.page\.ref: object"):
        offline.track("u", "e", context={"page": {"ref": object()}})
    with pytest.raises(TypeError, match="properties must be a dict, not list"):
        offline.track("u", "e", [1, 2])  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="user_id must be a str or an int, not float"):
        offline.track(1.5, "e")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="timestamp must be a datetime.datetime"):
        offline.track("u", "e", timestamp="2026-01-01")  # type: ignore[arg-type]


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, Decimal("NaN"), Decimal("-Infinity")])
def test_non_finite_numbers_are_invalid(offline: pulseline.Client, value: Any) -> None:
    with pytest.raises(ValueError, match=r"properties\.x\[0\]: NaN and infinities") as raised:
        offline.track("u", "e", {"x": [value]})
    assert isinstance(raised.value, pulseline.InvalidMessageError)


def test_circular_structures_are_refused_not_recursed(offline: pulseline.Client) -> None:
    loop: dict[str, Any] = {}
    loop["self"] = loop
    with pytest.raises(pulseline.InvalidMessageError, match="nested more than 64 levels"):
        offline.track("u", "e", {"loop": loop})


# sdk-core's one nesting rule (limits::MAX_JSON_DEPTH = 64): lists, tuples, dicts and other
# mappings each count one level. Node asserts the same text in sdk-node/test/convert.test.mjs.
MAX_JSON_DEPTH = 64


def nested(levels: int, leaf: Any) -> Any:
    """``levels`` lists and dicts, alternating from an outer dict, around ``leaf``."""
    value = leaf
    for level in range(levels, 0, -1):
        value = {"a": value} if level % 2 == 1 else [value]
    return value


def test_values_nested_max_json_depth_levels_are_accepted_one_deeper_refused(
    offline: pulseline.Client,
) -> None:
    offline.track("u", "e", nested(MAX_JSON_DEPTH, 1))
    assert offline.stats().captured == 1
    # The 65th level is an empty dict: refused although it holds nothing.
    path = "properties.a[0].a[0].a[0]…(54 more levels)….a[0].a[0]"
    with pytest.raises(pulseline.InvalidMessageError) as raised:
        offline.track("u", "e", nested(MAX_JSON_DEPTH, {}))
    assert raised.value.path == path
    assert str(raised.value) == (
        f"{path}: nested more than 64 levels of arrays and objects "
        "(limits::MAX_JSON_DEPTH; a circular reference?)"
    )
    assert offline.stats().captured == 1


def test_exceptions_from_user_code_propagate(offline: pulseline.Client) -> None:
    class Broken(enum.Enum):
        A = 1

        @property
        def value(self) -> Any:  # type: ignore[override]
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom") as raised:
        offline.track("u", "e", {"b": [Broken.A]})
    if sys.version_info >= (3, 11):  # exception notes
        assert raised.value.__notes__ == ["while pulseline converted properties.b[0]"]


def test_message_id_takes_any_non_empty_string_up_to_the_limit(offline: pulseline.Client) -> None:
    # The collector's and Segment's contract: any non-empty string, here at most 200 characters.
    for message_id in ["order-1042", "nope", " ", "é" * 200, "0192F1A4-5B6C-7D8E-9F00-112233445566"]:
        assert offline.track("u", "e", message_id=message_id) == message_id
    assert offline.track("u", "e", message_id=uuid.UUID(int=1)) == str(uuid.UUID(int=1))
    with pytest.raises(pulseline.InvalidMessageError, match="messageId must not be empty") as raised:
        offline.track("u", "e", message_id="")
    assert raised.value.field == "messageId"
    with pytest.raises(
        pulseline.InvalidMessageError, match="messageId must be at most 200 characters"
    ) as raised:
        offline.track("u", "e", message_id="é" * 201)
    assert raised.value.field == "messageId"
    with pytest.raises(TypeError, match="message_id must be a str or uuid.UUID, not int"):
        offline.track("u", "e", message_id=42)  # type: ignore[arg-type]


def test_oversized_messages(offline: pulseline.Client) -> None:
    with pytest.raises(pulseline.MessageTooLargeError) as raised:
        offline.track("u", "e", {"blob": "x" * 40_000})
    assert raised.value.size > raised.value.limit
