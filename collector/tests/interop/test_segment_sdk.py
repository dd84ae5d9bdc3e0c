"""Segment's own Python SDK (`segment-analytics-python`) against the collector.

A client nobody here wrote: if its messages arrive once, intact, and readable through the read
API, a Segment user can point `host=` at Pulseline and keep their code.
"""

from __future__ import annotations

import threading
import uuid
from datetime import datetime
from typing import Any

import pytest
from segment.analytics import Client
from segment.analytics import request as segment_request

from collector_process import Collector

FLUSH_TIMEOUT_S = 30.0

# The SDK posts through one module-level requests session: keep environment proxies out of it.
segment_request._session.trust_env = False


class SdkErrors:
    """on_error callback: the SDK reports batches it gave up on here."""

    def __init__(self) -> None:
        self.errors: list[tuple[Exception, list[dict]]] = []

    def __call__(self, error: Exception, batch: list[dict]) -> None:
        self.errors.append((error, batch))


def make_client(collector: Collector, errors: SdkErrors, write_key: str | None = None, **options: Any) -> Client:
    return Client(
        write_key or collector.write_key,
        host=collector.base_url,
        on_error=errors,
        max_retries=2,
        timeout=10,
        upload_interval=0.05,
        **options,
    )


def flush(client: Client) -> None:
    """client.flush() waits on a queue with no timeout; bound it so a stuck SDK fails the test."""
    done = threading.Event()

    def run() -> None:
        client.flush()
        done.set()

    threading.Thread(target=run, daemon=True).start()
    assert done.wait(FLUSH_TIMEOUT_S), f"SDK flush did not finish within {FLUSH_TIMEOUT_S}s"


def sent(result: tuple[bool, dict]) -> dict:
    ok, msg = result
    assert ok, f"the SDK refused to queue {msg}"
    return msg


def assert_stored_as_sent(stored: dict, msg: dict) -> None:
    """Every field the SDK sent comes back unchanged (the timestamp as the same instant)."""
    for key, value in msg.items():
        if key == "timestamp":
            assert datetime.fromisoformat(stored[key]) == datetime.fromisoformat(value), (key, stored)
        elif value is None:
            assert stored.get(key) is None, (key, stored)
        elif key == "context" and "ip" in value:
            # The raw IP is not stored unless PULSELINE_STORE_IP=true (docs/web-analytics.md).
            expected = {k: v for k, v in value.items() if k != "ip"}
            assert stored.get(key) == expected, f"{msg['type']}.context: stored {stored.get(key)!r}"
        else:
            assert stored.get(key) == value, f"{msg['type']}.{key}: sent {value!r}, stored {stored.get(key)!r}"


def by_message_id(events: list[dict]) -> dict[str, dict]:
    ids = [e["messageId"] for e in events]
    duplicates = {i for i in ids if ids.count(i) > 1}
    assert not duplicates, f"stored more than once: {sorted(duplicates)}"
    return {e["messageId"]: e for e in events}


def test_every_call_type_arrives_once_with_its_fields(collector: Collector) -> None:
    errors = SdkErrors()
    client = make_client(collector, errors)
    user = f"user-{uuid.uuid4()}"
    anonymous = f"anon-{uuid.uuid4()}"

    messages = [
        sent(client.identify(user, traits={"email": "ada@example.com", "plan": "pro", "age": 36, "beta": True})),
        sent(
            client.track(
                user,
                "Order Completed",
                properties={
                    "revenue": 42.5,
                    "currency": "EUR",
                    "items": [{"sku": "A-1", "qty": 2}, {"sku": "B-7", "qty": 1}],
                    "coupon": None,
                    "note": "naïve café ☕",
                },
                context={"ip": "203.0.113.9", "locale": "fr-FR"},
                integrations={"All": True},
            )
        ),
        sent(client.page(user, category="Docs", name="Quickstart", properties={"path": "/docs/quickstart"})),
        sent(client.screen(user, name="Settings", properties={"tab": "billing"})),
        sent(client.group(user, "acme-inc", traits={"name": "Acme Inc", "employees": 120})),
        sent(client.alias(anonymous, user)),
    ]
    flush(client)
    client.shutdown()

    assert errors.errors == []
    stored = by_message_id(collector.events(user_id=user))
    assert set(stored) == {m["messageId"] for m in messages}
    for msg in messages:
        assert_stored_as_sent(stored[msg["messageId"]], msg)
    assert stored[messages[1]["messageId"]]["context"]["library"]["name"] == "analytics-python"
    assert collector.events_total() == len(messages)


def test_explicit_message_ids_are_kept_and_a_resent_message_is_stored_once(collector: Collector) -> None:
    errors = SdkErrors()
    client = make_client(collector, errors)
    user = f"user-{uuid.uuid4()}"
    message_id = f"order-{uuid.uuid4()}"

    first = sent(client.track(user, "Checkout Started", properties={"step": 1}, message_id=message_id))
    flush(client)
    # What a client retrying after a lost response does: the same message again.
    sent(client.track(user, "Checkout Started", properties={"step": 1}, message_id=message_id))
    flush(client)
    client.shutdown()

    assert errors.errors == []
    events = collector.events(user_id=user)
    assert [e["messageId"] for e in events] == [message_id]
    assert_stored_as_sent(events[0], first)


@pytest.mark.parametrize("gzip", [False, True], ids=["plain", "gzip"])
def test_many_batches_arrive_exactly_once(collector: Collector, monkeypatch: pytest.MonkeyPatch, gzip: bool) -> None:
    # Spy on what the SDK puts on the wire, so the gzip case cannot pass uncompressed.
    encodings: list[str | None] = []
    real_post = segment_request._session.post

    def spy(url: str, **kwargs: Any) -> Any:
        encodings.append(kwargs["headers"].get("Content-Encoding"))
        return real_post(url, **kwargs)

    monkeypatch.setattr(segment_request._session, "post", spy)
    errors = SdkErrors()
    client = make_client(collector, errors, gzip=gzip, upload_size=100)
    user = f"user-{uuid.uuid4()}"

    messages = [
        sent(client.track(user, "Item Viewed", properties={"i": i, "sku": f"SKU-{i:04d}", "price": i * 0.25}))
        for i in range(250)
    ]
    flush(client)
    client.shutdown()

    assert errors.errors == []
    assert len(encodings) >= 3, f"expected at least 3 batches of at most 100, saw {len(encodings)} requests"
    assert set(encodings) == ({"gzip"} if gzip else {None})
    stored = by_message_id(collector.events(user_id=user, event="Item Viewed"))
    assert len(stored) == len(messages)
    for msg in messages:
        assert_stored_as_sent(stored[msg["messageId"]], msg)


def test_a_wrong_write_key_is_reported_to_the_sdk_and_nothing_is_stored(collector: Collector) -> None:
    errors = SdkErrors()
    client = make_client(collector, errors, write_key="plw_not_a_real_key")
    user = f"user-{uuid.uuid4()}"

    sent(client.track(user, "Signed Up"))
    flush(client)
    client.shutdown()

    assert len(errors.errors) == 1, errors.errors
    error, batch = errors.errors[0]
    assert getattr(error, "status", None) == 401, repr(error)
    assert [m["userId"] for m in batch] == [user]
    assert collector.events(user_id=user) == []


def test_the_keys_printed_on_first_start_work_with_the_sdk(fresh_collector: Collector) -> None:
    # The newcomer path: start on an empty database, copy the printed write key into the SDK.
    errors = SdkErrors()
    client = make_client(fresh_collector, errors)
    assert fresh_collector.write_key.startswith("plw_")
    assert fresh_collector.secret_key.startswith("pls_")

    msg = sent(client.track("user-1", "Signed Up", properties={"source": "readme"}))
    flush(client)
    client.shutdown()

    assert errors.errors == []
    [stored] = fresh_collector.events(user_id="user-1")
    assert_stored_as_sent(stored, msg)
