"""Fixtures of the local-stack tests: a running LocalStack, and moto with the template's resources."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from local.aws import MotoServer, QueueInfo, client, create_queues
from local.run import LocalStack
from local.template import Template


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    """The whole local stack on free ports (one per test module; one at a time per process)."""
    with LocalStack(api_port=0, dcs_port=0) as running:
        yield running


@pytest.fixture
def http() -> Iterator[requests.Session]:
    """A fresh HTTP session (its own cookie jar: one browser visitor)."""
    with requests.Session() as session:
        yield session


class MotoQueues:
    """moto on a free port with queues created from the template (no functions, no environment changes)."""

    def __init__(self, server: MotoServer, queues: dict[str, QueueInfo]) -> None:
        self.server = server
        self.endpoint = server.endpoint
        self.queues = queues
        self.sqs: Any = client("sqs", server.endpoint)


@pytest.fixture(scope="module")
def moto_server() -> Iterator[MotoServer]:
    server = MotoServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def template_queues(moto_server: MotoServer) -> MotoQueues:
    """Fresh queues from the template's definitions for each test (a unique stack name per test).

    A small maxReceiveCount keeps the redrive test short; every other attribute is the template's.
    """
    template = Template.load()
    evaluator = template.evaluator(
        {"Partner": "acme", "OrgId": "0123456789ABCDEF01234567@AdobeOrg", "MaxReceiveCount": "3"},
        stack_name=f"t{uuid.uuid4().hex[:10]}",
    )
    return MotoQueues(moto_server, create_queues(template, evaluator, moto_server.endpoint))
