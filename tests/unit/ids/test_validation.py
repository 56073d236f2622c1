import pytest

from aam_dcs.errors import InvalidRequest
from aam_dcs.ids import validation as rules

MID = "04512783304617290021837465019283746501"


@pytest.mark.parametrize(
    ("value", "valid"),
    [
        (MID, True),
        ("0" * 38, True),
        ("9" * 38, True),
        (MID[:-1], False),
        (MID + "1", False),
        ("NONE", False),
        ("NOTARGET", False),
        ("", False),
        ("٣" * 38, False),  # Arabic-Indic digits are digits, not ASCII digits
        ("\uff10" * 38, False),  # fullwidth digits
        (f" {MID[1:]}", False),
        (f"{MID}\n", False),
        (int(MID), False),  # never an int: leading zeros would be lost
        (None, False),
    ],
)
def test_user_id(value, valid):
    assert rules.is_user_id(value) is valid
    assert rules.valid_user_id(value) == (value if valid else None)
    if valid:
        assert rules.check_user_id(value) == value
    else:
        with pytest.raises(rules.RuleError):
            rules.check_user_id(value)


@pytest.mark.parametrize(
    ("value", "fits"),
    [
        ("9223372036854775807" * 2, True),
        ("0" * 38, True),
        ("9223372036854775808" + "0" * 19, False),
        ("0" * 19 + "9999999999999999999", False),
        ("NONE", False),
    ],
)
def test_int64_halves(value, fits):
    assert rules.fits_int64_halves(value) is fits


@pytest.mark.parametrize(("value", "region"), [(9, 9), ("9", 9), (" 12 ", 12), (3, 3), (9.0, 9)])
def test_known_regions(value, region):
    assert rules.check_region(value) == region


@pytest.mark.parametrize("value", [0, 1, 5, 10, 13, -9, "abc", "", True, 9.5, None, "٩", "9.0"])
def test_unknown_regions_are_refused_with_the_known_list(value):
    with pytest.raises(rules.RuleError) as info:
        rules.check_region(value)
    assert info.value.rule == "must be a known DCS region ID: 3, 4, 6, 7, 8, 9, 11, 12"


@pytest.mark.parametrize(
    ("value", "valid"),
    [
        ("abcXYZ019_-", True),
        ("a" * 512, True),
        ("a" * 513, False),
        ("", False),
        ("a+b", False),
        ("a/b", False),
        ("a=", False),
        ("é", False),
        (None, False),
    ],
)
def test_blob(value, valid):
    assert rules.clean_blob(value) == (value if valid else None)
    if not valid:
        with pytest.raises(rules.RuleError):
            rules.check_blob(value)


@pytest.mark.parametrize(
    ("value", "state"),
    [
        (0, 0),
        (1, 1),
        (2, 2),
        ("1", 1),
        ("unknown", 0),
        ("authenticated", 1),
        ("AUTHENTICATED", 1),
        ("Logged_Out", 2),
        (" logged_out ", 2),
        (1.0, 1),
    ],
)
def test_auth_state(value, state):
    assert rules.check_auth_state(value) == state


@pytest.mark.parametrize("value", [3, -1, True, False, 1.5, "logged out", "loggedout", "", None, "3", "1.0"])
def test_bad_auth_state(value):
    with pytest.raises(rules.RuleError) as info:
        rules.check_auth_state(value)
    assert info.value.rule == rules.AUTH_STATE_RULE


@pytest.mark.parametrize(
    ("value", "number"), [(1, 1), (123456, 123456), ("42", 42), (2**63 - 1, 2**63 - 1), (42.0, 42), (2.0**53, 2**53)]
)
def test_data_source_id(value, number):
    assert rules.check_data_source_id(value) == number


@pytest.mark.parametrize("value", [0, -5, True, 2**63, "abc", "-1", "", 1.5, None, "٣", 2.0**63, "42.0", float("nan")])
def test_bad_data_source_id(value):
    with pytest.raises(rules.RuleError):
        rules.check_data_source_id(value)


@pytest.mark.parametrize("value", ["crm", "x" * 255, "DSID_20914", "ünïcode"])
def test_integration_code(value):
    assert rules.check_integration_code(value) == value


@pytest.mark.parametrize("value", ["", "x" * 256, "crm\x01", "crm\n", "\x7f", "\x85"])
def test_bad_integration_code(value):
    with pytest.raises(rules.RuleError):
        rules.check_integration_code(value)


@pytest.mark.parametrize("value", ["abc", "x" * 256, "A+B/C=D", " spaced ", "ünïcode", "a b"])
def test_customer_id_value_kept_exactly(value):
    assert rules.check_customer_id_value(value) == value


@pytest.mark.parametrize("value", ["", " ", "\t", "x" * 257, "a\x01b", "a\rb", "a\nb", "a\x00", "\ud800"])
def test_bad_customer_id_value(value):
    with pytest.raises(rules.RuleError):
        rules.check_customer_id_value(value)


def test_customer_id_count():
    rules.check_customer_id_count(10)
    with pytest.raises(rules.RuleError) as info:
        rules.check_customer_id_count(11)
    assert info.value.rule == "at most 10 declared IDs per request"


def test_ids_per_data_source():
    rules.check_ids_per_data_source([("d", 1)] * 3 + [("ic", "crm")] * 3 + [("ic", "CRM")])
    with pytest.raises(rules.RuleError) as info:
        rules.check_ids_per_data_source([("d", 1), ("d", 2), ("d", 1), ("d", 1), ("d", 1)])
    assert info.value.rule == "at most 3 declared IDs per data source; entries 0, 2, 3, 4 share one"


def test_require_names_the_field():
    assert rules.require(rules.check_user_id, MID, "mid") == MID
    with pytest.raises(InvalidRequest) as info:
        rules.require(rules.check_user_id, "NOTARGET", "mid")
    assert (info.value.field, info.value.rule) == ("mid", rules.USER_ID_RULE)
    assert "NOTARGET" not in str(info.value.to_dict())
