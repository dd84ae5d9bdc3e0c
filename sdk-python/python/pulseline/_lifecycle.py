"""What the native client cannot do by itself: report on a Python thread, flush at exit, and
start again in a forked child."""

from __future__ import annotations

import atexit
import logging
import os
import threading
import weakref
from collections import Counter
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._client import Client

logger = logging.getLogger("pulseline")

_clients: weakref.WeakSet[Client] = weakref.WeakSet()


def adopt(client: Client) -> None:
    """Registers a new client for the exit and fork hooks and starts its reporting thread."""
    _clients.add(client)
    _start_reporter(client)


def _start_reporter(client: Client) -> None:
    thread = threading.Thread(
        target=_report_loop, args=(weakref.ref(client),), name="pulseline-reporter", daemon=True
    )
    thread.start()


def _report_loop(ref: weakref.ref[Client]) -> None:
    while True:
        client = ref()
        if client is None:
            return
        taken = client._take_reports(1.0)
        on_error, on_drop = client.on_error, client.on_drop
        del client  # do not keep the client alive while waiting
        if taken is None:
            return
        _dispatch(*taken, on_error=on_error, on_drop=on_drop)


def _dispatch(reports: list[tuple[Any, ...]], overflowed: int, *, on_error: Any, on_drop: Any) -> None:
    drops: Counter[str] = Counter()
    for report in reports:
        if report[0] == "error":
            error = report[1]
            logger.warning("%s", error)
            if on_error is not None:
                _call_back("on_error", on_error, error)
        else:
            drops[report[1]] += report[2]
    for reason, count in drops.items():
        logger.error("dropped %d event(s): %s", count, reason)
        if on_drop is not None:
            _call_back("on_drop", on_drop, reason, count)
    if overflowed:
        logger.warning("%d delivery report(s) not logged: reporting fell behind", overflowed)


def _call_back(name: str, callback: Any, *args: Any) -> None:
    """Calls a user callback on the reporting thread. Whatever it raises is logged and dropped,
    BaseExceptions included: a `sys.exit()` in a callback would otherwise end this thread
    silently, and with it every later report."""
    try:
        callback(*args)
    except BaseException:
        logger.exception("pulseline %s callback raised", name)


@atexit.register
def _shutdown_at_exit() -> None:
    """Delivers what is left, within each client's ``shutdown_timeout`` (default 5 s); what does
    not make it stays in the disk buffer for the next process."""
    for client in list(_clients):
        if client.is_shut_down:
            continue
        try:
            outcome = client.shutdown()
        except Exception:
            logger.exception("pulseline shutdown at exit failed")
            continue
        if not outcome.complete:
            logger.warning("pulseline at exit: %r", outcome)


def _after_fork_in_child() -> None:
    # Only the forking thread exists here; the parent's worker and reporting threads do not.
    for client in list(_clients):
        if client.is_shut_down:
            continue
        try:
            client._reinitialize_after_fork()
        except Exception:
            logger.exception("pulseline could not restart its client after fork")
            continue
        _start_reporter(client)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
