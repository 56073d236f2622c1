"""A short load run on the local stack: the routes mixed, open loop, every request answered 200/202.

``make reliability`` runs the long one in its own processes (``python -m tests.reliability.load``).
"""

from __future__ import annotations

from local.run import LocalStack
from tests.reliability.load import MIX, run_load, warm_up

RATE = 8  # requests per second: the generator shares this process (and its GIL) with the stack
SECONDS = 5


def test_a_short_mixed_load_gets_no_error(stack: LocalStack) -> None:
    warm_up(stack.api_url)
    figures = run_load(stack.api_url, rate=RATE, seconds=SECONDS, workers=16)
    print(figures.table())
    assert figures.error_count == 0, figures.table()
    assert len(figures.samples) == RATE * SECONDS
    assert {sample.route for sample in figures.samples} == {route.name for route in MIX}
    assert figures.achieved_rate > RATE * 0.8, figures.table()
