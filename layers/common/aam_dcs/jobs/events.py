"""Domain events on an event bus behind a small interface: EventBridge in AWS, a list in unit tests.

``EventSink.put(events)`` delivers every event or raises ``EventDeliveryError``: a queue worker
that cannot announce a change fails its message, and SQS retries it. Details must never carry raw
customer IDs (use the hashed keys of :mod:`aam_dcs.store.profiles`).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any, Final, Protocol

from aam_dcs.aws import new_client
from aam_dcs.errors import AamDcsError

if TYPE_CHECKING:
    from mypy_boto3_events.client import EventBridgeClient
    from mypy_boto3_events.type_defs import PutEventsRequestEntryTypeDef

EVENT_SOURCE: Final = "aam-dcs"
MAX_ENTRIES_PER_CALL: Final = 10
MAX_ATTEMPTS: Final = 3
RETRY_DELAY_SECONDS: Final = 0.1


@dataclass(frozen=True)
class DomainEvent:
    """One event: ``detail_type`` names it (``SegmentsChanged``), ``detail`` is its JSON object."""

    detail_type: str
    detail: Mapping[str, Any]
    source: str = EVENT_SOURCE


class EventDeliveryError(AamDcsError):
    """Some events could not be put on the bus after the retries (a transient failure)."""

    http_status = 503
    retryable = True


class EventSink(Protocol):
    def put(self, events: Sequence[DomainEvent]) -> None:
        """Deliver every event, or raise ``EventDeliveryError``."""
        ...


class EventBridgeSink:
    """``PutEvents`` on one bus, 10 entries per call; failed entries are retried a few times."""

    def __init__(self, bus_name: str, *, max_attempts: int = MAX_ATTEMPTS, retry_delay: float = RETRY_DELAY_SECONDS):
        self.bus_name = bus_name
        self.max_attempts = max_attempts
        self.retry_delay = retry_delay

    @cached_property
    def client(self) -> EventBridgeClient:
        return new_client("events")

    def put(self, events: Sequence[DomainEvent]) -> None:
        for start in range(0, len(events), MAX_ENTRIES_PER_CALL):
            self._put_batch([self._entry(event) for event in events[start : start + MAX_ENTRIES_PER_CALL]])

    def _put_batch(self, entries: list[PutEventsRequestEntryTypeDef]) -> None:
        codes: list[str] = []
        for attempt in range(self.max_attempts):
            if attempt:
                time.sleep(self.retry_delay * 2 ** (attempt - 1))
            answer = self.client.put_events(Entries=entries)
            results = answer.get("Entries", [])
            failed = [i for i, result in enumerate(results) if result.get("ErrorCode")]
            codes = sorted({str(results[i].get("ErrorCode")) for i in failed})
            entries = [entries[i] for i in failed]
            if not entries:
                return
        raise EventDeliveryError(
            f"{len(entries)} event(s) could not be put on the bus", failed=len(entries), codes=codes
        )

    def _entry(self, event: DomainEvent) -> PutEventsRequestEntryTypeDef:
        return {
            "Source": event.source,
            "DetailType": event.detail_type,
            "Detail": json.dumps(dict(event.detail), separators=(",", ":"), default=str),
            "EventBusName": self.bus_name,
        }


@dataclass
class InMemoryEventSink:
    """The fake for unit tests: keeps every event put, in order."""

    events: list[DomainEvent] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def put(self, events: Sequence[DomainEvent]) -> None:
        with self._lock:
            self.events.extend(events)

    def of_type(self, detail_type: str) -> list[DomainEvent]:
        with self._lock:
            return [event for event in self.events if event.detail_type == detail_type]
