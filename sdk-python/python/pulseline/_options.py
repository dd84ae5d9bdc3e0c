"""The keyword options of :class:`pulseline.Client`, for type checkers.

The native module owns the list (``pulseline._native.Client.OPTIONS``) and the defaults and
bounds (``pulseline._native.OPTION_TABLE``, the Rust core's option table);
``tests/test_typing.py`` checks that the names and the "Default …" and "at most …" figures
below agree with them.
"""

from __future__ import annotations

import os
from typing import Callable, TypedDict

from .errors import DeliveryError


class ClientOptions(TypedDict, total=False):
    #: Longest a captured event waits before its batch is sent, seconds. Default 0.5.
    flush_interval: float
    #: Events per request (at most 2,500). Default 1,000.
    max_batch_messages: int
    #: Uncompressed bytes per request (at most 512 KiB). Default 512 KiB.
    max_batch_bytes: int
    #: Events held in memory before overflowing to the disk buffer (or, without one, being
    #: dropped as ``queue_full``). Default 100,000.
    max_buffered_events: int
    #: Bytes of events held in memory, as above. Default 32 MiB.
    max_buffered_bytes: int
    #: Requests in flight at once. Default 4.
    max_in_flight: int
    #: Gzip request bodies. Default True.
    gzip: bool
    #: TCP connect timeout, seconds. Default 5.
    connect_timeout: float
    #: Whole-request timeout, seconds. Default 10.
    request_timeout: float
    #: First retry's backoff cap, seconds (full jitter, doubling). Default 0.1.
    retry_min_delay: float
    #: Largest backoff cap, seconds. Default 10.
    retry_max_delay: float
    #: Longest ``Retry-After`` honoured, seconds. Default 60.
    max_retry_after: float
    #: A batch failing this long waits in the disk buffer (or is dropped without one). Default 30.
    max_retry_elapsed: float
    #: How long ``shutdown()`` (and the exit hook) waits for delivery, seconds. Default 5.
    shutdown_timeout: float
    #: Keep undelivered events in crash-safe files, sent by the next process. Default True.
    disk_buffer: bool
    #: Where; default ``<user cache dir>/pulseline/<hash of host and write key>`` (``0700``).
    disk_buffer_directory: str | os.PathLike[str] | None
    #: Upper bound on the disk buffer's size, bytes. Default 256 MiB.
    disk_buffer_max_bytes: int
    #: Events older than this are deleted unsent, seconds. Default 7 days.
    disk_buffer_max_age: float
    #: Send nothing and write no disk buffer; every method still works and captures are counted
    #: as dropped (``opted_out``). For tests and environments that must not send. Default False.
    disabled: bool
    #: Called (on a background thread) with each :class:`~pulseline.errors.DeliveryError`.
    on_error: Callable[[DeliveryError], object] | None
    #: Called (on a background thread) with ``(reason, count)`` for dropped events.
    on_drop: Callable[[str, int], object] | None
