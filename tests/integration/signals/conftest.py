"""send_signals against the DCS simulator and moto.

The queues come from the template's own definitions (FIFO, high throughput, redrive to the DLQ),
the profiles table has the template's key schema, and the handler runs in-process with the
environment Lambda would give it. moto runs in-process (``mock_aws``), except in the 1,000-signal
test, which runs it as servers in processes of their own (moto's CPU would otherwise compete with
the worker for the GIL). The DCS simulator is a real HTTP server on loopback (the DCS client's
urllib3 calls are not intercepted by moto).
"""

from __future__ import annotations

import importlib
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import pytest
from moto import mock_aws

from aam_dcs.config import get_settings
from aam_dcs.dcs.http import reset_client
from local.aws import client, create_queues, process_environment
from local.dcs_simulator import DcsSimulator, SimulatorConfig
from local.poller import failed_message_ids, lambda_sqs_record
from local.template import Template
from tests.support.aws import create_profiles_table
from tests.support.events import FakeLambdaContext
from tests.support.signal_delivery import moto_servers
from tests.support.signals import ORG

MAX_RECEIVE_COUNT = 8


@dataclass
class Aws:
    endpoint: str | None
    table: str
    queue_url: str
    queue_arn: str
    dlq_url: str
    sqs: Any
    dynamodb: Any


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[Aws]:
    """moto with a profiles table and the template's signal queue + DLQ, under a unique stack name."""
    apply_env(monkeypatch, {**process_environment(""), "AWS_ENDPOINT_URL": None})
    with mock_aws():
        yield create_resources(sqs_endpoint=None, dynamodb_endpoint=None)


def create_resources(*, sqs_endpoint: str | None, dynamodb_endpoint: str | None, table: bool = True) -> Aws:
    """The template's signal queue + DLQ and (unless ``table`` is false) a profiles table.

    Names are unique per call; an endpoint of ``None`` is moto's in-process default (``mock_aws``).
    """
    stack = f"t{uuid.uuid4().hex[:10]}"
    template = Template.load()
    evaluator = template.evaluator(
        {"Partner": "acme", "OrgId": ORG, "MaxReceiveCount": str(MAX_RECEIVE_COUNT)}, stack_name=stack
    )
    queues = create_queues(template, evaluator, sqs_endpoint)  # type: ignore[arg-type]
    dynamodb = client("dynamodb", dynamodb_endpoint) if table else None  # type: ignore[arg-type]
    return Aws(
        endpoint=sqs_endpoint,
        table=create_profiles_table(dynamodb, name=f"{stack}-profiles") if table else "",
        queue_url=queues["SignalQueue"].url,
        queue_arn=queues["SignalQueue"].arn,
        dlq_url=queues["SignalDeadLetterQueue"].url,
        sqs=client("sqs", sqs_endpoint),  # type: ignore[arg-type]
        dynamodb=dynamodb,
    )


@pytest.fixture
def sim() -> Iterator[DcsSimulator]:
    with DcsSimulator(config=SimulatorConfig.load().replace(seed=4242), port=0) as running:
        yield running


def bundle_env(sim: DcsSimulator, aws: Aws) -> dict[str, str]:
    """The function's environment: the simulator as the DCS, moto as AWS, every feature on."""
    return {
        "AAM_PARTNER": "acme",
        "AAM_ORG_ID": ORG,
        "AAM_DCS_ENDPOINT": sim.url,
        "AAM_TIMEOUT_MS": "1000",
        "AAM_USER_CALLS_PER_MINUTE": "120",
        "PROFILES_TABLE": aws.table,
        "SIGNAL_QUEUE_URL": aws.queue_url,
        "SIGNAL_DLQ_URL": aws.dlq_url,
        "AAM_MAX_RECEIVES": str(MAX_RECEIVE_COUNT),
    }


def apply_env(monkeypatch: pytest.MonkeyPatch, env: dict[str, str | None]) -> None:
    for name, value in env.items():
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    reset_client()


@pytest.fixture
def bundle(monkeypatch: pytest.MonkeyPatch, sim: DcsSimulator, aws: Aws) -> Iterator[dict[str, str]]:
    env = bundle_env(sim, aws)
    apply_env(monkeypatch, dict(env))
    yield env
    reset_client()
    get_settings.cache_clear()


@pytest.fixture
def served_aws() -> Iterator[Aws]:
    """SQS and DynamoDB each on a moto server in a process of its own, reached by service endpoints
    (for runs whose pollers and workers call AWS from many threads); a module uses it as ``aws``."""
    with moto_servers() as endpoints:
        yield create_resources(sqs_endpoint=endpoints["sqs"], dynamodb_endpoint=endpoints["dynamodb"])


def run_as_event_source(
    function: Any, aws: Aws, messages: list[dict[str, Any]], remaining_ms: int = 10_000
) -> set[str]:
    """Lambda's event source for one received batch: the handler runs, the failed messages come back
    at once, the others are deleted; returns the failed message IDs."""
    event = {"Records": [lambda_sqs_record(m, queue_arn=aws.queue_arn, region="us-west-2") for m in messages]}
    answer = function.lambda_handler(event, FakeLambdaContext(remaining_ms))
    failed = set(failed_message_ids(answer, [m["MessageId"] for m in messages]) or [])
    for message in messages:
        if message["MessageId"] in failed:
            aws.sqs.change_message_visibility(
                QueueUrl=aws.queue_url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
            )
        else:
            aws.sqs.delete_message(QueueUrl=aws.queue_url, ReceiptHandle=message["ReceiptHandle"])
    return failed


def load_function() -> ModuleType:
    """``functions/send_signals/app.py``, imported fresh in the current environment."""
    return importlib.reload(importlib.import_module("functions.send_signals.app"))


@pytest.fixture
def function(bundle: dict[str, str]) -> ModuleType:
    return load_function()
