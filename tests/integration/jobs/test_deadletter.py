import json

import boto3
import pytest
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from moto import mock_aws

from aam_dcs.jobs.deadletter import SqsDeadLetters
from tests.support.events import sqs_event

pytestmark = pytest.mark.integration


@mock_aws
def test_a_dead_lettered_message_keeps_its_body_group_and_reason():
    sqs = boto3.client("sqs")
    url = sqs.create_queue(QueueName="signals-dlq.fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]
    record = SQSRecord(
        sqs_event([("visitor-9", {"kind": "send_signals", "request": {"signals": {"c_a": 1}}})])["Records"][0]
    )
    SqsDeadLetters(url).send(record, "dropped by the DCS (311)", {"codes": [311], "tid": "abc="})
    message = sqs.receive_message(
        QueueUrl=url, MessageAttributeNames=["All"], AttributeNames=["All"], MaxNumberOfMessages=1
    )["Messages"][0]
    assert json.loads(message["Body"])["request"] == {"signals": {"c_a": 1}}
    assert message["Attributes"]["MessageGroupId"] == "visitor-9"
    attributes = {k: v["StringValue"] for k, v in message["MessageAttributes"].items()}
    assert attributes["reason"] == "dropped by the DCS (311)"
    assert json.loads(attributes["details"]) == {"codes": [311], "tid": "abc="}
    assert attributes["source_message_id"] == record.message_id
    assert attributes["receive_count"] == "1"


@mock_aws
def test_a_replayed_message_dead_lettered_again_keeps_its_original_id():
    sqs = boto3.client("sqs")
    url = sqs.create_queue(QueueName="signals-dlq.fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]
    event = sqs_event([("visitor-9", {"kind": "send_signals", "request": {"signals": {"c_a": 1}}})])
    event["Records"][0]["messageAttributes"] = {"source_message_id": {"dataType": "String", "stringValue": "first-id"}}
    SqsDeadLetters(url).send(SQSRecord(event["Records"][0]), "invalid_request", {})
    message = sqs.receive_message(QueueUrl=url, MessageAttributeNames=["All"])["Messages"][0]
    assert message["MessageAttributes"]["source_message_id"]["StringValue"] == "first-id"
