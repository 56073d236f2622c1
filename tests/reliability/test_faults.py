"""The fault suite (``tests/reliability/faults.py``): queued signals through the real queue and
worker under each DCS fault, and worker crashes.

The short version runs in ``make test`` (a few seconds per fault, the DCS down for 2 s); the long
one (1,000 signals per fault, the DCS down for 60 s) only with ``-m reliability``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests.reliability.faults import FAULT_NAMES, LONG, SHORT, Result, Scale, faults, run_fault
from tests.support.signal_delivery import moto_servers

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def endpoints() -> Iterator[dict[str, str]]:
    with moto_servers() as servers:
        yield servers


def run(name: str, scale: Scale, endpoints: dict[str, str]) -> Result:
    result = run_fault(faults(scale)[name], scale, endpoints)
    print(f"\n{name}: {json.dumps(result.as_dict())}")
    return result


def assert_no_loss(result: Result) -> None:
    tally = result.tally
    assert result.settled, result.as_dict()
    assert tally.lost == [], "accepted signals neither received nor dead-lettered"
    assert tally.redriven == 0, "signals dead-lettered without a reason"
    assert tally.unexplained == [], "signals received again after an answer the worker read"
    if not result.fault.at_least_once:
        assert tally.duplicated == 0, "duplicates under a fault that leaves every answer readable"
    assert result.problems() == []


@pytest.mark.parametrize("name", FAULT_NAMES)
def test_no_accepted_signal_is_lost_under(name, endpoints):
    assert_no_loss(run(name, SHORT, endpoints))


@pytest.mark.reliability
@pytest.mark.parametrize("name", FAULT_NAMES)
def test_the_long_run_loses_nothing_under(name, endpoints, request):
    if "reliability" not in (request.config.getoption("markexpr") or ""):
        pytest.skip("the long fault runs need -m reliability")
    assert_no_loss(run(name, LONG, endpoints))
