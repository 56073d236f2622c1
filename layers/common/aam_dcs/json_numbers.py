"""Integers as JSON has them: JSON Schema counts ``1.0`` as the integer 1, so the contract does too."""

from __future__ import annotations

from typing import Final

MAX_EXACT_FLOAT_INTEGER: Final = 2**53  # past it a float no longer holds every integer


def json_integer(value: object) -> int | None:
    """An int (not a bool), or a float with no fraction that holds its integer exactly; else ``None``."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer() and abs(value) <= MAX_EXACT_FLOAT_INTEGER:
        return int(value)
    return None
