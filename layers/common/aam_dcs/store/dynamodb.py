"""The profiles table on DynamoDB. boto3 is imported on first use, not at import time."""

from __future__ import annotations

import threading
import time
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from aam_dcs.aws import new_resource
from aam_dcs.ids.sources import StoredIdentity
from aam_dcs.store.profiles import IDENTITY_SK, SEGMENTS_SK, SegmentRecord

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.service_resource import Table


class DynamoDbProfileStore:
    def __init__(self, table_name: str) -> None:
        self.table_name = table_name
        self._local = threading.local()

    @property
    def table(self) -> Table:
        # boto3 resources are not thread-safe and the queue workers run message groups in threads:
        # one Table per thread, each built once.
        table: Table | None = getattr(self._local, "table", None)
        if table is None:
            table = new_resource("dynamodb").Table(self.table_name)
            self._local.table = table
        return table

    def get_identity(self, keys: list[str]) -> StoredIdentity | None:
        for key in keys:
            item = self.table.get_item(Key={"pk": key, "sk": IDENTITY_SK}).get("Item")
            if item and not _expired(item):
                return _identity_from_item(item)
        return None

    def put_identity(self, keys: list[str], record: StoredIdentity, ttl_seconds: int) -> None:
        now = int(time.time())
        with self.table.batch_writer(overwrite_by_pkeys=["pk", "sk"]) as batch:
            for key in dict.fromkeys(keys):
                batch.put_item(Item=_identity_item(key, record, now, ttl_seconds))

    def get_segments(self, key: str) -> SegmentRecord | None:
        item = self.table.get_item(Key={"pk": key, "sk": SEGMENTS_SK}).get("Item")
        return _segments_from_item(item) if item and not _expired(item) else None

    def put_segments(self, key: str, record: SegmentRecord, ttl_seconds: int) -> SegmentRecord | None:
        item = _segments_item(key, record, int(time.time()), ttl_seconds)
        old = self.table.put_item(Item=item, ReturnValues="ALL_OLD").get("Attributes")
        return _segments_from_item(old) if old else None

    def count_call(self, key: str, window: int, ttl_seconds: int) -> int:
        answer = self.table.update_item(
            Key={"pk": f"rate#{key}", "sk": str(window)},
            UpdateExpression="ADD calls :one SET expires_at = if_not_exists(expires_at, :expires)",
            ExpressionAttributeValues={":one": 1, ":expires": int(time.time()) + ttl_seconds},
            ReturnValues="UPDATED_NEW",
        )
        return int(answer["Attributes"]["calls"])  # type: ignore[arg-type]


def _expired(item: dict[str, Any]) -> bool:
    # DynamoDB deletes expired items lazily (up to days later): expiry is checked on read too.
    expires = item.get("expires_at")
    return expires is not None and int(expires) <= time.time()


def _identity_item(key: str, record: StoredIdentity, now: int, ttl_seconds: int) -> dict[str, Any]:
    item: dict[str, Any] = {
        "pk": key,
        "sk": IDENTITY_SK,
        "opted_out": record.opted_out,
        "updated_at": now,
        "expires_at": now + ttl_seconds,
    }
    optional = {
        "mid": record.mid,
        "uuid": record.uuid,
        "region_id": record.region_id,
        "blob": record.blob,
        "region_source": record.region_source,
    }
    item.update({name: value for name, value in optional.items() if value is not None})
    return item


def _identity_from_item(item: dict[str, Any]) -> StoredIdentity:
    region = item.get("region_id")
    return StoredIdentity(
        mid=item.get("mid"),
        uuid=item.get("uuid"),
        region_id=int(region) if region is not None else None,
        blob=item.get("blob"),
        opted_out=bool(item.get("opted_out", False)),
        region_source=item.get("region_source"),
    )


def _segments_item(key: str, record: SegmentRecord, now: int, ttl_seconds: int) -> dict[str, Any]:
    item: dict[str, Any] = {
        "pk": key,
        "sk": SEGMENTS_SK,
        "segments": list(record.segments),
        "segment_source": record.segment_source,
        "fetched_at": Decimal(str(round(record.fetched_at, 3))),
        "opted_out": record.opted_out,
        "updated_at": now,
        "expires_at": now + ttl_seconds,
    }
    if record.uuid is not None:
        item["uuid"] = record.uuid
    if record.region_id is not None:
        item["region_id"] = record.region_id
    if record.extra:
        item["extra"] = dict(record.extra)
    return item


def _segments_from_item(item: dict[str, Any]) -> SegmentRecord:
    region = item.get("region_id")
    return SegmentRecord(
        segments=tuple(str(s) for s in item.get("segments", [])),
        segment_source=str(item.get("segment_source", "stuff")),
        fetched_at=float(item.get("fetched_at", 0)),
        uuid=item.get("uuid"),
        region_id=int(region) if region is not None else None,
        opted_out=bool(item.get("opted_out", False)),
        extra={str(k): str(v) for k, v in (item.get("extra") or {}).items()},
    )
