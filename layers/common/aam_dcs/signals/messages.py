"""The queued form of a ``send_signals`` request: one SQS FIFO message per call.

Body: ``{"kind": "send_signals", "request": {...}, "enqueued_at": "ISO-8601", "blob": "..."}``.
``request`` is the validated input with the *resolved* identity (``mid``, ``uuid``, ``region_id``,
``customer_ids``) in place of ``amcv``/``cookies``/``dcs_response``, so the worker never re-reads
cookies; ``mode``, ``dry_run``, ``mint`` and ``return_segments`` are left out (nobody waits for a
queued call's segments). ``blob`` (the AMCV's ``MCAAMB``) rides beside it: it is not an input field.

Message group = the visitor, so one visitor's calls never run in parallel and keep their order:
``mid:<ECID>``, else ``uuid:<AAM UUID>``, else ``cid:<hash>`` of the first declared ID (a raw
customer ID never becomes a group ID, which SQS shows in consoles and metrics).

Deduplication ID = ``event_id`` when given, else a hash of the message content: SQS drops a second
identical message of the same visitor within its 5-minute window (``DeduplicationScope:
messageGroup``). Give each event its own ``event_id`` to send identical signals more often.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from aam_dcs.errors import InvalidRequest
from aam_dcs.ids.models import CustomerId, ResolvedIdentity
from aam_dcs.signals.models import SendSignalsInput
from aam_dcs.validation import invalid_request_from

KIND: Final = "send_signals"
#: Input fields replaced by the resolved identity, or meaningless once queued.
NOT_QUEUED: Final = frozenset(
    {"mode", "dry_run", "mint", "return_segments", "amcv", "cookies", "dcs_response", "mid", "uuid", "region_id"}
)
NO_VISITOR_RULE: Final = "give mid, uuid, amcv, cookies, dcs_response or customer_ids to identify the visitor"


class QueuedSignals(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["send_signals"]
    request: SendSignalsInput
    enqueued_at: str
    blob: str | None = None


@dataclass(frozen=True)
class QueueMessage:
    """What ``SendMessage`` needs: the JSON body, the message group and the deduplication ID."""

    body: str
    group_id: str
    deduplication_id: str


def queued_request(request: SendSignalsInput, resolved: ResolvedIdentity) -> dict[str, Any]:
    """The request as it is queued: validated input, resolved identity, no cookies, no mode."""
    data = request.model_dump(mode="json", exclude=set(NOT_QUEUED), exclude_defaults=True)
    identity = {"mid": resolved.mid, "uuid": resolved.uuid, "region_id": resolved.region_id}
    data.update({key: value for key, value in identity.items() if value is not None})
    if resolved.customer_ids:
        data["customer_ids"] = [c.model_dump(mode="json", exclude_none=True) for c in resolved.customer_ids]
    return data


def build_message(request: SendSignalsInput, resolved: ResolvedIdentity, *, now: float) -> QueueMessage:
    body = queued_body(request, resolved, now=now)
    group = message_group(resolved)
    dedup = request.event_id or content_hash(group, body["request"])
    return QueueMessage(body=json.dumps(body, separators=(",", ":")), group_id=group, deduplication_id=dedup)


def queued_body(request: SendSignalsInput, resolved: ResolvedIdentity, *, now: float) -> dict[str, Any]:
    body: dict[str, Any] = {"kind": KIND, "request": queued_request(request, resolved), "enqueued_at": iso_time(now)}
    if resolved.blob:
        body["blob"] = resolved.blob
    return body


def message_group(resolved: ResolvedIdentity) -> str:
    """The visitor: ``mid:``, ``uuid:`` or ``cid:<hash>``; a call that names nobody is refused."""
    if resolved.mid:
        return f"mid:{resolved.mid}"
    if resolved.uuid:
        return f"uuid:{resolved.uuid}"
    if resolved.customer_ids:
        return f"cid:{declared_id_hash(resolved.customer_ids[0])}"
    raise InvalidRequest("nothing identifies the visitor", field="mid", rule=NO_VISITOR_RULE)


def declared_id_hash(customer: CustomerId) -> str:
    namespace = customer.data_source_id if customer.data_source_id is not None else f"ic:{customer.integration_code}"
    return hashlib.sha256(f"{namespace}\x01{customer.id}".encode()).hexdigest()[:40]


def content_hash(group: str, queued: dict[str, Any]) -> str:
    canonical = json.dumps({"group": group, "request": queued}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()


def parse_message(body: str) -> QueuedSignals:
    """A queued body, validated again (it may come from a job or an old version); bad is ``InvalidRequest``."""
    try:
        return QueuedSignals.model_validate_json(body)
    except ValidationError as exc:
        raise invalid_request_from(exc) from None


def iso_time(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
