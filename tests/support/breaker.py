"""A clock the tests move by hand, for the DCS circuit breaker (no sleeps)."""

from __future__ import annotations

import pytest

from aam_dcs.dcs import breaker


class ManualClock:
    """A monotonic clock that only moves when told to."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def breaker_clock(monkeypatch: pytest.MonkeyPatch) -> ManualClock:
    """The clock of the breakers the container builds from now on (call before the first DCS call)."""
    clock = ManualClock()
    monkeypatch.setattr(breaker, "monotonic", clock)
    return clock
