"""Every size cap of the API, at its limit and one past it: the limit is accepted, one more is a
400 or 413 naming the field, and nothing is sent to the DCS."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from aam_dcs.api import MAX_BODY_BYTES
from tests.support.signals import MID
from tests.unit.security.conftest import SignalsApi

GOOD = {"mid": MID, "signals": {"c_x": "1"}}


@dataclass(frozen=True)
class Cap:
    limit: int
    build: Callable[[int], dict[str, Any]]  # the request body with ``n`` of the capped thing
    status: int  # the answer one past the limit
    field: str


def declared_ids(count: int) -> dict[str, Any]:
    return {"customer_ids": [{"data_source_id": 100 + i // 3, "id": f"id-{i}"} for i in range(count)]}


CAPS = {
    "amcv characters": Cap(4096, lambda n: {"amcv": "x" * n}, 413, "amcv"),
    "cookies characters": Cap(8192, lambda n: {"cookies": "a=" + "x" * (n - 2)}, 413, "cookies"),
    "signals per call": Cap(200, lambda n: {"signals": {f"c_{i}": "1" for i in range(n)}}, 400, "signals"),
    "signal key characters": Cap(100, lambda n: {"signals": {"c" * n: "1"}}, 400, "signals.c"),
    "signal value characters": Cap(1024, lambda n: {"signals": {"c_x": "v" * n}}, 400, "signals.c_x"),
    "values in a list signal": Cap(100, lambda n: {"signals": {"c_x": ["v"] * n}}, 400, "signals.c_x"),
    "trait IDs": Cap(100, lambda n: {"trait_ids": list(range(1, n + 1))}, 400, "trait_ids"),
    "declared IDs": Cap(10, declared_ids, 400, "customer_ids"),
    "declared IDs per data source": Cap(
        3, lambda n: {"customer_ids": [{"data_source_id": 7, "id": f"id-{i}"} for i in range(n)]}, 400, "customer_ids"
    ),
    "declared ID characters": Cap(
        256, lambda n: {"customer_ids": [{"data_source_id": 7, "id": "i" * n}]}, 400, "customer_ids[0].id"
    ),
    "integration code characters": Cap(
        255,
        lambda n: {"customer_ids": [{"integration_code": "c" * n, "id": "abc"}]},
        400,
        "customer_ids[0].integration_code",
    ),
    "consent string characters": Cap(
        4096, lambda n: {"consent": {"gdpr": True, "gdpr_consent": "C" * n}}, 400, "consent.gdpr_consent"
    ),
    "user_agent characters": Cap(1024, lambda n: {"user_agent": "u" * n}, 400, "user_agent"),
    "referer characters": Cap(2048, lambda n: {"referer": "r" * n}, 400, "referer"),
    "event_id characters": Cap(128, lambda n: {"event_id": "e" * n}, 400, "event_id"),
}


@pytest.mark.parametrize("name", sorted(CAPS))
def test_a_field_at_its_cap_is_accepted(signals_api: SignalsApi, name: str) -> None:
    cap = CAPS[name]
    status, body = signals_api.post({**GOOD, **cap.build(cap.limit)})
    assert status == 200, body


@pytest.mark.parametrize("name", sorted(CAPS))
def test_a_field_past_its_cap_is_refused_naming_it(signals_api: SignalsApi, name: str) -> None:
    cap = CAPS[name]
    status, body = signals_api.post({**GOOD, **cap.build(cap.limit + 1)})
    assert status == cap.status, body
    assert body["field"].startswith(cap.field), body
    assert signals_api.dcs.requests == []


def body_of_size(size: int) -> str:
    """A good request padded with JSON whitespace to exactly ``size`` bytes."""
    text = json.dumps({**GOOD, "dry_run": True})
    return text[:-1] + " " * (size - len(text)) + "}"


def test_a_body_of_64_kb_is_read_and_one_byte_more_is_413(signals_api: SignalsApi) -> None:
    status, body = signals_api.post(body_of_size(MAX_BODY_BYTES))
    assert (status, body["status"]) == (200, "dry_run")
    status, body = signals_api.post(body_of_size(MAX_BODY_BYTES + 1))
    assert (status, body["error"], body["field"]) == (413, "PayloadTooLarge", "body")


def test_a_dcs_call_past_32_kb_is_refused_before_it_is_sent(signals_api: SignalsApi) -> None:
    # 8 values of 1,000 "é": 48 KB of JSON body (\u00e9), 48 KB once percent-encoded (%C3%A9).
    signals = {f"c_{i}": "é" * 1000 for i in range(8)}
    status, body = signals_api.post({**GOOD, "signals": signals})
    assert (status, body["error"], body["field"]) == (413, "PayloadTooLarge", "signals")
    assert signals_api.dcs.requests == []
