"""lookup_segments: the visitor's AAM segments, and the scheduled CRM enrichment.

Triggers:

- API Gateway: ``GET /segments`` reads the Cookie header and the ``mid``, ``uuid``, ``region_id``,
  ``max_age_seconds`` and ``refresh`` query parameters; ``POST /segments`` takes the lookup input
  as JSON (the Cookie header is used when the body has no ``cookies`` or ``amcv``);
- direct invocation: the lookup input as plain JSON, the result as plain JSON;
- EventBridge Scheduler (or a direct call): ``{"job": "enrich_segments", "source": {...}}`` plans
  the enrichment job and answers its summary;
- SQS (the enrichment queue): one message per customer, and job continuations.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, Any

from aam_dcs.api import build_resolver, query_input, request_json, with_request_cookies
from aam_dcs.config import get_settings
from aam_dcs.ids.models import parse_identity
from aam_dcs.observability import logger, metrics, tracer
from aam_dcs.segments.lookup import SegmentLookup, default_lookup
from aam_dcs.segments.models import LookupInput
from aam_dcs.triggers import dispatch

if TYPE_CHECKING:
    from aam_dcs.jobs.planner import JobPlanner
    from aam_dcs.segments.enrich_worker import EnrichmentWorker

QUERY_FIELDS = ("mid", "uuid", "region_id", "max_age_seconds", "refresh")

app = build_resolver()


@cache
def lookup() -> SegmentLookup:
    return default_lookup()


# The job and queue paths are imported on their first use: an API cold start never pays for them.
@cache
def worker() -> EnrichmentWorker:
    from aam_dcs.segments.enrich_worker import default_worker

    return default_worker(lookup=lookup())


@cache
def planner() -> JobPlanner:
    from aam_dcs.segments.enrich_job import enrichment_planner

    return enrichment_planner(get_settings())


@app.get("/segments")
def get_segments() -> dict[str, Any]:
    return look_up(query_input(app, QUERY_FIELDS))


@app.post("/segments")
def post_segments() -> dict[str, Any]:
    return look_up(with_request_cookies(app, request_json(app)))


def look_up(data: Any) -> dict[str, Any]:
    return lookup().lookup(parse_identity(data, LookupInput)).model_dump(mode="json")


def run_job(event: Any, context: Any) -> dict[str, Any]:
    return planner().plan(event, context)


def work_queue(event: Any, context: Any) -> dict[str, Any]:
    return worker().process(event, context)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: Any, context: Any) -> Any:
    return dispatch(event, context, api=app.resolve, direct=lambda data, _: look_up(data), sqs=work_queue, job=run_job)
