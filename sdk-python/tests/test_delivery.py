"""Every message type reaches the real collector once, with every field intact."""

from __future__ import annotations

import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

import pytest

import pulseline


def test_track_arrives_once_with_every_field(collector, tmp_path: Path, unique) -> None:
    event, user = unique("signup"), unique("user")
    message_id = uuid.uuid4()
    at = datetime(2026, 3, 4, 5, 6, 7, 891000, tzinfo=timezone.utc)
    with pulseline.Client(collector.write_key, **collector.client_kwargs(tmp_path)) as client:
        returned = client.track(
            user,
            event,
            {"plan": "pro", "seats": 3, "nested": {"ok": True}},
            anonymous_id="anon-1",
            timestamp=at,
            context={"ip": "127.0.0.1", "locale": "fr-FR"},
            message_id=message_id,
        )
        assert returned == str(message_id)
        assert client.flush(10).status == "flushed"
    [stored] = collector.wait_for(1, event=event)
    assert stored["type"] == "track"
    assert stored["messageId"] == str(message_id)
    assert stored["userId"] == user
    assert stored["anonymousId"] == "anon-1"
    assert stored["event"] == event
    assert stored["properties"] == {"plan": "pro", "seats": 3, "nested": {"ok": True}}
    assert stored["timestamp"].startswith("2026-03-04T05:06:07.891")
    assert "ip" not in stored["context"], "the raw IP is not stored unless PULSELINE_STORE_IP"
    assert stored["context"]["locale"] == "fr-FR"
    assert stored["context"]["library"] == {"name": "pulseline-python", "version": pulseline.__version__}


def test_a_string_message_id_arrives_as_given_and_dedupes(
    collector, tmp_path: Path, unique
) -> None:
    event, message_id = unique("backfill"), unique('order "1042" ✓')
    with pulseline.Client(collector.write_key, **collector.client_kwargs(tmp_path)) as client:
        for n in range(2):  # a backfill run twice: the collector keeps the first
            assert client.track("u1", event, {"n": n}, message_id=message_id) == message_id
            assert client.flush(10).status == "flushed"
    # Flushed means the collector committed both batches: nothing more can arrive.
    [stored] = collector.events(event=event)
    assert (stored["messageId"], stored["properties"]) == (message_id, {"n": 0})


def test_ids_and_names_over_the_collector_limits_raise_at_the_call(
    collector, tmp_path: Path, unique
) -> None:
    """The collector refuses ids over 200 characters and names over 200 once trimmed; the SDK
    refuses them at the call, so the rest of the batch is stored."""
    event, long = unique("limits"), "u" * 201
    with pulseline.Client(collector.write_key, **collector.client_kwargs(tmp_path)) as client:
        calls = [
            (lambda: client.track(long, event), "userId"),
            (lambda: client.track(None, event, anonymous_id=long), "anonymousId"),
            (lambda: client.track(12, event, message_id=long), "messageId"),
            (lambda: client.group("u1", long), "groupId"),
            (lambda: client.alias(long, "u1"), "previousId"),  # alias(previous_id, user_id)
            (lambda: client.alias("p1", long), "userId"),
            (lambda: client.track("u1", "e" * 201), "event"),
            (lambda: client.track("u1", " \t "), "event"),
            (lambda: client.page("u1", "n" * 201), "name"),
        ]
        for call, field in calls:
            with pytest.raises(pulseline.InvalidMessageError) as raised:
                call()
            assert raised.value.field == field
            assert "200 characters" in str(raised.value) or "whitespace" in str(raised.value)
        # At the limit, counted in characters (not bytes), both ids are fine.
        assert client.track("🙂" * 200, event, anonymous_id="a" * 200) is not None
        assert client.track("user-ok", event) is not None
        assert client.flush(10).status == "flushed"
        assert client.stats().dropped_total == 0
    stored = collector.wait_for(2, event=event)
    assert sorted(e["userId"] for e in stored) == sorted(["user-ok", "🙂" * 200])


def test_every_message_type_arrives(collector, tmp_path: Path, unique) -> None:
    user = unique("user")
    client = pulseline.Client(collector.write_key, **collector.client_kwargs(tmp_path))
    ids = {
        "identify": client.identify(user, {"email": "ada@example.com"}),
        "page": client.page(user, "Pricing", {"path": "/pricing"}),
        "screen": client.screen(user, "Settings"),
        "group": client.group(user, "acme", {"name": "Acme"}),
        "alias": client.alias("anon-7", user),
        "track": client.track(user, "clicked"),
    }
    assert client.shutdown(10).complete
    stored = {e["messageId"]: e for e in collector.wait_for(6, user_id=user)}
    assert len(stored) == 6
    for kind, message_id in ids.items():
        assert stored[message_id]["type"] == kind
    assert stored[ids["identify"]]["traits"] == {"email": "ada@example.com"}
    assert stored[ids["page"]]["name"] == "Pricing"
    assert stored[ids["page"]]["properties"] == {"path": "/pricing"}
    assert stored[ids["screen"]]["name"] == "Settings"
    assert stored[ids["group"]]["groupId"] == "acme"
    assert stored[ids["alias"]]["previousId"] == "anon-7"
    stats = client.stats()
    assert (stats.captured, stats.sent, stats.dropped_total) == (6, 6, 0)


def test_module_level_client(collector, tmp_path: Path, unique) -> None:
    event = unique("module")
    client = pulseline.init(collector.write_key, **collector.client_kwargs(tmp_path))
    assert pulseline.default_client() is client
    message_id = pulseline.track(42, event, {"n": 1})
    assert pulseline.flush(10)
    [stored] = collector.wait_for(1, event=event)
    assert (stored["messageId"], stored["userId"]) == (message_id, "42")
    assert pulseline.shutdown().complete


def test_delivery_errors_reach_on_error_and_the_log(collector, tmp_path: Path, caplog) -> None:
    errors: list[pulseline.DeliveryError] = []
    client = pulseline.Client(
        "plw_not_a_key", host=collector.host, disk_buffer=False, on_error=errors.append
    )
    client.track("u", "refused")
    # Refused with a 401, so never delivered: not "flushed", and falsy.
    outcome = client.flush(10)
    assert (outcome.status, outcome.messages, bool(outcome)) == ("dropped", 1, False)
    client.shutdown(5)
    deadline = time.monotonic() + 5
    while not errors and time.monotonic() < deadline:
        time.sleep(0.05)
    assert errors and isinstance(errors[0], pulseline.HttpError)
    assert errors[0].status == 401
    assert client.stats().dropped["client_error"] == 1
    assert any("401" in r.getMessage() for r in caplog.records if r.name == "pulseline")
    # Every reason the core counts is listed, including ones added after this binding.
    assert set(client.stats().dropped) == {
        "queue_full",
        "rejected_by_server",
        "client_error",
        "too_large",
        "retries_exhausted",
        "expired",
        "disk_full",
        "shutdown",
        "unserializable",
        "opted_out",
    }


def test_invalid_options_say_what_to_fix() -> None:
    with pytest.raises(TypeError, match="unexpected option 'flush_intreval'"):
        pulseline.Client("k", flush_intreval=1)  # type: ignore[call-arg]
    with pytest.raises(pulseline.ConfigError, match="flush_interval"):
        pulseline.Client("k", flush_interval=-1)
    with pytest.raises(pulseline.InvalidMessageError, match="userId or anonymousId"):
        pulseline.Client("k", disk_buffer=False).track(None, "x")


def test_disabled_client_sends_nothing_and_writes_no_disk_buffer(
    collector, tmp_path: Path, unique
) -> None:
    user = unique("disabled")
    kwargs = collector.client_kwargs(tmp_path)
    client = pulseline.Client(collector.write_key, disabled=True, **kwargs)
    assert client.is_disabled
    message_id = client.track(user, "signup", {"plan": "pro"})
    assert message_id is not None and uuid.UUID(message_id).version == 7
    # Arguments are still checked, as by a client that sends.
    with pytest.raises(pulseline.InvalidMessageError):
        client.track(None, "x")
    client.opt_in()  # cannot undo disabled=True
    client.identify(user, {"email": "ada@example.com"})
    assert client.flush(10).status == "flushed"
    stats = client.stats()
    assert (stats.captured, stats.sent, stats.dropped["opted_out"]) == (2, 0, 2)
    assert client.shutdown(10).complete
    # A marker sent afterwards by a working client arrives, so the disabled one's events would
    # have had time to arrive too.
    with pulseline.Client(collector.write_key, **collector.client_kwargs(tmp_path / "b")) as other:
        other.track(user, "marker")
    collector.wait_for(1, user_id=user, event="marker")
    assert [e["event"] for e in collector.events(user_id=user)] == ["marker"]
    assert not (tmp_path / "buffer").exists()


def test_opt_out_drops_and_opt_in_resumes(collector, tmp_path: Path, unique) -> None:
    user = unique("optout")
    with pulseline.Client(collector.write_key, **collector.client_kwargs(tmp_path)) as client:
        client.track(user, "before")
        client.opt_out()
        assert client.is_opted_out
        assert client.track(user, "while_opted_out") is not None
        client.page(user, "Pricing")
        assert client.flush(10).status == "flushed"
        client.opt_in()
        assert not client.is_opted_out
        client.track(user, "after")
        assert client.flush(10).status == "flushed"
        stats = client.stats()
        assert (stats.captured, stats.sent, stats.dropped["opted_out"]) == (4, 2, 2)
    stored = collector.wait_for(2, user_id=user)
    assert sorted(e["event"] for e in stored) == ["after", "before"]
