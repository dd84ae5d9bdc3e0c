"""Exceptions raised by pulseline, and passed to ``on_error`` callbacks.

Capture methods (``track`` and friends) raise only for problems with the call itself:
:class:`UnsupportedTypeError` (also a ``TypeError``) and :class:`InvalidMessageError` (also a
``ValueError``). They never raise because the network or the collector is down: those problems
are :class:`DeliveryError` instances, logged to ``logging.getLogger("pulseline")`` and passed
to the client's ``on_error`` callback.
"""

from __future__ import annotations

__all__ = [
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


class PulselineError(Exception):
    """Base class of every pulseline exception. Raised as itself only for an internal error (a
    bug in pulseline), which is never a ``BaseException`` that ``except Exception`` misses."""


class ConfigError(PulselineError, ValueError):
    """The client's options are invalid (e.g. a negative timeout)."""


class InvalidMessageError(PulselineError, ValueError):
    """A message is missing a required field or holds a value JSON cannot represent (NaN, an
    infinity, a lone surrogate, a dict that changed size while it was converted, a timestamp that
    is not a time).

    ``field`` is the wire name of the field (``userId``, ``event``, ``properties``...);
    ``path`` the Python path to a bad value inside it, when there is one.
    """

    def __init__(
        self,
        message: str,
        *,
        field: str | None = None,
        reason: str | None = None,
        path: str | None = None,
    ) -> None:
        super().__init__(message)
        self.field = field
        self.reason = reason
        self.path = path


class MessageTooLargeError(InvalidMessageError):
    """The serialized message is larger than the collector accepts (``size`` > ``limit`` bytes)."""

    def __init__(self, message: str, *, field: str | None = None, size: int, limit: int) -> None:
        super().__init__(message, field=field)
        self.size = size
        self.limit = limit


class UnsupportedTypeError(PulselineError, TypeError):
    """A value has no JSON form. ``path`` says where (``properties.cart[0].added``)."""

    def __init__(self, message: str, *, path: str, type_name: str) -> None:
        super().__init__(message)
        self.path = path
        self.type_name = type_name


class DeliveryError(PulselineError):
    """Sending a batch failed (it is retried or persisted as the SDK's policy says)."""


class HttpError(DeliveryError):
    """The collector answered with a non-success ``status``."""

    def __init__(
        self, message: str, *, status: int, retry_after: float | None = None, body: str = ""
    ) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after
        self.body = body


class TransportError(DeliveryError):
    """The request got no HTTP response; ``kind`` is ``connect``, ``timeout`` or ``transport``."""

    def __init__(self, message: str, *, kind: str) -> None:
        super().__init__(message)
        self.kind = kind


class RejectedError(DeliveryError):
    """The collector stored the batch but refused the message ``message_id``."""

    def __init__(self, message: str, *, message_id: str, reason: str) -> None:
        super().__init__(message)
        self.message_id = message_id
        self.reason = reason


class DiskBufferError(DeliveryError):
    """Reading or writing the disk buffer failed at ``path`` (the OSError is the ``__cause__``);
    the SDK keeps working from memory."""

    def __init__(self, message: str, *, path: str, offset: int | None = None) -> None:
        super().__init__(message)
        self.path = path
        self.offset = offset
