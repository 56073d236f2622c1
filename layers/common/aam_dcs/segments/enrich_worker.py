"""The enrichment queue's worker: one message per customer, or a job's continuation.

``EnrichmentWorker.handle(record, context)`` is the per-record handler given to
:func:`aam_dcs.jobs.worker.process_fifo_batch`:

- ``{"kind": "continue_job", ...}``: the planner goes on with the job from its checkpoint;
- ``{"kind": "enrich_segments", "request": {...}}``: the customer is enriched
  (:mod:`aam_dcs.segments.enrich`).

Failures that retrying cannot fix raise ``PermanentFailure`` (dead-lettered with the reason):
``invalid_message`` (not JSON, unknown kind, bad fields: the field and rule ride along),
``opted_out``, ``dcs_rejected`` (the DCS refused or discarded the call: codes and ``tid``),
``job_source`` (a continuation whose source vanished or may not be read).
Anything else (a DCS outage, a throttled table, an event bus failure, missing settings) raises
as is, and SQS delivers the message again.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from aam_dcs.config import Settings, get_settings
from aam_dcs.errors import DcsRejected, FeatureDisabled, InvalidRequest
from aam_dcs.jobs.events import EventBridgeSink, EventSink
from aam_dcs.jobs.planner import JobPlanner, is_continuation
from aam_dcs.jobs.sources import JobSourceError
from aam_dcs.jobs.worker import PermanentFailure, message_body
from aam_dcs.segments.enrich import SegmentEnricher, VisitorOptedOut
from aam_dcs.segments.enrich_job import enrichment_planner, parse_enrich_message
from aam_dcs.segments.lookup import SegmentLookup, default_lookup


@dataclass
class EnrichmentWorker:
    enricher: SegmentEnricher
    planner: Callable[[], JobPlanner]

    def handle(self, record: SQSRecord, context: Any) -> None:
        body = message_body(record.body)
        if is_continuation(body):
            self._continue_job(body, context)
        else:
            self._enrich(body)

    def _continue_job(self, body: Mapping[str, Any], context: Any) -> None:
        try:
            self.planner().resume(body, context)
        except InvalidRequest as error:
            raise PermanentFailure("invalid_message", field=error.field, rule=error.rule) from None
        except JobSourceError as error:
            raise PermanentFailure("job_source", **error.details) from None

    def _enrich(self, body: Mapping[str, Any]) -> None:
        try:
            self.enricher.enrich(parse_enrich_message(body))
        except InvalidRequest as error:
            raise PermanentFailure("invalid_message", field=error.field, rule=error.rule) from None
        except VisitorOptedOut:
            raise PermanentFailure("opted_out") from None
        except DcsRejected as error:
            raise PermanentFailure("dcs_rejected", codes=error.codes, tid=error.tid) from None


def default_worker(settings: Settings | None = None, lookup: SegmentLookup | None = None) -> EnrichmentWorker:
    """The container's worker: the shared lookup, its table, the configured bus (none: no events)."""
    settings = settings or get_settings()
    lookup = lookup or default_lookup()
    if lookup.store is None:
        raise FeatureDisabled("enrichment needs the profiles table", setting="PROFILES_TABLE")
    events: EventSink | None = EventBridgeSink(settings.event_bus_name) if settings.event_bus_name else None
    enricher = SegmentEnricher(lookup=lookup, store=lookup.store, events=events)
    return EnrichmentWorker(enricher=enricher, planner=lambda: enrichment_planner(settings))
