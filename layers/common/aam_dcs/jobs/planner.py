"""The generic batch job planner: source rows in, one queued message per row out, resumable.

A job is ``{"job": "<name>", "source": {...}}`` (sources: :mod:`aam_dcs.jobs.sources`), with an
optional ``job_id`` (default: the job name and the Lambda request ID, so a retried invocation
re-sends the same deduplication IDs). A job-specific planner is a :class:`JobPlanner` given:

- ``job``: the job name it serves (``enrich_segments``, ``send_signals``);
- ``map_row(row) -> PlannedMessage | None``: the row's queue message. Raise ``InvalidRequest`` (or
  :class:`RowRejected`) for a bad row: it is counted as ``rejected`` and reported in ``errors``
  with its position and the field and rule it broke, never its values (rows hold customer IDs).
  Return ``None`` for a row that is not for this job (``skipped``, counted);
- ``publisher``: the queue (:mod:`aam_dcs.jobs.publisher`);
- ``open_source(spec) -> JobSource``.

The planner reads the source a page at a time, maps and publishes each page, and checks the
Lambda's remaining time between pages. Below ``safety_margin_ms`` it stops and puts the rest of
the job on the same queue as one continuation message::

    {"kind": "continue_job", "job": {...the job input, with job_id...},
     "checkpoint": {...the source cursor...}, "totals": {...counts so far...}, "run": 2}

in message group ``job#<job_id>``. The queue's worker hands it to :meth:`JobPlanner.resume`, which
goes on from the checkpoint: a source of any size finishes without the 15-minute limit and
without permission to invoke itself. Every run does at least one page, so a job always advances.

Summary (what a run answers; the last run of a continued job logs it as "job finished"): ``job``,
``read``, ``queued``, ``rejected``, ``errors`` (design contract) plus ``job_id``, ``skipped``,
``failed`` (rows the queue refused after retries, also in ``errors``), ``complete``, ``checkpoint``
(where a continuation resumes; null when complete), ``runs`` and ``errors_dropped`` (errors past the
first 100 are counted, not listed). The counts cover the whole job so far, across continuations.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import islice
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from aam_dcs.errors import InvalidRequest
from aam_dcs.jobs.publisher import MessagePublisher, PublishFailure, QueueMessage
from aam_dcs.jobs.sources import Cursor, JobSource, SourceRow, SourceSpec
from aam_dcs.observability import logger, metrics
from aam_dcs.validation import invalid_request_from, parse_model

CONTINUE_KIND: Final = "continue_job"
DEFAULT_SAFETY_MARGIN_MS: Final = 30_000
DEFAULT_PAGE_SIZE: Final = 100
MAX_ERRORS: Final = 100
JOB_ID_PATTERN: Final = r"^[A-Za-z0-9_.:-]{1,80}$"
#: One encoder for every row: ``json.dumps`` with options builds a new one per call.
COMPACT_JSON: Final = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


class JobInput(BaseModel):
    """A job as scheduled or invoked directly."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    job: str
    source: SourceSpec
    job_id: str | None = Field(default=None, pattern=JOB_ID_PATTERN)


class RowRejected(Exception):
    """A row this job cannot use; ``field`` and ``rule`` say why (never the row's values)."""

    def __init__(self, rule: str, *, field: str = "row") -> None:
        super().__init__(rule)
        self.field = field
        self.rule = rule


@dataclass(frozen=True)
class PlannedMessage:
    """A row's queue message: the body, its message group (the user) and a key unique in the job."""

    body: Mapping[str, Any]
    group_id: str
    dedup_key: str


RowMapper = Callable[[dict[str, Any]], PlannedMessage | None]
SourceOpener = Callable[[SourceSpec], JobSource]


@dataclass
class JobTotals:
    read: int = 0
    queued: int = 0
    rejected: int = 0
    skipped: int = 0
    failed: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)
    errors_dropped: int = 0

    def add_error(self, position: Cursor, reason: str, field_name: str | None = None) -> None:
        if len(self.errors) >= MAX_ERRORS:
            self.errors_dropped += 1
            return
        entry: dict[str, Any] = {"position": position, "reason": reason}
        if field_name:
            entry["field"] = field_name
        self.errors.append(entry)

    def as_dict(self) -> dict[str, Any]:
        return {
            "read": self.read,
            "queued": self.queued,
            "rejected": self.rejected,
            "skipped": self.skipped,
            "failed": self.failed,
            "errors": list(self.errors),
            "errors_dropped": self.errors_dropped,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> JobTotals:
        counts = {name: int(data.get(name, 0)) for name in ("read", "queued", "rejected", "skipped", "failed")}
        return cls(**counts, errors=list(data.get("errors", [])), errors_dropped=int(data.get("errors_dropped", 0)))


class ContinueJob(BaseModel):
    """The continuation message a planner leaves on its queue when it runs out of time."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["continue_job"]
    job: JobInput
    checkpoint: Cursor
    totals: dict[str, Any] = Field(default_factory=dict)
    run: int = Field(default=2, ge=2)


def is_continuation(body: Mapping[str, Any]) -> bool:
    return body.get("kind") == CONTINUE_KIND


@dataclass
class JobPlanner:
    job: str
    map_row: RowMapper
    publisher: MessagePublisher
    open_source: SourceOpener
    safety_margin_ms: int = DEFAULT_SAFETY_MARGIN_MS
    page_size: int = DEFAULT_PAGE_SIZE

    def plan(self, event: Mapping[str, Any], context: Any) -> dict[str, Any]:
        """Start a job from its input (scheduler or direct invocation); bad input is ``InvalidRequest``."""
        job = parse_model(JobInput, event)
        if job.job != self.job:
            raise InvalidRequest(f"unknown job {job.job!r}", field="job", rule=f"this function runs {self.job!r}")
        if job.job_id is None:
            job = job.model_copy(update={"job_id": default_job_id(job.job, context)})
        logger.info("job started", extra={"job": job.job, "job_id": job.job_id, "source_kind": source_kind(job)})
        return self._run(job, cursor=None, totals=JobTotals(), run=1, context=context)

    def resume(self, message: Mapping[str, Any], context: Any) -> dict[str, Any]:
        """Go on with a job from a continuation message (the queue worker calls this)."""
        try:
            continuation = ContinueJob.model_validate(message)
        except ValidationError as error:
            raise invalid_request_from(error) from None
        if continuation.job.job != self.job:
            raise InvalidRequest("a continuation of another job", field="job", rule=f"this queue runs {self.job!r}")
        try:
            totals = JobTotals.from_dict(continuation.totals)
        except (TypeError, ValueError):
            raise InvalidRequest("job totals must be counts", field="totals", rule="integers") from None
        return self._run(continuation.job, continuation.checkpoint, totals, continuation.run, context)

    def _run(self, job: JobInput, cursor: Cursor | None, totals: JobTotals, run: int, context: Any) -> dict[str, Any]:
        rows = self.open_source(job.source).rows(cursor)
        for page, more in pages(rows, self.page_size):
            self._plan_page(str(job.job_id), page, totals)
            if more and out_of_time(context, self.safety_margin_ms):
                return self._continue_later(job, page[-1].cursor, totals, run)
        return self._finish(job, totals, run)

    def _plan_page(self, job_id: str, page: Sequence[SourceRow], totals: JobTotals) -> None:
        planned: list[tuple[SourceRow, QueueMessage]] = []
        for row in page:
            totals.read += 1
            message = self._message_for(job_id, row, totals)
            if message is not None:
                planned.append((row, message))
        failures = self.publisher.publish([message for _, message in planned]) if planned else []
        self._count_published(planned, failures, totals)
        count("JobRowsRead", len(page))

    def _message_for(self, job_id: str, row: SourceRow, totals: JobTotals) -> QueueMessage | None:
        if row.data is None:
            self._reject(row, totals, row.problem or "unreadable row", None)
            return None
        try:
            planned = self.map_row(row.data)
        except InvalidRequest as error:
            self._reject(row, totals, error.rule or error.message, error.field)
            return None
        except RowRejected as error:
            self._reject(row, totals, error.rule, error.field)
            return None
        if planned is None:
            totals.skipped += 1
            return None
        return queue_message(planned, job_id=job_id)

    def _reject(self, row: SourceRow, totals: JobTotals, reason: str, field_name: str | None) -> None:
        totals.rejected += 1
        totals.add_error(row.position, reason, field_name)
        count("JobRowsRejected")

    def _count_published(
        self, planned: list[tuple[SourceRow, QueueMessage]], failures: list[PublishFailure], totals: JobTotals
    ) -> None:
        failed = {id(failure.message): failure for failure in failures}
        for row, message in planned:
            failure = failed.get(id(message))
            if failure is None:
                totals.queued += 1
                continue
            totals.failed += 1
            totals.add_error(row.position, f"the queue refused the message ({failure.code})", None)
        count("JobRowsQueued", len(planned) - len(failures))
        if failures:
            count("JobRowsFailed", len(failures))

    def _continue_later(self, job: JobInput, cursor: Cursor, totals: JobTotals, run: int) -> dict[str, Any]:
        message = continuation_message(job, cursor, totals, run + 1)
        failures = self.publisher.publish([message])
        if failures:
            raise RuntimeError(f"could not queue the job's continuation ({failures[0].code})")
        count("JobContinuations")
        logger.info("job continues in a new run", extra=_log_fields(job, totals, run))
        return summary(job, totals, complete=False, checkpoint=cursor, run=run)

    def _finish(self, job: JobInput, totals: JobTotals, run: int) -> dict[str, Any]:
        count("JobsCompleted")
        logger.info("job finished", extra=_log_fields(job, totals, run) | {"errors": totals.errors})
        return summary(job, totals, complete=True, checkpoint=None, run=run)


def pages(rows: Iterator[SourceRow], size: int) -> Iterator[tuple[list[SourceRow], bool]]:
    """Pages of ``size`` rows, each with whether more rows follow (one row is read ahead)."""
    page = list(islice(rows, size))
    while page:
        ahead = next(rows, None)
        yield page, ahead is not None
        page = [ahead, *islice(rows, size - 1)] if ahead is not None else []


def out_of_time(context: Any, safety_margin_ms: int) -> bool:
    """True when the Lambda has less than the margin left; no context (a local run) means no limit."""
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    return remaining is not None and remaining() < safety_margin_ms


def queue_message(planned: PlannedMessage, *, job_id: str) -> QueueMessage:
    """The wire form: the body as compact JSON, the deduplication ID unique per job and key."""
    body = COMPACT_JSON.encode(dict(planned.body))
    return QueueMessage(body=body, group_id=planned.group_id, deduplication_id=dedup_id(job_id, planned.dedup_key))


def dedup_id(job_id: str, key: str) -> str:
    """``<hash of job and key>``: SQS drops a repeat of the same row's message within 5 minutes."""
    return hashlib.sha256(f"{job_id}\x01{key}".encode()).hexdigest()


def continuation_message(job: JobInput, cursor: Cursor, totals: JobTotals, run: int) -> QueueMessage:
    body = {
        "kind": CONTINUE_KIND,
        "job": job.model_dump(mode="json", exclude_none=True),
        "checkpoint": cursor,
        "totals": totals.as_dict(),
        "run": run,
    }
    return QueueMessage(
        body=json.dumps(body, separators=(",", ":"), default=str),
        group_id=f"job#{job.job_id}",
        deduplication_id=dedup_id(str(job.job_id), f"run#{run}"),
    )


def summary(job: JobInput, totals: JobTotals, *, complete: bool, checkpoint: Cursor | None, run: int) -> dict[str, Any]:
    counts = totals.as_dict()
    return {
        "job": job.job,
        "job_id": job.job_id,
        **counts,
        "complete": complete,
        "checkpoint": public_cursor(checkpoint),
        "runs": run,
    }


def public_cursor(cursor: Cursor | None) -> Cursor | None:
    """A cursor without item keys (a table's key may be a customer ID): for summaries and logs."""
    if cursor is None:
        return None
    return {name: value for name, value in cursor.items() if name != "after"}


def default_job_id(job: str, context: Any) -> str:
    request_id = getattr(context, "aws_request_id", None) or uuid.uuid4().hex
    return f"{job}-{request_id}"[:80]


def source_kind(job: JobInput) -> str:
    return "s3" if job.source.s3 is not None else "table"


def count(name: str, value: int = 1) -> None:
    if value:
        metrics.add_metric(name=name, unit="Count", value=value)


def _log_fields(job: JobInput, totals: JobTotals, run: int) -> dict[str, Any]:
    counts = {name: value for name, value in totals.as_dict().items() if name != "errors"}
    return {"job": job.job, "job_id": job.job_id, "run": run, **counts}
