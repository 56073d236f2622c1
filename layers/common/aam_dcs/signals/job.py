"""The batch signal job: rows from S3 (JSON Lines or CSV) become one queued message each.

``{"job": "send_signals", "source": {"s3": "s3://bucket/prefix/"}}`` runs the shared planner
(:mod:`aam_dcs.jobs.planner`): the source is read in pages, each good row becomes one SQS FIFO
message on the signal queue (``SendMessageBatch``), the queue worker sends it, and a job that runs
out of time continues from its checkpoint through a ``continue_job`` message on the same queue.
The summary is the design's ``{"job", "read", "queued", "rejected", "errors"}`` plus the planner's
``job_id``, ``skipped``, ``failed``, ``complete``, ``checkpoint`` and ``runs``.

Each row is validated exactly as an asynchronous ``POST /signals``: the input model, the signal
rules, the visitor's identity and the size of the DCS call. A bad row is rejected, counted and
reported with its position, field and rule (never its values); a row for a visitor whose own AMCV
or cookies say opted out is skipped (counted). The message is the one the API would queue
(:mod:`aam_dcs.signals.messages`); its deduplication key is the row's ``event_id``, else a hash of
its content, made unique per job by the planner.

Row formats:

- JSON Lines: each line is a ``send_signals`` input object: identity fields, ``signals``,
  ``trait_ids``, ``consent``, ``event_id``, ``user_agent``, ``referer``.
- CSV with a header. Empty cells are absent. Columns: ``mid``, ``uuid``, ``region_id``, ``amcv``,
  ``cookies``, ``event_id``, ``user_agent``, ``referer``;
  ``signal.<key>``: one column per signal (``signal.c_color``), its cell sent as it stands (text),
  and/or ``signals``: a JSON object (lists and numbers); a key given both ways is rejected;
  ``trait_ids``: comma-separated IDs (``123,456``) or a JSON array;
  ``customer_ids``: a JSON array of declared IDs, or one declared ID as the columns ``customer_id``
  with ``data_source_id`` or ``integration_code`` (and ``auth_state``), as the enrichment job reads;
  ``gdpr`` (``1``/``0``/``true``/``false``) with ``gdpr_consent``; ``dcs_response``: JSON.

``mode``, ``dry_run``, ``mint`` and ``return_segments`` are not row fields: every row is queued.
At plan time the identity is resolved without I/O (the row's IDs, AMCV or cookies); the worker
resolves it again with the profiles table before the call. Give rows an ``event_id`` to make a
second run of the same file within the idempotency window (24 hours) send nothing twice.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Final

from aam_dcs.config import Settings
from aam_dcs.dcs.query import POST_LIMIT_BYTES, check_header_value
from aam_dcs.errors import FeatureDisabled, InvalidRequest
from aam_dcs.ids.models import ResolvedIdentity, parse_identity
from aam_dcs.ids.sources import resolve_identity
from aam_dcs.jobs.planner import JobPlanner, PlannedMessage, RowRejected
from aam_dcs.jobs.publisher import QueuePublisher
from aam_dcs.jobs.sources import JobSourceError, open_source
from aam_dcs.jobs.worker import PermanentFailure
from aam_dcs.signals.messages import content_hash, message_group, queued_body
from aam_dcs.signals.models import SendSignalsInput
from aam_dcs.signals.wire import Params, data_params, event_params, event_request

JOB: Final = "send_signals"
SIGNAL_COLUMN_PREFIX: Final = "signal."
JSON_COLUMNS: Final = frozenset({"signals", "customer_ids", "consent", "dcs_response"})
DECLARED_ID_COLUMNS: Final = ("customer_id", "data_source_id", "integration_code", "auth_state")
NOT_ROW_FIELDS: Final = frozenset({"mode", "dry_run", "mint", "return_segments"})


@dataclass(frozen=True)
class SignalRows:
    """The job's row mapper: a row's queued message, ``None`` to skip it, or a rejection."""

    settings: Settings
    clock: Callable[[], float] = field(default=time.time)

    def __call__(self, row: dict[str, Any]) -> PlannedMessage | None:
        request = parse_identity(row_input(row), SendSignalsInput)
        params = data_params(request)
        now = self.clock()
        resolved = resolve_identity(request, self.settings, now=now)
        if resolved.opted_out:
            return None
        group = message_group(resolved)
        check_call(request, resolved, self.settings, params)
        body = queued_body(request, resolved, now=now)
        dedup_key = request.event_id or content_hash(group, body["request"])
        return PlannedMessage(body=body, group_id=group, dedup_key=dedup_key)


def check_call(request: SendSignalsInput, resolved: ResolvedIdentity, settings: Settings, data: Params) -> None:
    """The rules of the DCS call the worker will make: size, header values, encodable text.

    Building the call percent-encodes every parameter, the largest cost of planning a row. A call of
    ASCII text that would stay within the DCS's size limit even if every character took three bytes
    can break neither the size rule nor the text rule (only lone surrogates fail to encode), so only
    its header values are checked; any other call is built, exactly as the worker will build it.
    """
    params = event_params(request, resolved, settings, data=data)
    if not fits_when_encoded(params, POST_LIMIT_BYTES):
        event_request(request, resolved, settings, data=data)
        return
    check_header_value("user_agent", request.user_agent)
    check_header_value("referer", request.referer)


def fits_when_encoded(params: Params, limit: int) -> bool:
    """True when every key and value is ASCII and ``k=v&...`` is at most ``limit`` bytes fully encoded."""
    size = 0
    for key, value in params:
        if not (key.isascii() and value.isascii()):
            return False
        size += 3 * (len(key) + len(value)) + 2
    return size <= limit


def row_input(row: Mapping[str, Any]) -> dict[str, Any]:
    """A row (a JSON object, or CSV cells as text) as ``send_signals`` input."""
    data: dict[str, Any] = {}
    signals: dict[str, Any] = {}
    for column, value in row.items():
        name = str(column).strip()
        if value is None or value == "":
            continue
        if name in NOT_ROW_FIELDS:
            raise RowRejected(f"{name} is not a row field: every row is queued", field=name)
        if name.startswith(SIGNAL_COLUMN_PREFIX):
            signals[name.removeprefix(SIGNAL_COLUMN_PREFIX)] = value
        else:
            data[name] = _cell(name, value)
    return _with_signals(_with_consent(_with_declared_id(data)), signals)


def _cell(name: str, value: Any) -> Any:
    if not isinstance(value, str):
        return value
    if name in JSON_COLUMNS or (name == "trait_ids" and value.lstrip().startswith("[")):
        return _json_cell(name, value)
    if name == "trait_ids":
        return [part.strip() for part in value.split(",") if part.strip()]
    if name == "gdpr":
        return value.strip().lower() in {"1", "true", "yes"}
    return value


def _json_cell(name: str, value: str) -> Any:
    try:
        return json.loads(value)
    except (ValueError, RecursionError):  # ValueError: bad JSON, or an integer past 4300 digits
        raise RowRejected("must be JSON", field=name) from None


def _with_declared_id(data: dict[str, Any]) -> dict[str, Any]:
    declared: dict[str, Any] = {name: data.pop(name) for name in DECLARED_ID_COLUMNS if name in data}
    if not declared:
        return data
    if "customer_ids" in data:
        raise RowRejected("give customer_ids or the customer_id columns, not both", field="customer_ids")
    if "customer_id" not in declared:
        raise RowRejected("data_source_id or integration_code needs a customer_id column", field="customer_id")
    declared["id"] = declared.pop("customer_id")
    return {**data, "customer_ids": [declared]}


def _with_consent(data: dict[str, Any]) -> dict[str, Any]:
    if "gdpr" not in data and "gdpr_consent" not in data:
        return data
    if "consent" in data:
        raise RowRejected("give consent or the gdpr columns, not both", field="consent")
    consent = {"gdpr": data.pop("gdpr", True), "gdpr_consent": data.pop("gdpr_consent", "")}
    return {**data, "consent": consent}


def _with_signals(data: dict[str, Any], columns: dict[str, Any]) -> dict[str, Any]:
    if not columns:
        return data
    signals = data.get("signals", {})
    if not isinstance(signals, dict):
        raise RowRejected("must be a JSON object", field="signals")
    clash = sorted(set(signals) & set(columns))
    if clash:
        raise RowRejected("a signal given both in signals and as a signal.<key> column", field=f"signals.{clash[0]}")
    return {**data, "signals": {**signals, **columns}}


def signal_planner(settings: Settings) -> JobPlanner:
    """The ``send_signals`` planner; the job needs the signal queue."""
    if not settings.signal_queue_url:
        raise FeatureDisabled("batch signal jobs need the signal queue", setting="SIGNAL_QUEUE_URL")
    return JobPlanner(
        job=JOB,
        map_row=SignalRows(settings),
        publisher=QueuePublisher(settings.signal_queue_url),
        open_source=partial(open_source, profiles_table=settings.profiles_table),
    )


def resume_job(planner: Callable[[], JobPlanner], body: Mapping[str, Any], context: Any) -> None:
    """A ``continue_job`` message: the planner goes on; what can never work is a ``PermanentFailure``."""
    try:
        planner().resume(body, context)
    except InvalidRequest as error:
        raise PermanentFailure("invalid_message", field=error.field, rule=error.rule) from None
    except JobSourceError as error:
        raise PermanentFailure("job_source", **error.details) from None
