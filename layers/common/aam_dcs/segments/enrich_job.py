"""The ``enrich_segments`` job: source rows become one enrichment message per customer.

Message body (the enrichment queue, FIFO)::

    {"kind": "enrich_segments", "request": {"mid": "...", "uuid": "...", "region_id": 9,
                                            "customer_ids": [...]}}

``request`` is lookup input (identity fields; ``refresh`` is implied). Message group = the
customer: ``mid:<ECID>``, else ``uuid:<AAM UUID>``, else ``cid:<hash>`` of the first declared ID
(a raw customer ID never becomes a group ID). Deduplication: one message per customer and job.

Rows, by source:

- S3 JSON Lines: each line is an object with identity fields: ``mid``, ``uuid``, ``region_id``,
  ``amcv``, ``cookies``, ``dcs_response``, ``customer_ids``.
- S3 CSV (header row; empty cells are absent): the same columns, ``customer_ids`` as a JSON array,
  or one declared ID as flat columns ``customer_id`` with ``data_source_id`` or
  ``integration_code`` (and optionally ``auth_state``).
- DynamoDB: another table's items are rows as above (non-identity attributes refused, as any
  unknown field). Items of the profiles table (``{"table": "profiles"}``; told apart by their
  ``pk`` prefixes ``mid#``, ``uuid#``, ``cid#``, ``rate#``, ``enriched#`` and an ``sk``) are read for
  what they know: each visitor once, from its ``identity`` item under ``mid#`` (or ``uuid#`` when no
  ECID is known); its other items (the visitor's other keys, segment caches, counters) and
  opted-out visitors are counted as ``skipped``.

A row that nothing identifies, with an unknown field or a value that breaks a rule, is rejected
(field and rule reported, never the value). A row whose own AMCV says opted out is skipped.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict

from aam_dcs.config import Settings
from aam_dcs.errors import FeatureDisabled, InvalidRequest
from aam_dcs.ids.models import IdentityInput, ResolvedIdentity, parse_identity
from aam_dcs.ids.resolver import identity_keys
from aam_dcs.ids.sources import resolve_identity
from aam_dcs.jobs.planner import JobPlanner, PlannedMessage, RowRejected
from aam_dcs.jobs.publisher import QueuePublisher
from aam_dcs.jobs.sources import open_source
from aam_dcs.store.profiles import IDENTITY_SK

JOB: Final = "enrich_segments"
KIND: Final = "enrich_segments"
DECLARED_ID_COLUMNS: Final = ("customer_id", "data_source_id", "integration_code", "auth_state")
JSON_COLUMNS: Final = frozenset({"customer_ids", "dcs_response"})
NO_IDENTITY_RULE: Final = "give mid, uuid, amcv, cookies, dcs_response or customer_ids to identify the customer"
PROFILE_KEY_PREFIXES: Final = ("mid#", "uuid#", "cid#", "rate#", "enriched#")


class EnrichRequest(IdentityInput):
    """What an enrichment message asks: the customer's identity (``mint`` is not a row field)."""

    model_config = ConfigDict(extra="forbid")


class EnrichMessage(BaseModel):
    """The body of an enrichment message; unknown envelope fields are ignored (forward compatible)."""

    model_config = ConfigDict(extra="ignore")

    kind: Literal["enrich_segments"]
    request: dict[str, Any]


@dataclass(frozen=True)
class EnrichmentRows:
    """The job's row mapper: a row's enrichment message, ``None`` to skip it, or a rejection."""

    settings: Settings

    def __call__(self, row: dict[str, Any]) -> PlannedMessage | None:
        if is_profile_item(row):
            return self._profile_item(row)
        request = parse_identity(row_input(row), EnrichRequest)
        if request.mint:
            raise RowRejected("mint is not a row field: an enrichment never mints IDs", field="mint")
        resolved = resolve_identity(request, self.settings)
        if resolved.opted_out:
            return None
        return enrich_message(request, resolved)

    def _profile_item(self, item: Mapping[str, Any]) -> PlannedMessage | None:
        """A visitor's identity record, once per visitor; every other item is skipped."""
        mid, uuid = item.get("mid"), item.get("uuid")
        primary = f"mid#{mid}" if mid else f"uuid#{uuid}" if uuid else None
        if item.get("sk") != IDENTITY_SK or item.get("pk") != primary or item.get("opted_out"):
            return None
        row = {"mid": mid, "uuid": uuid, "region_id": item.get("region_id")}
        request = parse_identity({k: v for k, v in row.items() if v is not None}, EnrichRequest)
        return enrich_message(request, resolve_identity(request, self.settings))


def is_profile_item(row: Mapping[str, Any]) -> bool:
    """An item of the profiles table: ``pk``/``sk`` keys, ``pk`` with one of the table's prefixes."""
    return "sk" in row and str(row.get("pk", "")).startswith(PROFILE_KEY_PREFIXES)


def row_input(row: Mapping[str, Any]) -> dict[str, Any]:
    """A row as enrichment input: empty cells dropped, JSON cells parsed, flat declared-ID columns joined."""
    data = {str(name).strip(): value for name, value in row.items() if value is not None and value != ""}
    for name in JSON_COLUMNS & data.keys():
        data[name] = _json_cell(name, data[name])
    declared: dict[str, Any] = {name: data.pop(name) for name in DECLARED_ID_COLUMNS if name in data}
    if declared:
        if "customer_ids" in data:
            raise RowRejected("give customer_ids or the customer_id columns, not both", field="customer_ids")
        if "customer_id" not in declared:
            raise RowRejected("data_source_id or integration_code needs a customer_id column", field="customer_id")
        declared["id"] = declared.pop("customer_id")
        data["customer_ids"] = [declared]
    return data


def _json_cell(name: str, value: Any) -> Any:
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except (ValueError, RecursionError):  # ValueError: bad JSON, or an integer past 4300 digits
        raise RowRejected("must be JSON", field=name) from None


def enrich_message(request: EnrichRequest, resolved: ResolvedIdentity) -> PlannedMessage:
    group = message_group(resolved)
    body = {"kind": KIND, "request": request.model_dump(mode="json", exclude_defaults=True)}
    return PlannedMessage(body=body, group_id=group, dedup_key=group)


def message_group(resolved: ResolvedIdentity) -> str:
    """``mid:<ECID>``, ``uuid:<AAM UUID>`` or ``cid:<hash>``; a row that names nobody is rejected."""
    if resolved.mid:
        return f"mid:{resolved.mid}"
    if resolved.uuid:
        return f"uuid:{resolved.uuid}"
    declared = [key for key in identity_keys(resolved) if key.startswith("cid#")]
    if declared:
        return f"cid:{declared[0].rsplit('#', 1)[1]}"
    raise RowRejected(NO_IDENTITY_RULE, field="identity")


def parse_enrich_message(body: Mapping[str, Any]) -> IdentityInput:
    """The lookup input of a queued message; a malformed one is ``InvalidRequest``."""
    try:
        message = EnrichMessage.model_validate(body)
    except ValueError:
        raise InvalidRequest(
            "not an enrichment message", field="body", rule='{"kind": "enrich_segments", "request": {...}}'
        ) from None
    return parse_identity(message.request, EnrichRequest)


def enrichment_planner(settings: Settings) -> JobPlanner:
    """The ``enrich_segments`` planner: needs the enrichment queue and the profiles table."""
    if not settings.enrich_queue_url:
        raise FeatureDisabled("the enrichment queue is not configured", setting="ENRICH_QUEUE_URL")
    if not settings.profiles_table:
        raise FeatureDisabled("enrichment needs the profiles table", setting="PROFILES_TABLE")
    return JobPlanner(
        job=JOB,
        map_row=EnrichmentRows(settings),
        publisher=QueuePublisher(settings.enrich_queue_url),
        open_source=partial(open_source, profiles_table=settings.profiles_table),
    )
