"""One contract, two implementations: the in-memory fake must behave like DynamoDB (on moto)."""

import time

import boto3
import pytest
from moto import mock_aws

from aam_dcs.ids.sources import StoredIdentity
from aam_dcs.store.dynamodb import DynamoDbProfileStore
from aam_dcs.store.memory import InMemoryProfileStore
from aam_dcs.store.profiles import SegmentRecord, customer_key, mid_key, uuid_key
from tests.support.aws import create_profiles_table

MID = "04512783304617290021837465019283746501"
UUID = "22920112968019678612904394744954398990"

pytestmark = pytest.mark.integration


@pytest.fixture(params=["memory", "dynamodb"])
def store(request):
    if request.param == "memory":
        yield InMemoryProfileStore()
        return
    with mock_aws():
        create_profiles_table(boto3.client("dynamodb"))
        yield DynamoDbProfileStore("profiles")


def test_identity_is_found_under_every_key_it_was_stored_with(store):
    record = StoredIdentity(mid=MID, uuid=UUID, region_id=9, blob="abc_-", opted_out=False, region_source="amcv")
    store.put_identity([mid_key(MID), uuid_key(UUID)], record, ttl_seconds=600)
    assert store.get_identity([uuid_key(UUID)]) == record
    assert store.get_identity(["mid#unknown", mid_key(MID)]) == record
    assert store.get_identity(["mid#unknown"]) is None


def test_expired_identities_are_not_returned(store):
    store.put_identity([mid_key(MID)], StoredIdentity(mid=MID), ttl_seconds=-1)
    assert store.get_identity([mid_key(MID)]) is None


def test_put_segments_returns_the_record_it_replaced(store):
    first = SegmentRecord(segments=("1", "2"), segment_source="stuff", fetched_at=time.time(), uuid=UUID, region_id=9)
    assert store.put_segments(uuid_key(UUID), first, ttl_seconds=600) is None
    second = SegmentRecord(segments=("2",), segment_source="stuff", fetched_at=time.time())
    previous = store.put_segments(uuid_key(UUID), second, ttl_seconds=600)
    assert previous is not None
    assert previous.segments == ("1", "2")
    assert previous.region_id == 9
    assert store.get_segments(uuid_key(UUID)).segments == ("2",)


def test_call_counter_counts_per_window(store):
    assert [store.count_call("mid#x", 100, 120) for _ in range(3)] == [1, 2, 3]
    assert store.count_call("mid#x", 101, 120) == 1
    assert store.count_call("mid#y", 100, 120) == 1


def test_customer_keys_never_contain_the_raw_id():
    key = customer_key(123, "jane.doe@example.com")
    assert "jane" not in key
    assert key.startswith("cid#123#")
    assert key == customer_key(123, "jane.doe@example.com")
    assert key != customer_key(124, "jane.doe@example.com")
