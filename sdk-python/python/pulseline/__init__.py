"""Pulseline analytics: ``pulseline.Client(write_key, host=...).track(user_id, event, properties)``.

A client converts each call's arguments on the calling thread and hands the message to a
background Rust worker that batches, compresses, retries and (when the collector is
unreachable) keeps events in a crash-safe disk buffer. See :class:`Client`.

Module-level use, for apps that want one client::

    import pulseline
    pulseline.init("plw_...", host="http://127.0.0.1:8080")
    pulseline.track("user-42", "signup", {"plan": "pro"})

Problems are logged to ``logging.getLogger("pulseline")``.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any, Mapping

from ._client import Client
from ._native import FlushOutcome, ShutdownOutcome, Stats, __version__
from ._options import ClientOptions
from .errors import (
    ConfigError,
    DeliveryError,
    DiskBufferError,
    HttpError,
    InvalidMessageError,
    MessageTooLargeError,
    PulselineError,
    RejectedError,
    TransportError,
    UnsupportedTypeError,
)

if TYPE_CHECKING:
    from uuid import UUID

    from typing_extensions import Unpack

__all__ = [
    "Client",
    "ClientOptions",
    "FlushOutcome",
    "ShutdownOutcome",
    "Stats",
    "__version__",
    "init",
    "default_client",
    "track",
    "identify",
    "page",
    "screen",
    "group",
    "alias",
    "flush",
    "shutdown",
    "PulselineError",
    "ConfigError",
    "InvalidMessageError",
    "MessageTooLargeError",
    "UnsupportedTypeError",
    "DeliveryError",
    "HttpError",
    "TransportError",
    "RejectedError",
    "DiskBufferError",
]

_default: Client | None = None


def init(write_key: str, host: str | None = None, **options: Unpack[ClientOptions]) -> Client:
    """Creates the module-level client used by :func:`track` and friends (shutting down the
    previous one, if any) and returns it."""
    global _default
    previous, _default = _default, Client(write_key, host, **options)
    if previous is not None:
        previous.shutdown()
    return _default


def default_client() -> Client:
    """The client made by :func:`init`."""
    if _default is None:
        raise PulselineError("call pulseline.init(write_key, host=...) before pulseline.track()")
    return _default


def track(
    user_id: str | int | None,
    event: str,
    properties: Mapping[str, Any] | None = None,
    *,
    anonymous_id: str | int | None = None,
    timestamp: datetime | None = None,
    context: Mapping[str, Any] | None = None,
    integrations: Mapping[str, Any] | None = None,
    message_id: str | UUID | None = None,
) -> str | None:
    """:meth:`Client.track` on the module-level client."""
    return default_client().track(
        user_id, event, properties, anonymous_id=anonymous_id, timestamp=timestamp,
        context=context, integrations=integrations, message_id=message_id,
    )


def identify(
    user_id: str | int | None,
    traits: Mapping[str, Any] | None = None,
    *,
    anonymous_id: str | int | None = None,
    timestamp: datetime | None = None,
    context: Mapping[str, Any] | None = None,
    integrations: Mapping[str, Any] | None = None,
    message_id: str | UUID | None = None,
) -> str | None:
    """:meth:`Client.identify` on the module-level client."""
    return default_client().identify(
        user_id, traits, anonymous_id=anonymous_id, timestamp=timestamp, context=context,
        integrations=integrations, message_id=message_id,
    )


def page(
    user_id: str | int | None,
    name: str | None = None,
    properties: Mapping[str, Any] | None = None,
    *,
    anonymous_id: str | int | None = None,
    timestamp: datetime | None = None,
    context: Mapping[str, Any] | None = None,
    integrations: Mapping[str, Any] | None = None,
    message_id: str | UUID | None = None,
) -> str | None:
    """:meth:`Client.page` on the module-level client."""
    return default_client().page(
        user_id, name, properties, anonymous_id=anonymous_id, timestamp=timestamp,
        context=context, integrations=integrations, message_id=message_id,
    )


def screen(
    user_id: str | int | None,
    name: str | None = None,
    properties: Mapping[str, Any] | None = None,
    *,
    anonymous_id: str | int | None = None,
    timestamp: datetime | None = None,
    context: Mapping[str, Any] | None = None,
    integrations: Mapping[str, Any] | None = None,
    message_id: str | UUID | None = None,
) -> str | None:
    """:meth:`Client.screen` on the module-level client."""
    return default_client().screen(
        user_id, name, properties, anonymous_id=anonymous_id, timestamp=timestamp,
        context=context, integrations=integrations, message_id=message_id,
    )


def group(
    user_id: str | int | None,
    group_id: str | int,
    traits: Mapping[str, Any] | None = None,
    *,
    anonymous_id: str | int | None = None,
    timestamp: datetime | None = None,
    context: Mapping[str, Any] | None = None,
    integrations: Mapping[str, Any] | None = None,
    message_id: str | UUID | None = None,
) -> str | None:
    """:meth:`Client.group` on the module-level client."""
    return default_client().group(
        user_id, group_id, traits, anonymous_id=anonymous_id, timestamp=timestamp,
        context=context, integrations=integrations, message_id=message_id,
    )


def alias(
    previous_id: str | int,
    user_id: str | int,
    *,
    timestamp: datetime | None = None,
    context: Mapping[str, Any] | None = None,
    integrations: Mapping[str, Any] | None = None,
    message_id: str | UUID | None = None,
) -> str | None:
    """:meth:`Client.alias` on the module-level client."""
    return default_client().alias(
        previous_id, user_id, timestamp=timestamp, context=context,
        integrations=integrations, message_id=message_id,
    )


def flush(timeout: float | None = None) -> FlushOutcome:
    """:meth:`Client.flush` on the module-level client."""
    return default_client().flush(timeout)


def shutdown(timeout: float | None = None) -> ShutdownOutcome:
    """:meth:`Client.shutdown` on the module-level client."""
    return default_client().shutdown(timeout)
