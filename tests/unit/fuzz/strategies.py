"""Hostile input for the parsers: arbitrary JSON with the values that break naive code.

Beyond hypothesis' own JSON-ish values: integers of thousands of digits (``json.loads`` raises a
plain ``ValueError`` past 4,300), non-finite floats, lone surrogates, CR/LF, NUL, C1 controls,
Unicode line separators, deep nesting and byte soup around JSON.
"""

from __future__ import annotations

import json
import string
from collections.abc import Callable
from typing import Any

from hypothesis import strategies as st

TRICKY_TEXT = [
    "",
    " ",
    "\r\n",
    "a\nb",
    "x\n",
    "\x00",
    "\x7f",
    "\x85",
    "\u2028",
    "\ud800",
    "%",
    "%0A",
    "%%",
    "\x01",
    "null",
    "<null>",
    "NaN",
    "1e400",
    "0" * 38,
    "9" * 40,
    "é" * 10,
    "😀",
    "a=b; c=d",
    "|||",
]

#: Stands for a 4,400-digit integer: Python cannot even format one as an int, so ``dumps`` writes it.
HUGE_INTEGER = "__huge_integer__"
HUGE_INTEGER_TEXT = "9" * 4400
BIG_INTEGERS = st.sampled_from([10**60, -(10**60), 2**63, -(2**63) - 1])

text = st.one_of(st.text(max_size=40), st.sampled_from(TRICKY_TEXT))
keys = st.one_of(st.text(max_size=12), st.sampled_from(TRICKY_TEXT))
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    BIG_INTEGERS,
    st.just(HUGE_INTEGER),
    st.floats(),  # NaN and ±inf serialize as NaN/Infinity, which Python's json reads back
    text,
)


def json_values(*, keys_from: st.SearchStrategy[str] = keys, max_leaves: int = 20) -> st.SearchStrategy[Any]:
    """Nested JSON values whose object keys come from ``keys_from``."""
    return st.recursive(
        scalars,
        lambda children: st.lists(children, max_size=4) | st.dictionaries(keys_from, children, max_size=4),
        max_leaves=max_leaves,
    )


def objects_with(field_names: list[str], *, max_size: int = 8) -> st.SearchStrategy[dict[str, Any]]:
    """JSON objects whose keys are mostly the given field names, with any JSON values."""
    names = st.one_of(st.sampled_from(field_names), keys)
    return st.dictionaries(names, json_values(keys_from=names), max_size=max_size)


def deep(depth: int, leaf: str = "1") -> str:
    """``depth`` nested arrays: past the parsers' recursion limits."""
    return "[" * depth + leaf + "]" * depth


def dumps(value: Any) -> str:
    """JSON text of ``value``, with every ``HUGE_INTEGER`` written as a 4,400-digit number."""
    return json.dumps(value, ensure_ascii=False, allow_nan=True).replace(f'"{HUGE_INTEGER}"', HUGE_INTEGER_TEXT)


def as_bytes(value: str) -> bytes:
    return value.encode("utf-8", "surrogatepass")


def attempt[T](call: Callable[[], T], *refusals: type[Exception]) -> T | Exception:
    """The call's result, or the refusal it raised; any other exception propagates (the bug)."""
    try:
        return call()
    except refusals as refusal:
        return refusal


printable = st.text(alphabet=string.printable, max_size=40)
noise = st.one_of(st.binary(max_size=60), st.sampled_from([b"\xef\xbb\xbf", b"\x00", b")]}'\n", b"cb(", b"GIF89a"]))
