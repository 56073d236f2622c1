"""An in-memory profile store with the semantics of the DynamoDB one, for unit tests."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from aam_dcs.ids.sources import StoredIdentity
from aam_dcs.store.profiles import SegmentRecord


class InMemoryProfileStore:
    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._identities: dict[str, tuple[StoredIdentity, float]] = {}
        self._segments: dict[str, tuple[SegmentRecord, float]] = {}
        self._counters: dict[tuple[str, int], int] = {}

    def get_identity(self, keys: list[str]) -> StoredIdentity | None:
        with self._lock:
            for key in keys:
                found = self._identities.get(key)
                if found and found[1] > self._clock():
                    return found[0]
        return None

    def put_identity(self, keys: list[str], record: StoredIdentity, ttl_seconds: int) -> None:
        expires = self._clock() + ttl_seconds
        with self._lock:
            for key in keys:
                self._identities[key] = (record, expires)

    def get_segments(self, key: str) -> SegmentRecord | None:
        with self._lock:
            found = self._segments.get(key)
        return found[0] if found and found[1] > self._clock() else None

    def put_segments(self, key: str, record: SegmentRecord, ttl_seconds: int) -> SegmentRecord | None:
        with self._lock:
            previous = self._segments.get(key)
            self._segments[key] = (record, self._clock() + ttl_seconds)
        return previous[0] if previous else None

    def count_call(self, key: str, window: int, ttl_seconds: int) -> int:
        with self._lock:
            count = self._counters.get((key, window), 0) + 1
            self._counters[(key, window)] = count
        return count
