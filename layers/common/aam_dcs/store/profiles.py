"""What the bundle remembers per visitor, and the interface every profile store implements.

One table holds three kinds of item, told apart by the sort key: ``identity`` (what earlier calls
learned: MID, UUID, region, blob, opt-out), ``segments`` (the segment cache) and per-minute call
counters (``rate#…``) for the denylist guard. Declared customer IDs are stored only as hashes.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Protocol

from aam_dcs.ids.sources import StoredIdentity

IDENTITY_SK = "identity"
SEGMENTS_SK = "segments"


def mid_key(mid: str) -> str:
    return f"mid#{mid}"


def uuid_key(uuid: str) -> str:
    return f"uuid#{uuid}"


def customer_key(namespace: int | str, customer_id: str) -> str:
    """Declared IDs are keyed by a hash: the table never holds a raw CRM ID."""
    digest = hashlib.sha256(f"{namespace}\x01{customer_id}".encode()).hexdigest()[:40]
    return f"cid#{namespace}#{digest}"


@dataclass(frozen=True)
class SegmentRecord:
    segments: tuple[str, ...]
    segment_source: str
    fetched_at: float
    uuid: str | None = None
    region_id: int | None = None
    opted_out: bool = False
    extra: dict[str, str] = field(default_factory=dict)

    def age_seconds(self, now: float) -> float:
        return max(0.0, now - self.fetched_at)


class ProfileStore(Protocol):
    def get_identity(self, keys: list[str]) -> StoredIdentity | None:
        """The first identity record found under any of the keys, in order."""
        ...

    def put_identity(self, keys: list[str], record: StoredIdentity, ttl_seconds: int) -> None:
        """Remember the record under every key, expiring after ``ttl_seconds``."""
        ...

    def get_segments(self, key: str) -> SegmentRecord | None: ...

    def put_segments(self, key: str, record: SegmentRecord, ttl_seconds: int) -> SegmentRecord | None:
        """Store the record and return the one it replaced (for change detection)."""
        ...

    def count_call(self, key: str, window: int, ttl_seconds: int) -> int:
        """Add one call to the user's counter for ``window`` and return the new count."""
        ...


def configured_store(table_name: str | None) -> ProfileStore | None:
    """The DynamoDB store when ``PROFILES_TABLE`` is set; no table means no memory between calls."""
    if not table_name:
        return None
    from aam_dcs.store.dynamodb import DynamoDbProfileStore  # noqa: PLC0415 - avoids a cycle, stays lazy

    return DynamoDbProfileStore(table_name)
