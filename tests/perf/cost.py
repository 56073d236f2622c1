"""Cost per million signals and per million lookups, computed from the durations ``make bench`` measured.

Lambda bills the time a function waits on the DCS, so the DCS latency dominates every figure. The
bench's simulator answers in 0 or 50 ms; the cost uses an assumed production latency (the middle of
the 200-500 ms the DCS takes) plus the overheads measured here: the warm overhead of an API call, and
a worker batch's time over its simulated latency. AWS calls that moto cannot time (SQS and DynamoDB
round trips) use assumed latencies. Prices are us-east-1 list prices for arm64 Lambda, REST APIs, SQS
FIFO, DynamoDB on demand and EventBridge custom events; check them against the current price list.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

PRICES = {  # USD
    "lambda_gb_second": 0.0000133334,  # arm64, first tier
    "lambda_request": 0.20 / 1e6,
    "api_request": 3.50 / 1e6,  # REST API, first 333 million
    "sqs_fifo_request": 0.50 / 1e6,
    "dynamodb_write": 0.625 / 1e6,  # on demand, per write request unit
    "dynamodb_read": 0.125 / 1e6,  # on demand, per read request unit
    "event": 1.00 / 1e6,  # EventBridge custom event
}
ASSUMED = {
    "dcs_latency_ms": 250.0,  # the DCS answers in 200-500 ms
    "sqs_call_ms": 20.0,  # one SendMessage from a function
    "dynamodb_call_ms": 5.0,
    "memory_mb": 256,  # the template's MemorySize default
    "batch_size": 10,  # the queues' BatchSize
    "changed_share": 0.1,  # enrichment rows whose segments changed (one event each)
}


@dataclass(frozen=True)
class Usage:
    """What one unit of work (one signal, one lookup, one customer) uses."""

    lambda_ms: float = 0.0
    lambda_invocations: float = 0.0
    api_requests: float = 0.0
    sqs_requests: float = 0.0
    dynamodb_writes: float = 0.0
    dynamodb_reads: float = 0.0
    events: float = 0.0

    def dollars_per_million(self) -> dict[str, float]:
        gb_seconds = self.lambda_ms / 1000 * ASSUMED["memory_mb"] / 1024
        parts = {
            "lambda": gb_seconds * PRICES["lambda_gb_second"] + self.lambda_invocations * PRICES["lambda_request"],
            "api_gateway": self.api_requests * PRICES["api_request"],
            "sqs": self.sqs_requests * PRICES["sqs_fifo_request"],
            "dynamodb": self.dynamodb_writes * PRICES["dynamodb_write"] + self.dynamodb_reads * PRICES["dynamodb_read"],
            "eventbridge": self.events * PRICES["event"],
        }
        parts = {name: round(value * 1e6, 2) for name, value in parts.items()}
        parts["total"] = round(sum(parts.values()), 2)
        return parts


def measured_inputs(report: dict[str, Any]) -> dict[str, float]:
    """The bench's own figures the cost depends on (ms)."""
    warm = report["warm_overhead"]
    batch = report["batch"]
    latency = float(batch["latency_ms"])
    return {
        "lookup_api_overhead_ms": warm["lookup_segments"]["api"]["median_ms"],
        "send_api_overhead_ms": warm["send_signals"]["api"]["median_ms"],
        "signal_batch_overhead_ms": batch["worker"]["send_signals"]["median_batch_ms"] - latency,
        "enrich_batch_overhead_ms": batch["worker"]["enrich_segments"]["median_batch_ms"] - latency,
        "signal_planner_cpu_ms_per_row": batch["planner"]["send_signals"]["cpu_ms_per_row"],
        "enrich_planner_cpu_ms_per_row": batch["planner"]["enrich_segments"]["cpu_ms_per_row"],
    }


def scenarios(measured: dict[str, float]) -> dict[str, Usage]:
    dcs, sqs, ddb, size = (ASSUMED[k] for k in ("dcs_latency_ms", "sqs_call_ms", "dynamodb_call_ms", "batch_size"))
    per_message_in_batch = 1 / size
    # Lambda's poller receives a batch and deletes it: two requests per batch, beside the send.
    queue_requests = 1 + 2 * per_message_in_batch
    signal_worker_ms = (dcs + measured["signal_batch_overhead_ms"] + 2 * ddb) * per_message_in_batch
    enrich_worker_ms = (dcs + measured["enrich_batch_overhead_ms"] + 2 * ddb) * per_message_in_batch
    return {
        "lookup, API, cache miss": Usage(
            lambda_ms=dcs + measured["lookup_api_overhead_ms"] + 2 * ddb,
            lambda_invocations=1,
            api_requests=1,
            dynamodb_reads=1,
            dynamodb_writes=1,
        ),
        "lookup, API, cache hit": Usage(
            lambda_ms=measured["lookup_api_overhead_ms"] + ddb, lambda_invocations=1, api_requests=1, dynamodb_reads=1
        ),
        "signal, API, sync": Usage(
            lambda_ms=dcs + measured["send_api_overhead_ms"], lambda_invocations=1, api_requests=1
        ),
        "signal, API, async (queue + worker)": Usage(
            lambda_ms=measured["send_api_overhead_ms"] + sqs + signal_worker_ms,
            lambda_invocations=1 + per_message_in_batch,
            api_requests=1,
            sqs_requests=queue_requests,
            dynamodb_writes=2,  # the idempotency record: in progress, then completed
        ),
        "signal, batch job (S3 → queue → worker)": Usage(
            lambda_ms=measured["signal_planner_cpu_ms_per_row"] + sqs * per_message_in_batch + signal_worker_ms,
            lambda_invocations=per_message_in_batch,
            sqs_requests=per_message_in_batch + 2 * per_message_in_batch,
            dynamodb_writes=2,
        ),
        "customer enriched (scheduled job)": Usage(
            lambda_ms=measured["enrich_planner_cpu_ms_per_row"] + sqs * per_message_in_batch + enrich_worker_ms,
            lambda_invocations=per_message_in_batch,
            sqs_requests=3 * per_message_in_batch,
            dynamodb_reads=1,
            dynamodb_writes=1,
            events=ASSUMED["changed_share"],
        ),
    }


def cost_per_million(report: dict[str, Any]) -> dict[str, Any]:
    measured = measured_inputs(report)
    return {
        "assumed": ASSUMED,
        "prices_usd": PRICES,
        "measured_ms": measured,
        "per_million_usd": {name: usage.dollars_per_million() for name, usage in scenarios(measured).items()},
    }


def render(cost: dict[str, Any]) -> str:
    lines = [
        "| per million | Lambda | API Gateway | SQS | DynamoDB | EventBridge | total (USD) |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, parts in cost["per_million_usd"].items():
        cells = " | ".join(f"{parts[key]:.2f}" for key in ("lambda", "api_gateway", "sqs", "dynamodb", "eventbridge"))
        lines.append(f"| {name} | {cells} | {parts['total']:.2f} |")
    return "\n".join(lines)
