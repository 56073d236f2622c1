"""Which AWS trigger invoked a handler: API Gateway, SQS, a scheduled job, or a direct call."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from enum import StrEnum
from typing import Any

from aam_dcs.errors import InvalidRequest


class Trigger(StrEnum):
    API = "api"
    SQS = "sqs"
    JOB = "job"
    DIRECT = "direct"


def classify(event: Any) -> Trigger:
    """Anything that is not API Gateway, SQS or a job is a direct invocation with plain JSON."""
    if not isinstance(event, Mapping):
        return Trigger.DIRECT
    if "httpMethod" in event and "requestContext" in event:
        return Trigger.API
    if _is_sqs_batch(event.get("Records")):
        return Trigger.SQS
    if "job" in event:
        return Trigger.JOB
    return Trigger.DIRECT


def _is_sqs_batch(records: Any) -> bool:
    return (
        isinstance(records, list)
        and bool(records)
        and all(isinstance(r, Mapping) and r.get("eventSource") == "aws:sqs" for r in records)
    )


Route = Callable[[Any, Any], Any]


def dispatch(
    event: Any,
    context: Any,
    *,
    api: Route | None = None,
    direct: Route | None = None,
    sqs: Route | None = None,
    job: Route | None = None,
) -> Any:
    """Send the event to the route of its trigger; a trigger the function does not serve is refused."""
    trigger = classify(event)
    route = {Trigger.API: api, Trigger.DIRECT: direct, Trigger.SQS: sqs, Trigger.JOB: job}[trigger]
    if route is None:
        raise InvalidRequest(f"this function does not accept {trigger.value} events", field="event", rule="trigger")
    return route(event, context)
