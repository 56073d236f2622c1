"""send_signals: send key-value signals and declared IDs to the visitor's regional DCS.

Triggers: API Gateway (``POST /signals``: 200 with the result, 202 when ``"mode": "async"``
queued it), the signal queue (SQS FIFO batches, partial batch failures), the scheduled batch job
(``{"job": "send_signals", "source": {...}}``) and direct invocation (plain JSON in and out,
typed errors raised by class name).
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.event_handler import Response

from aam_dcs.api import build_resolver, json_response, request_json, with_request_cookies
from aam_dcs.config import get_settings
from aam_dcs.ids.models import parse_identity
from aam_dcs.observability import logger, metrics, tracer
from aam_dcs.signals.models import SendSignalsInput, SendSignalsResult
from aam_dcs.signals.send import SignalSender, default_sender
from aam_dcs.triggers import dispatch

if TYPE_CHECKING:
    from aam_dcs.jobs.planner import JobPlanner
    from aam_dcs.signals.worker import SignalWorker

app = build_resolver()


@cache
def sender() -> SignalSender:
    return default_sender()


# The queue and job paths are imported on their first use: an API cold start never pays for them.
@cache
def worker() -> SignalWorker:
    from aam_dcs.jobs.planner import CONTINUE_KIND
    from aam_dcs.signals.worker import default_worker

    return default_worker(sender(), other_kinds={CONTINUE_KIND: continue_job})


@cache
def planner() -> JobPlanner:
    from aam_dcs.signals.job import signal_planner

    return signal_planner(get_settings())


def continue_job(body: dict[str, Any], context: Any) -> None:
    from aam_dcs.signals.job import resume_job

    resume_job(planner, body, context)


@app.post("/signals")
def post_signals() -> Response[str]:
    result = send_result(with_request_cookies(app, request_json(app)))
    return json_response(202 if result.status == "queued" else 200, as_json(result))


def send_result(data: Any) -> SendSignalsResult:
    return sender().send(parse_identity(data, SendSignalsInput))


def send(data: Any) -> dict[str, Any]:
    return as_json(send_result(data))


def as_json(result: SendSignalsResult) -> dict[str, Any]:
    """The contract's fields; ``segments`` and ``request`` only when they apply."""
    unset = {name for name in ("segments", "request") if getattr(result, name) is None}
    return result.model_dump(mode="json", exclude=unset)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: Any, context: Any) -> Any:
    return dispatch(
        event,
        context,
        api=app.resolve,
        direct=lambda data, _: send(data),
        sqs=lambda batch, ctx: worker().process(batch, ctx),
        job=lambda data, ctx: planner().plan(data, ctx),
    )
