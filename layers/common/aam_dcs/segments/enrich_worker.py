"""The enrichment queue's worker: one message per customer, or a job's continuation.

``EnrichmentWorker.process(event, context)`` works an SQS FIFO batch through the shared FIFO worker
(:func:`aam_dcs.jobs.retries.process_with_backoff`); ``handle(record, context)`` does one message:

- ``{"kind": "continue_job", ...}``: the planner goes on with the job from its checkpoint;
- ``{"kind": "enrich_segments", "request": {...}}``: the customer is enriched
  (:mod:`aam_dcs.segments.enrich`).

Failures that retrying cannot fix raise ``PermanentFailure`` (dead-lettered with the reason):
``invalid_message`` (not JSON, unknown kind, bad fields: the field and rule ride along),
``opted_out``, ``dcs_rejected`` (the DCS refused or discarded the call: codes and ``tid``),
``job_source`` (a continuation whose source vanished or may not be read).
Anything else (a DCS outage, a throttled table, an event bus failure, missing settings) is retried:
the message, and the later messages of its group, come back after a backoff
(:mod:`aam_dcs.jobs.retries`), or after the wait the DCS asked for.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from aam_dcs.config import Settings, get_settings
from aam_dcs.errors import DcsRejected, FeatureDisabled, InvalidRequest
from aam_dcs.jobs.deadletter import SqsDeadLetters
from aam_dcs.jobs.events import EventBridgeSink, EventSink
from aam_dcs.jobs.planner import JobPlanner, is_continuation
from aam_dcs.jobs.retries import Backoff, process_with_backoff, retry_delay
from aam_dcs.jobs.sources import JobSourceError
from aam_dcs.jobs.visibility import SqsVisibility, VisibilityQueue
from aam_dcs.jobs.worker import DeadLetters, PermanentFailure, message_body
from aam_dcs.observability import logger
from aam_dcs.segments.enrich import SegmentEnricher, VisitorOptedOut
from aam_dcs.segments.enrich_job import enrichment_planner, parse_enrich_message
from aam_dcs.segments.lookup import SegmentLookup, default_lookup


@dataclass
class EnrichmentWorker:
    enricher: SegmentEnricher
    planner: Callable[[], JobPlanner]
    queue: VisibilityQueue | None = None
    dead_letters: DeadLetters | None = None
    backoff: Backoff = field(default_factory=Backoff)
    #: the queue's maxReceiveCount: at a message's last receive, the DLQ gets it with a reason
    max_receives: int | None = None

    def process(self, event: Mapping[str, Any], context: Any) -> dict[str, list[dict[str, str]]]:
        """An SQS FIFO batch; the answer is Lambda's partial batch response."""
        return process_with_backoff(
            event,
            context,
            lambda record, delays: self._handle_or_delay(record, context, delays),
            queue=self.queue,
            backoff=self.backoff,
            dead_letters=self.dead_letters,
            max_receives=self.max_receives,
        )

    def _handle_or_delay(self, record: SQSRecord, context: Any, delays: dict[str, int]) -> None:
        try:
            self.handle(record, context)
        except PermanentFailure:
            raise
        except Exception as error:
            delays[record.message_id] = delay = retry_delay(error, record, self.backoff)
            logger.warning(
                "enrichment message failed: retried after the delay, dead-lettered if this was its last receive",
                extra={"error": type(error).__name__, "delay_seconds": delay, "message_id": record.message_id},
            )
            raise

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
    """The container's worker: the shared lookup, its table, the configured bus (none: no events),
    retry delays on the enrichment queue, dead letters on its DLQ."""
    settings = settings or get_settings()
    lookup = lookup or default_lookup()
    if lookup.store is None:
        raise FeatureDisabled("enrichment needs the profiles table", setting="PROFILES_TABLE")
    events: EventSink | None = EventBridgeSink(settings.event_bus_name) if settings.event_bus_name else None
    enricher = SegmentEnricher(lookup=lookup, store=lookup.store, events=events)
    return EnrichmentWorker(
        enricher=enricher,
        planner=lambda: enrichment_planner(settings),
        queue=SqsVisibility(settings.enrich_queue_url) if settings.enrich_queue_url else None,
        dead_letters=SqsDeadLetters(settings.enrich_dlq_url) if settings.enrich_dlq_url else None,
        max_receives=settings.max_receives,
    )
