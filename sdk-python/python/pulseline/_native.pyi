# Type stubs of the native module (src/*.rs); checked against it by mypy stubtest in CI.
from datetime import datetime
from typing import Any, Callable, ClassVar, Literal, Mapping, final
from uuid import UUID

from typing_extensions import disjoint_base

from .errors import DeliveryError

__all__ = ["Client", "Stats", "FlushOutcome", "ShutdownOutcome", "OPTION_TABLE", "__version__"]
__version__: str
#: The core's options: ``name: (default, max)``, durations in seconds, ``None`` where unset.
OPTION_TABLE: dict[str, tuple[float | int | bool | str | None, float | int | None]]

_Id = str | int

@disjoint_base
class Client:
    OPTIONS: ClassVar[tuple[str, ...]]
    @property
    def on_error(self) -> Callable[[DeliveryError], object] | None: ...
    @property
    def on_drop(self) -> Callable[[str, int], object] | None: ...
    @property
    def is_shut_down(self) -> bool: ...
    @property
    def is_opted_out(self) -> bool: ...
    @property
    def is_disabled(self) -> bool: ...
    def __new__(cls, write_key: str, host: str | None = None, **options: Any) -> Client: ...
    def track(
        self,
        user_id: _Id | None,
        event: str,
        properties: Mapping[str, Any] | None = None,
        *,
        anonymous_id: _Id | None = None,
        timestamp: datetime | None = None,
        context: Mapping[str, Any] | None = None,
        integrations: Mapping[str, Any] | None = None,
        message_id: str | UUID | None = None,
    ) -> str | None: ...
    def identify(
        self,
        user_id: _Id | None,
        traits: Mapping[str, Any] | None = None,
        *,
        anonymous_id: _Id | None = None,
        timestamp: datetime | None = None,
        context: Mapping[str, Any] | None = None,
        integrations: Mapping[str, Any] | None = None,
        message_id: str | UUID | None = None,
    ) -> str | None: ...
    def page(
        self,
        user_id: _Id | None,
        name: str | None = None,
        properties: Mapping[str, Any] | None = None,
        *,
        anonymous_id: _Id | None = None,
        timestamp: datetime | None = None,
        context: Mapping[str, Any] | None = None,
        integrations: Mapping[str, Any] | None = None,
        message_id: str | UUID | None = None,
    ) -> str | None: ...
    def screen(
        self,
        user_id: _Id | None,
        name: str | None = None,
        properties: Mapping[str, Any] | None = None,
        *,
        anonymous_id: _Id | None = None,
        timestamp: datetime | None = None,
        context: Mapping[str, Any] | None = None,
        integrations: Mapping[str, Any] | None = None,
        message_id: str | UUID | None = None,
    ) -> str | None: ...
    def group(
        self,
        user_id: _Id | None,
        group_id: _Id,
        traits: Mapping[str, Any] | None = None,
        *,
        anonymous_id: _Id | None = None,
        timestamp: datetime | None = None,
        context: Mapping[str, Any] | None = None,
        integrations: Mapping[str, Any] | None = None,
        message_id: str | UUID | None = None,
    ) -> str | None: ...
    def alias(
        self,
        previous_id: _Id,
        user_id: _Id,
        *,
        timestamp: datetime | None = None,
        context: Mapping[str, Any] | None = None,
        integrations: Mapping[str, Any] | None = None,
        message_id: str | UUID | None = None,
    ) -> str | None: ...
    def flush(self, timeout: float | None = None) -> FlushOutcome: ...
    def shutdown(self, timeout: float | None = None) -> ShutdownOutcome: ...
    def stats(self) -> Stats: ...
    def opt_out(self) -> None: ...
    def opt_in(self) -> None: ...
    def _take_reports(self, timeout: float) -> tuple[list[tuple[Any, ...]], int] | None: ...
    def _reinitialize_after_fork(self) -> None: ...

@final
class Stats:
    @property
    def captured(self) -> int: ...
    @property
    def sent(self) -> int: ...
    @property
    def retried(self) -> int: ...
    @property
    def buffered_on_disk(self) -> int: ...
    @property
    def replayed_from_disk(self) -> int: ...
    @property
    def bytes_sent(self) -> int: ...
    @property
    def batches_sent(self) -> int: ...
    @property
    def corrupt_records(self) -> int: ...
    @property
    def dropped(self) -> dict[str, int]: ...
    @property
    def dropped_total(self) -> int: ...

@final
class FlushOutcome:
    @property
    def status(self) -> Literal["flushed", "persisted", "dropped", "timed_out", "closed"]: ...
    @property
    def messages(self) -> int: ...
    def __bool__(self) -> bool: ...

@final
class ShutdownOutcome:
    @property
    def timed_out(self) -> bool: ...
    @property
    def persisted(self) -> int: ...
    @property
    def lost(self) -> int: ...
    @property
    def complete(self) -> bool: ...
    def __bool__(self) -> bool: ...
