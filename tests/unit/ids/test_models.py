import json

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import Field

from aam_dcs.errors import InvalidRequest, PayloadTooLarge
from aam_dcs.ids.models import (
    CustomerId,
    DcsResponseIdentity,
    IdentityInput,
    ResolvedIdentity,
    parse_identity,
)

MID = "04512783304617290021837465019283746501"
UUID = "06151304227769720433039235178204449977"
SECRET = "raw-customer-id-never-echoed"


def refused(data, model=IdentityInput) -> InvalidRequest:
    with pytest.raises(InvalidRequest) as info:
        parse_identity(data, model)
    error = info.value
    assert SECRET not in json.dumps(error.to_dict())
    return error


def test_the_contract_example():
    identity = parse_identity(
        {
            "mid": MID,
            "uuid": UUID,
            "region_id": 9,
            "amcv": "MCMID%7C" + MID,
            "cookies": "a=1",
            "dcs_response": {"uuid": UUID, "dcs_region": 9},
            "customer_ids": [
                {"data_source_id": 123, "id": "abc", "auth_state": 1},
                {"integration_code": "crm", "id": "def"},
            ],
            "mint": False,
        }
    )
    assert identity.mid == MID
    assert identity.region_id == 9
    assert identity.dcs_response == DcsResponseIdentity(uuid=UUID, dcs_region=9)
    assert identity.customer_ids == [
        CustomerId(data_source_id=123, id="abc", auth_state=1),
        CustomerId(integration_code="crm", id="def", auth_state=0),
    ]


def test_everything_is_optional():
    assert parse_identity({}) == IdentityInput()


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"mid": "NONE"}, "mid"),
        ({"mid": "NOTARGET"}, "mid"),
        ({"mid": ""}, "mid"),
        ({"uuid": "٣" * 38}, "uuid"),
        ({"uuid": int(UUID)}, "uuid"),
        ({"mid": f" {MID}"}, "mid"),
        ({"region_id": 5}, "region_id"),
        ({"region_id": "abc"}, "region_id"),
        ({"region_id": True}, "region_id"),
        ({"dcs_response": {"uuid": "NOTARGET"}}, "dcs_response.uuid"),
        ({"dcs_response": {"dcs_region": "nine"}}, "dcs_response.dcs_region"),
        ({"dcs_response": {"dcs_region": 9.5}}, "dcs_response.dcs_region"),
        ({"dcs_response": {"errors": [{"msg": "no code"}]}}, "dcs_response.errors[0].code"),
        ({"mint": "perhaps"}, "mint"),
        ({"org_id": "X@AdobeOrg"}, "org_id"),  # the org comes from settings, never from callers
        ({"customer_ids": "abc"}, "customer_ids"),
    ],
)
def test_bad_identity_fields(data, field):
    assert refused(data).field == field


def test_unknown_region_rule_lists_the_known_regions():
    error = refused({"region_id": 10})
    assert error.rule == "must be a known DCS region ID: 3, 4, 6, 7, 8, 9, 11, 12"
    assert type(error) is InvalidRequest


@pytest.mark.parametrize(("value", "region"), [("9", 9), (12, 12), (None, None)])
def test_region_from_query_string(value, region):
    assert parse_identity({"region_id": value}).region_id == region


@pytest.mark.parametrize(("field", "cap"), [("amcv", 4096), ("cookies", 8192)])
def test_oversized_carriers_are_payload_too_large(field, cap):
    assert parse_identity({field: "a" * cap}) is not None
    with pytest.raises(PayloadTooLarge) as info:
        parse_identity({"mid": "bad", field: "a" * (cap + 1)})
    assert info.value.field == field
    assert info.value.rule == f"must be at most {cap} characters"
    assert {e["field"] for e in info.value.details["errors"]} == {"mid", field}


# --- declared IDs ------------------------------------------------------------------------------


def with_ids(*entries):
    return {"customer_ids": list(entries)}


@pytest.mark.parametrize(
    ("entry", "field", "rule_start"),
    [
        ({"data_source_id": 1, "id": SECRET, "auth_state": 3}, "customer_ids[0].auth_state", "must be 0, 1 or 2"),
        ({"data_source_id": 1, "id": SECRET, "auth_state": True}, "customer_ids[0].auth_state", "must be 0, 1 or 2"),
        ({"data_source_id": 0, "id": SECRET}, "customer_ids[0].data_source_id", "must be a positive integer"),
        ({"data_source_id": True, "id": SECRET}, "customer_ids[0].data_source_id", "must be a positive integer"),
        ({"integration_code": "", "id": SECRET}, "customer_ids[0].integration_code", "must be 1 to 255"),
        ({"integration_code": "c\x01", "id": SECRET}, "customer_ids[0].integration_code", "must be 1 to 255"),
        ({"integration_code": "c" * 256, "id": SECRET}, "customer_ids[0].integration_code", "must be 1 to 255"),
        ({"data_source_id": 1, "id": ""}, "customer_ids[0].id", "must be 1 to 256"),
        ({"data_source_id": 1, "id": SECRET + "\x01"}, "customer_ids[0].id", "must be 1 to 256"),
        ({"data_source_id": 1, "id": SECRET + "\r\n"}, "customer_ids[0].id", "must be 1 to 256"),
        ({"data_source_id": 1, "id": SECRET * 10}, "customer_ids[0].id", "must be 1 to 256"),
        ({"data_source_id": 1}, "customer_ids[0].id", "Field required"),
        ({"data_source_id": 1, "id": 12345}, "customer_ids[0].id", "Input should be a valid string"),
        ({"id": SECRET}, "customer_ids[0]", "exactly one of data_source_id and integration_code"),
        (
            {"data_source_id": 1, "integration_code": "crm", "id": SECRET},
            "customer_ids[0]",
            "exactly one of data_source_id and integration_code",
        ),
        ({"data_source_id": 1, "id": SECRET, "dpid": 2}, "customer_ids[0].dpid", "Extra inputs are not permitted"),
    ],
)
def test_each_declared_id_rule(entry, field, rule_start):
    error = refused(with_ids({"data_source_id": 7, "id": "ok"}, entry))
    assert error.field == field.replace("[0]", "[1]")
    assert error.rule.startswith(rule_start)


@pytest.mark.parametrize(
    ("value", "state"),
    [("unknown", 0), ("Authenticated", 1), ("LOGGED_OUT", 2), (0, 0), (2, 2), ("1", 1)],
)
def test_auth_state_names_are_normalized(value, state):
    identity = parse_identity(with_ids({"integration_code": "crm", "id": "a", "auth_state": value}))
    assert identity.customer_ids[0].auth_state == state


def test_declared_id_kept_exactly_as_sent():
    identity = parse_identity(with_ids({"integration_code": " crm ", "id": " A+b/C=é "}))
    assert identity.customer_ids[0].id == " A+b/C=é "
    assert identity.customer_ids[0].integration_code == " crm "


def test_ten_declared_ids_pass_and_eleven_are_refused():
    ten = [{"data_source_id": i // 3 + 1, "id": f"{SECRET}{i}"} for i in range(10)]
    assert len(parse_identity({"customer_ids": ten}).customer_ids) == 10
    error = refused({"customer_ids": [*ten, {"data_source_id": 99, "id": SECRET}]})
    assert (error.field, error.rule) == ("customer_ids", "at most 10 declared IDs per request")


def test_a_huge_list_is_refused_by_count_before_entries_are_validated():
    error = refused({"customer_ids": [{"bad": SECRET}] * 10_000})
    assert error.field == "customer_ids"
    assert len(error.details["errors"]) == 1


@pytest.mark.parametrize(
    "namespace",
    [{"data_source_id": 123}, {"integration_code": "crm"}],
)
def test_four_ids_of_one_data_source_are_refused(namespace):
    three = [{**namespace, "id": f"{SECRET}{i}"} for i in range(3)]
    assert len(parse_identity({"customer_ids": [*three, {"integration_code": "other", "id": "x"}]}).customer_ids) == 4
    error = refused({"customer_ids": [*three, {"integration_code": "other", "id": "x"}, {**namespace, "id": SECRET}]})
    assert error.field == "customer_ids"
    assert error.rule == "at most 3 declared IDs per data source; entries 0, 1, 2, 4 share one"


def test_data_source_id_and_integration_code_are_different_data_sources():
    ids = [{"data_source_id": 123, "id": f"a{i}"} for i in range(3)] + [
        {"integration_code": "123", "id": f"b{i}"} for i in range(3)
    ]
    assert len(parse_identity({"customer_ids": ids}).customer_ids) == 6


def test_every_error_is_listed_first_one_named():
    error = refused({"mid": "x", "customer_ids": [{"data_source_id": 1, "id": SECRET, "auth_state": "nope"}]})
    assert error.field == "mid"
    assert [e["field"] for e in error.details["errors"]] == ["mid", "customer_ids[0].auth_state"]
    assert error.message == f"invalid mid: {error.rule}"


def test_not_an_object():
    assert refused([1, 2]).field == "body"


# --- DCS response ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "region"),
    [
        ({"dcs_region": 9}, 9),
        ({"dcs_region": "6"}, 6),
        ({"d_region": 7}, 7),
        ({"d_region": "11"}, 11),
        ({"dcs_region": 9.0}, 9),
        ({}, None),
    ],
)
def test_dcs_region_forms(data, region):
    assert DcsResponseIdentity.model_validate(data).dcs_region == region


def test_dcs_response_ignores_other_fields_and_reads_opt_out():
    response = DcsResponseIdentity.model_validate(
        {"stuff": [], "tid": "AbCdEfGhIjk=", "uuid": "", "errors": [{"code": 171, "msg": "Encountered opt out tag"}]}
    )
    assert response.uuid is None
    assert response.opted_out
    assert response.error_codes == [171]


@pytest.mark.parametrize(("codes", "opted_out"), [([171], True), ([172], True), ([173], True), ([309, 198], False)])
def test_dcs_opt_out_codes(codes, opted_out):
    response = DcsResponseIdentity.model_validate({"errors": [{"code": c} for c in codes]})
    assert response.opted_out is opted_out


# --- subclassing and the result ------------------------------------------------------------------


class LookupInput(IdentityInput):
    max_age_seconds: int = Field(default=300, ge=0)


def test_subclasses_inherit_the_strict_config():
    assert parse_identity({"max_age_seconds": 5, "mid": MID}, LookupInput).max_age_seconds == 5
    assert refused({"max_age_seconds": 5, "signals": {}}, LookupInput).field == "signals"
    assert refused({"max_age_seconds": -1}, LookupInput).field == "max_age_seconds"


def test_result_serializes_with_the_contract_names():
    result = ResolvedIdentity(
        mid=MID, region_id=9, region_host="usw2.demdex.net", region_source="amcv", id_source="amcv"
    )
    assert set(result.model_dump()) == {
        "mid",
        "uuid",
        "region_id",
        "region_host",
        "region_source",
        "blob",
        "opted_out",
        "customer_ids",
        "id_source",
    }
    assert result.has_user_id


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=50),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20,
)
identity_keys = st.sampled_from(
    ["mid", "uuid", "region_id", "amcv", "cookies", "dcs_response", "customer_ids", "mint", "other"]
)


@given(st.dictionaries(identity_keys, json_values, max_size=6))
def test_parse_identity_only_ever_raises_invalid_request(data):
    error = outcome(data)
    assert error is None or (error.field and error.rule)


@given(
    st.lists(
        st.fixed_dictionaries(
            {"id": st.text(max_size=300)},
            optional={
                "data_source_id": st.integers() | st.text(max_size=5),
                "integration_code": st.text(max_size=300),
                "auth_state": st.integers(-1, 3) | st.sampled_from(["unknown", "AUTHENTICATED", "x"]),
            },
        ),
        max_size=12,
    )
)
def test_declared_ids_only_ever_raise_invalid_request(entries):
    error = outcome({"customer_ids": entries})
    assert error is None or error.field.startswith("customer_ids")


def outcome(data) -> InvalidRequest | None:
    """The refusal, if any: anything other than InvalidRequest propagates and fails the test."""
    try:
        parse_identity(data)
    except InvalidRequest as error:
        return error
    return None
