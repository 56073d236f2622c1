import pytest
from hypothesis import given
from hypothesis import strategies as st

from aam_dcs.errors import InvalidRequest
from aam_dcs.signals.rules import check_key, signal_params, trait_params


def test_signals_become_pairs_in_order_with_lists_as_repeated_keys():
    params = signal_params({"c_color": "blue", "c_sizes": ["m", "l"], "p_age": 23, "vip": True, "score": 1.5})
    assert params == [
        ("c_color", "blue"),
        ("c_sizes", "m"),
        ("c_sizes", "l"),
        ("p_age", "23"),
        ("vip", "true"),
        ("score", "1.5"),
    ]


@pytest.mark.parametrize(
    "key",
    ["d_uuid", "D_MID", "d_cid_ic", "h_referer", "H_user-agent", "dcs_region", "gdpr", "GDPR_CONSENT", "d_sid"],
)
def test_reserved_keys_are_refused_whatever_their_case(key):
    with pytest.raises(InvalidRequest) as info:
        check_key(key)
    assert info.value.field == f"signals.{key}"


@pytest.mark.parametrize("key", ["123", "price!123", "a&b", "a=b", "a b", "c_col\r\nor", "", "x" * 101, "é"])
def test_malformed_keys_are_refused(key):
    with pytest.raises(InvalidRequest):
        check_key(key)


@pytest.mark.parametrize("key", ["price123", "123price", "price-123", "c_price123", "p_age", "Category"])
def test_documented_key_shapes_are_accepted(key):
    assert check_key(key) == key


@pytest.mark.parametrize(
    "value",
    ["line\nbreak", "tab\tx", "nul\x00", "soh\x01", float("nan"), float("inf"), {"a": 1}, None, [], ["x"] * 101],
)
def test_bad_values_are_refused_naming_the_signal(value):
    with pytest.raises(InvalidRequest) as info:
        signal_params({"c_x": value})
    assert info.value.field == "signals.c_x"


def test_too_many_signals_are_refused():
    with pytest.raises(InvalidRequest) as info:
        signal_params({f"k{i}": "v" for i in range(201)})
    assert info.value.field == "signals"


def test_trait_ids_are_serialized_once_each():
    assert trait_params([12345, 678, 12345]) == [("d_sid", "12345,678")]
    assert trait_params([]) == []


@given(st.dictionaries(st.text(max_size=20), st.one_of(st.text(max_size=30), st.integers(), st.booleans()), max_size=8))
def test_no_input_yields_a_reserved_or_unsafe_key(signals):
    try:
        params = signal_params(signals)
    except InvalidRequest:
        return
    for key, value in params:
        assert not key.lower().startswith(("d_", "h_"))
        assert all(c not in key for c in "&=%\r\n\x01 ")
        assert "\r" not in value
        assert "\n" not in value
