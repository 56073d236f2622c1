"""Rows of the enrich_segments job: JSON and CSV rows, profiles-table items, rejections, the planner."""

import json

import pytest

from aam_dcs.errors import FeatureDisabled, InvalidRequest
from aam_dcs.jobs.planner import RowRejected
from aam_dcs.jobs.publisher import InMemoryQueue
from aam_dcs.jobs.sources import SourceRow
from aam_dcs.segments.enrich_job import EnrichmentRows, enrichment_planner, parse_enrich_message
from aam_dcs.store.profiles import customer_key
from tests.support.segments import MID, OPTED_OUT_AMCV, UUID, bundle_settings

rows = EnrichmentRows(bundle_settings())


def test_a_json_row_becomes_a_message_grouped_by_the_mid():
    planned = rows({"mid": MID, "region_id": 9, "customer_ids": [{"data_source_id": 123, "id": "c1"}]})
    assert planned.group_id == f"mid:{MID}"
    assert planned.dedup_key == planned.group_id
    assert planned.body == {
        "kind": "enrich_segments",
        "request": {"mid": MID, "region_id": 9, "customer_ids": [{"data_source_id": 123, "id": "c1"}]},
    }


def test_groups_fall_back_to_the_uuid_then_a_hash_of_the_declared_id():
    assert rows({"uuid": UUID}).group_id == f"uuid:{UUID}"
    planned = rows({"customer_ids": [{"integration_code": "crm", "id": "raw-crm-7"}]})
    assert planned.group_id == "cid:" + customer_key("ic:crm", "raw-crm-7").rsplit("#", 1)[1]
    assert "raw-crm-7" not in planned.group_id


def test_csv_cells_are_strings_and_empty_cells_are_absent():
    planned = rows(
        {"mid": MID, "uuid": "", "region_id": "6", "customer_id": "c9", "integration_code": "crm", "auth_state": "1"}
    )
    assert planned.body["request"] == {
        "mid": MID,
        "region_id": 6,
        "customer_ids": [{"integration_code": "crm", "id": "c9", "auth_state": 1}],
    }


def test_a_customer_ids_cell_holds_json():
    planned = rows({"customer_ids": '[{"data_source_id": "123", "id": "x"}]'})
    assert planned.body["request"]["customer_ids"] == [{"data_source_id": 123, "id": "x"}]


@pytest.mark.parametrize(
    ("row", "field"),
    [
        ({}, "identity"),
        ({"region_id": 9}, "identity"),
        ({"mid": "123"}, "mid"),
        ({"mid": MID, "email": "a@b.c"}, "email"),
        ({"mid": MID, "mint": True}, "mint"),
        ({"customer_ids": "not json"}, "customer_ids"),
        ({"customer_id": "c1"}, "customer_ids[0]"),
        ({"data_source_id": "123"}, "customer_id"),
        ({"customer_id": "c", "data_source_id": "1", "customer_ids": "[]"}, "customer_ids"),
        ({"mid": MID, "max_age_seconds": 5}, "max_age_seconds"),
    ],
)
def test_bad_rows_are_rejected_naming_the_field(row, field):
    with pytest.raises((InvalidRequest, RowRejected)) as info:
        rows(row)
    assert info.value.field == field


def test_a_row_whose_amcv_says_opted_out_is_skipped():
    assert rows({"amcv": OPTED_OUT_AMCV}) is None


def identity_item(pk, **fields):
    return {"pk": pk, "sk": "identity", "opted_out": False, "updated_at": 1, "expires_at": 2, **fields}


def test_profiles_table_items_give_each_visitor_once():
    by_mid = identity_item(f"mid#{MID}", mid=MID, uuid=UUID, region_id=9, region_source="amcv")
    by_uuid = identity_item(f"uuid#{UUID}", mid=MID, uuid=UUID, region_id=9)
    by_customer = identity_item("cid#123#abc", mid=MID, uuid=UUID)
    planned = rows(by_mid)
    assert planned.body["request"] == {"mid": MID, "uuid": UUID, "region_id": 9}
    assert rows(by_uuid) is None
    assert rows(by_customer) is None


def test_a_visitor_known_only_by_uuid_is_read_from_its_uuid_item():
    assert rows(identity_item(f"uuid#{UUID}", uuid=UUID)).group_id == f"uuid:{UUID}"


@pytest.mark.parametrize(
    "item",
    [
        {"pk": f"mid#{MID}", "sk": "segments", "segments": ["1"]},
        {"pk": "rate#mid#x", "sk": "123", "calls": 3},
        {"pk": f"enriched#mid#{MID}", "sk": "segments"},
        identity_item(f"mid#{MID}", mid=MID, opted_out=True),
    ],
)
def test_other_profiles_items_and_opted_out_visitors_are_skipped(item):
    assert rows(item) is None


def test_messages_parse_back_into_lookup_identity():
    planned = rows({"mid": MID, "customer_ids": [{"integration_code": "crm", "id": "c"}]})
    identity = parse_enrich_message(json.loads(json.dumps(planned.body)))
    assert (identity.mid, identity.customer_ids[0].id) == (MID, "c")


def test_the_planner_needs_the_queue_and_the_table():
    with pytest.raises(FeatureDisabled) as info:
        enrichment_planner(bundle_settings(PROFILES_TABLE="profiles"))
    assert info.value.setting == "ENRICH_QUEUE_URL"
    with pytest.raises(FeatureDisabled) as info:
        enrichment_planner(bundle_settings(ENRICH_QUEUE_URL="https://sqs/q.fifo"))
    assert info.value.setting == "PROFILES_TABLE"


def test_the_planner_maps_rows_and_counts_rejections():
    planner = enrichment_planner(bundle_settings(ENRICH_QUEUE_URL="https://sqs/q.fifo", PROFILES_TABLE="profiles"))
    queue = InMemoryQueue()
    planner.publisher = queue

    class Source:
        def rows(self, cursor=None):
            for line, data in enumerate([{"mid": MID}, {"mid": "bad"}, {"uuid": UUID}], start=1):
                yield SourceRow(data, {"line": line}, {"line": line})

    planner.open_source = lambda spec: Source()
    summary = planner.plan({"job": "enrich_segments", "source": {"s3": "s3://bucket/users.jsonl"}}, None)
    assert (summary["read"], summary["queued"], summary["rejected"]) == (3, 2, 1)
    assert summary["errors"][0]["field"] == "mid"
    assert [m.group_id for m in queue.messages] == [f"mid:{MID}", f"uuid:{UUID}"]
