from __future__ import annotations

from types import TracebackType
from typing import TYPE_CHECKING

from . import _lifecycle, _native

if TYPE_CHECKING:
    from typing_extensions import Self, Unpack

    from ._options import ClientOptions


class Client(_native.Client):
    """Sends analytics events to a Pulseline (or any Segment-compatible) collector.

    Capture methods (``track``, ``identify``, ``page``, ``screen``, ``group``, ``alias``) convert
    their arguments to JSON on the calling thread (about a microsecond) and return the
    message's ``messageId``; a background Rust thread batches, compresses, retries and, if the
    collector cannot be reached, keeps events in a crash-safe disk buffer. They never block on
    the network and never raise because it is down.

    Safe to share between threads and across ``os.fork()``: a forked child gets its own worker
    and never resends what the parent captured. At interpreter exit every client is shut down
    (flushed) within its ``shutdown_timeout``.

    >>> with pulseline.Client("plw_...", host="http://127.0.0.1:8080") as client:
    ...     client.track("user-42", "signup", {"plan": "pro"})
    """

    def __init__(
        self, write_key: str, host: str | None = None, **options: Unpack[ClientOptions]
    ) -> None:
        # The native __new__ has built the client from the same arguments.
        _lifecycle.adopt(self)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.shutdown()

    def __repr__(self) -> str:
        state = "shut down" if self.is_shut_down else "running"
        return f"<pulseline.Client {state}>"
