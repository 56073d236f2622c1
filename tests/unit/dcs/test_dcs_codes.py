from __future__ import annotations

import pytest

from aam_dcs.dcs.codes import DISCARDING_CLASSES, KNOWN_CODES, ErrorClass, classify

# Reference section 5.3, code by code.
EXPECTED = {
    0: ErrorClass.TRANSIENT,
    1: ErrorClass.INVALID,
    2: ErrorClass.INVALID,
    10: ErrorClass.TRANSIENT,
    100: ErrorClass.INVALID,
    101: ErrorClass.INVALID,
    102: ErrorClass.INVALID,
    104: ErrorClass.WARNING,
    109: ErrorClass.INVALID,
    111: ErrorClass.INVALID,
    171: ErrorClass.OPT_OUT,
    172: ErrorClass.OPT_OUT,
    173: ErrorClass.OPT_OUT,
    198: ErrorClass.BLOCKED,
    199: ErrorClass.BLOCKED,
    200: ErrorClass.TRANSIENT,
    201: ErrorClass.TRANSIENT,
    202: ErrorClass.TRANSIENT,
    203: ErrorClass.TRANSIENT,
    204: ErrorClass.TRANSIENT,
    205: ErrorClass.TRANSIENT,
    300: ErrorClass.WARNING,
    301: ErrorClass.WARNING,
    302: ErrorClass.WARNING,
    303: ErrorClass.DENYLISTED,
    304: ErrorClass.DENYLISTED,
    306: ErrorClass.DENYLISTED,
    307: ErrorClass.DENYLISTED,
    309: ErrorClass.WARNING,
    310: ErrorClass.WARNING,
    311: ErrorClass.DROPPED,
    312: ErrorClass.WARNING,
    313: ErrorClass.WARNING,
    314: ErrorClass.WARNING,
    315: ErrorClass.OPT_OUT,
}


@pytest.mark.parametrize(("code", "expected"), sorted(EXPECTED.items()))
def test_every_documented_code_has_its_class(code: int, expected: ErrorClass) -> None:
    assert classify(code) is expected


def test_the_table_holds_exactly_the_documented_codes() -> None:
    assert KNOWN_CODES == EXPECTED


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        (150, ErrorClass.INVALID),
        (250, ErrorClass.TRANSIENT),
        (305, ErrorClass.WARNING),
        (399, ErrorClass.WARNING),
        (404, ErrorClass.WARNING),
        (5, ErrorClass.WARNING),
        (-1, ErrorClass.WARNING),
        (10_000, ErrorClass.WARNING),
    ],
)
def test_unknown_codes_are_classed_by_their_hundred(code: int, expected: ErrorClass) -> None:
    assert classify(code) is expected


def test_discarding_classes_are_the_ones_that_keep_no_data() -> None:
    assert (
        frozenset({ErrorClass.OPT_OUT, ErrorClass.BLOCKED, ErrorClass.DENYLISTED, ErrorClass.DROPPED})
        == DISCARDING_CLASSES
    )


def test_error_class_values_are_stable_strings() -> None:
    assert [c.value for c in ErrorClass] == [
        "warning",
        "opt_out",
        "blocked",
        "denylisted",
        "invalid",
        "transient",
        "dropped",
    ]
