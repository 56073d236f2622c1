"""JSON integers: ``1.0`` is the integer 1 (as JSON Schema has it), but only where a float holds it exactly."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aam_dcs.json_numbers import MAX_EXACT_FLOAT_INTEGER, json_integer


@given(st.integers(-MAX_EXACT_FLOAT_INTEGER, MAX_EXACT_FLOAT_INTEGER))
def test_an_integral_float_is_its_integer(number):
    assert json_integer(float(number)) == number
    assert json_integer(number) == number


@given(st.floats(allow_nan=True, allow_infinity=True).filter(lambda x: not x.is_integer()))
def test_a_float_with_a_fraction_or_no_value_is_not_an_integer(value):
    assert json_integer(value) is None


@pytest.mark.parametrize("value", [True, False, "1", None, [1], 2.0**53 + 2, -(2.0**60), 1e300])
def test_booleans_strings_and_floats_past_exactness_are_not_integers(value):
    assert json_integer(value) is None


def test_big_ints_stay_exact():
    assert json_integer(2**63 - 1) == 2**63 - 1
