"""Building boto3 clients: lazily (cold starts pay only for what a function uses) and one at a time.

boto3 clients are thread-safe once built, but building them from the shared default session is not,
and the queue workers run message groups in threads. Every adapter builds its clients here.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any, Literal, overload

from aam_dcs.observability import trace_aws_calls

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient
    from mypy_boto3_dynamodb.service_resource import DynamoDBServiceResource
    from mypy_boto3_events.client import EventBridgeClient
    from mypy_boto3_s3.client import S3Client
    from mypy_boto3_sqs.client import SQSClient

_BUILD_LOCK = threading.Lock()


@overload
def new_client(service: Literal["sqs"]) -> SQSClient: ...
@overload
def new_client(service: Literal["s3"]) -> S3Client: ...
@overload
def new_client(service: Literal["events"]) -> EventBridgeClient: ...
@overload
def new_client(service: Literal["dynamodb"]) -> DynamoDBClient: ...
def new_client(service: str) -> Any:
    with _BUILD_LOCK:
        import boto3  # noqa: PLC0415 - lazy by design

        trace_aws_calls()
        return boto3.client(service)  # type: ignore[call-overload]


def new_resource(service: Literal["dynamodb"]) -> DynamoDBServiceResource:
    with _BUILD_LOCK:
        import boto3  # noqa: PLC0415 - lazy by design

        trace_aws_calls()
        return boto3.resource(service)
