from __future__ import annotations

import pytest

from tests.perf.cost import ASSUMED, PRICES, Usage, cost_per_million

MEASURED = {
    "warm_overhead": {"lookup_segments": {"api": {"median_ms": 1.0}}, "send_signals": {"api": {"median_ms": 2.0}}},
    "batch": {
        "latency_ms": 50,
        "worker": {"send_signals": {"median_batch_ms": 60.0}, "enrich_segments": {"median_batch_ms": 55.0}},
        "planner": {"send_signals": {"cpu_ms_per_row": 0.1}, "enrich_segments": {"cpu_ms_per_row": 0.2}},
    },
}


def test_a_million_invocations_of_one_gb_second_cost_the_list_prices() -> None:
    one_gb_second = 1000 * 1024 / ASSUMED["memory_mb"]
    parts = Usage(lambda_ms=one_gb_second, lambda_invocations=1, api_requests=1).dollars_per_million()
    assert parts["lambda"] == pytest.approx(1e6 * (PRICES["lambda_gb_second"] + PRICES["lambda_request"]), abs=0.01)
    assert parts["api_gateway"] == 3.5
    assert parts["total"] == pytest.approx(parts["lambda"] + 3.5, abs=0.01)


def test_a_sync_lookup_bills_the_dcs_wait_plus_the_measured_overhead() -> None:
    cost = cost_per_million(MEASURED)
    waited_ms = ASSUMED["dcs_latency_ms"] + 1.0 + 2 * ASSUMED["dynamodb_call_ms"]
    gb_seconds = waited_ms / 1000 * ASSUMED["memory_mb"] / 1024
    expected = 1e6 * (gb_seconds * PRICES["lambda_gb_second"] + PRICES["lambda_request"])
    assert cost["per_million_usd"]["lookup, API, cache miss"]["lambda"] == pytest.approx(expected, abs=0.01)


def test_queued_work_shares_one_invocation_and_one_wait_per_batch() -> None:
    cost = cost_per_million(MEASURED)["per_million_usd"]
    assert cost["signal, batch job (S3 → queue → worker)"]["lambda"] < cost["signal, API, sync"]["lambda"] / 5
    assert cost["signal, API, async (queue + worker)"]["sqs"] == pytest.approx(0.6)
    assert cost["customer enriched (scheduled job)"]["eventbridge"] == pytest.approx(0.1)
