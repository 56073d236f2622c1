"""The batch signal job: rows from S3 (JSON Lines or CSV) become one queued message each.

Each row is validated exactly as an asynchronous ``POST /signals`` would be (input model, signal
rules, the visitor's identity, the size of the DCS call): a bad row is rejected, counted and
reported with its field and rule, never silently dropped; a good row becomes one SQS FIFO message
(:mod:`aam_dcs.signals.messages`) and the queue worker sends it.

Row formats:

- JSON Lines: each line is a ``send_signals`` input object (identity fields, ``signals``,
  ``trait_ids``, ``consent``, ``event_id``).
- CSV with a header. Empty cells are absent. Columns:
  ``mid``, ``uuid``, ``region_id``, ``amcv``, ``event_id``;
  ``signal.<key>`` one column per signal (``signal.c_color``), and/or ``signals``: a JSON object;
  a value of a ``signal.<key>`` column is sent as it stands (a string);
  ``trait_ids``: comma-separated IDs (``123,456``) or a JSON array;
  ``customer_ids``: a JSON array of declared IDs (``[{"data_source_id": 123, "id": "abc"}]``);
  ``gdpr`` (``1``/``0``/``true``/``false``) with ``gdpr_consent``.

``mode`` and ``dry_run`` are not row fields (every row is queued). A row without ``event_id``
gets one derived from the job's source and the row's position, so a resumed or repeated run
within the idempotency window does not send a row twice.

At plan time the identity is resolved without I/O (the row's IDs, its AMCV or cookies): the
queue worker resolves it again with the profiles table before the call.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from aam_dcs.config import Settings, get_settings
from aam_dcs.errors import InvalidRequest, NotImplementedYet
from aam_dcs.ids.models import parse_identity
from aam_dcs.ids.sources import resolve_identity
from aam_dcs.signals.messages import QueueMessage, build_message
from aam_dcs.signals.models import SendSignalsInput
from aam_dcs.signals.wire import data_params, event_request

SIGNAL_COLUMN_PREFIX: Final = "signal."
JSON_COLUMNS: Final = frozenset({"signals", "customer_ids", "consent", "dcs_response"})
NOT_ROW_FIELDS: Final = frozenset({"mode", "dry_run", "mint"})
OPTED_OUT_RULE: Final = "the visitor opted out: nothing may be sent"


def row_input(row: Mapping[str, Any]) -> dict[str, Any]:
    """A row (JSON object, or CSV cells as strings) as ``send_signals`` input; bad shapes raise."""
    if not isinstance(row, Mapping):
        raise InvalidRequest("a row must be a JSON object", field="row", rule="JSON object or CSV record")
    data: dict[str, Any] = {}
    signals: dict[str, Any] = {}
    for column, value in row.items():
        if value is None or value == "":
            continue
        name = str(column).strip()
        if name in NOT_ROW_FIELDS:
            raise InvalidRequest(f"{name} is not a row field", field=name, rule="every row is queued")
        if name.startswith(SIGNAL_COLUMN_PREFIX):
            signals[name.removeprefix(SIGNAL_COLUMN_PREFIX)] = value
        else:
            data[name] = _cell(name, value)
    return _merge_signals(data, signals)


def _cell(name: str, value: Any) -> Any:
    if not isinstance(value, str):
        return value
    if name in JSON_COLUMNS:
        return _json_cell(name, value)
    if name == "trait_ids":
        return _json_cell(name, value) if value.lstrip().startswith("[") else _id_list(value)
    if name == "gdpr":
        return value.strip().lower() in {"1", "true", "yes"}
    return value


def _json_cell(name: str, value: str) -> Any:
    try:
        return json.loads(value)
    except (json.JSONDecodeError, RecursionError):
        raise InvalidRequest(f"{name} is not valid JSON", field=name, rule="a JSON value") from None


def _id_list(value: str) -> list[Any]:
    parts = [part.strip() for part in value.split(",") if part.strip()]
    return [int(part) if part.isdigit() else part for part in parts]


def _merge_signals(data: dict[str, Any], columns: dict[str, Any]) -> dict[str, Any]:
    if "gdpr" in data or "gdpr_consent" in data:
        data["consent"] = {"gdpr": data.pop("gdpr", True), "gdpr_consent": data.pop("gdpr_consent", "")}
    if not columns:
        return data
    signals = data.get("signals", {})
    if not isinstance(signals, dict):
        raise InvalidRequest("signals must be a JSON object", field="signals", rule="JSON object")
    clash = sorted(set(signals) & set(columns))
    if clash:
        raise InvalidRequest(
            "a signal is given twice", field=f"signals.{clash[0][:40]}", rule="signals column or signal.<key> column"
        )
    return {**data, "signals": {**signals, **columns}}


def row_message(row: Mapping[str, Any], settings: Settings, *, now: float, row_key: str | None = None) -> QueueMessage:
    """The queued message of a row; ``row_key`` (source and position) derives a missing ``event_id``."""
    data = row_input(row)
    if row_key is not None and "event_id" not in data:
        data["event_id"] = derived_event_id(row_key)
    request = parse_identity(data, SendSignalsInput)
    params = data_params(request)
    resolved = resolve_identity(request, settings, now=now)
    if resolved.opted_out:
        raise InvalidRequest("the visitor opted out", field="amcv" if request.amcv else "cookies", rule=OPTED_OUT_RULE)
    event_request(request, resolved, settings, data=params)
    return build_message(request, resolved, now=now)


def derived_event_id(row_key: str) -> str:
    return "job-" + hashlib.sha256(row_key.encode("utf-8", "surrogatepass")).hexdigest()[:40]


@dataclass
class SignalJob:
    """Plans a batch job: reads the source in pages and queues one message per good row."""

    settings: Settings

    def run(self, event: Mapping[str, Any]) -> dict[str, Any]:
        raise NotImplementedYet("batch signal jobs are not available yet")


def default_job() -> SignalJob:
    return SignalJob(get_settings())
