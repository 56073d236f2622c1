"""Fixtures for the DCS simulator's own tests: a simulator on an ephemeral loopback port per test."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from local.dcs_simulator import DcsSimulator, SimulatorConfig
from tests.simulator.helpers import Client


@pytest.fixture
def base_config() -> SimulatorConfig:
    """The bundled demo rules, with a fixed seed."""
    return SimulatorConfig.load().replace(seed=1234)


@pytest.fixture
def make_sim(base_config: SimulatorConfig) -> Iterator[Callable[..., DcsSimulator]]:
    """Start a simulator with config overrides: ``make_sim(sync_delay_seconds=0.3)``."""
    started: list[DcsSimulator] = []

    def factory(**overrides: Any) -> DcsSimulator:
        sim = DcsSimulator(config=base_config.replace(**overrides), port=0)
        sim.start()
        started.append(sim)
        return sim

    yield factory
    for sim in started:
        sim.stop()


@pytest.fixture
def sim(make_sim: Callable[..., DcsSimulator]) -> DcsSimulator:
    return make_sim()


@pytest.fixture
def client(sim: DcsSimulator) -> Client:
    return Client(sim.url)
