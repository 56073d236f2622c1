"""lookup_segments against the DCS simulator (loopback) and moto (in process): real adapters end to end."""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from types import ModuleType

import pytest
from moto import mock_aws

from aam_dcs.config import get_settings
from aam_dcs.dcs.http import reset_client
from local.dcs_simulator import DcsSimulator, SimulatorConfig
from tests.support.segments_stack import SegmentsStack, SimulatorSeeder


@pytest.fixture
def segments_sim() -> Iterator[DcsSimulator]:
    """The simulator with the demo rules (segments 2001-2004 from traits 1001-1007), no latency."""
    with DcsSimulator(config=SimulatorConfig.load().replace(seed=7), port=0) as running:
        yield running


@pytest.fixture
def seeder(segments_sim: DcsSimulator) -> SimulatorSeeder:
    return SimulatorSeeder(segments_sim.url)


@pytest.fixture
def stack() -> Iterator[SegmentsStack]:
    with mock_aws():
        yield SegmentsStack.create()


@pytest.fixture
def configure(monkeypatch: pytest.MonkeyPatch, stack: SegmentsStack, segments_sim: DcsSimulator) -> Iterator[object]:
    """``configure(**env)`` sets the function's environment (over the stack's) and returns a fresh handler module."""

    def apply(**extra: str) -> ModuleType:
        for name, value in stack.environment(segments_sim.url, **extra).items():
            monkeypatch.setenv(name, value)
        get_settings.cache_clear()
        reset_client()
        return importlib.reload(importlib.import_module("functions.lookup_segments.app"))

    yield apply
    reset_client()


@pytest.fixture
def handler(configure) -> ModuleType:
    return configure()
