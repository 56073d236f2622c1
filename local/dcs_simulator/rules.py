"""Trait rules, segment expressions and destinations.

Two small recursive-descent parsers (never ``eval``) share one tokenizer:

* trait rule:   ``c_category == "tents"``, ``p_age < 30``, ``c_color contains "blue"``,
  combined with ``AND`` / ``OR`` / ``NOT`` and parentheses;
* segment rule: ``1002 AND 1003``, ``1004 OR (1005 AND NOT 1001)`` over trait ids.

Precedence: ``NOT`` binds tighter than ``AND``, which binds tighter than ``OR``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

COMPARISON_OPS = ("==", "!=", "<=", ">=", "<", ">", "contains")
KEYWORDS = {"AND", "OR", "NOT", "CONTAINS"}


class RuleError(ValueError):
    """A rule, segment or destination definition that cannot be used."""


@dataclass(frozen=True)
class Token:
    kind: str  # "op", "lparen", "rparen", "string", "word", "end"
    text: str
    pos: int


_TOKEN_RE = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<lparen>\()
  | (?P<rparen>\))
  | (?P<op>==|!=|<=|>=|<|>)
  | (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
  | (?P<word>[A-Za-z0-9_.\-]+)
    """,
    re.VERBOSE,
)


def tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    pos = 0
    while pos < len(text):
        match = _TOKEN_RE.match(text, pos)
        if match is None:
            raise RuleError(f"unexpected character {text[pos]!r} at {pos} in {text!r}")
        kind = match.lastgroup or ""
        if kind != "ws":
            tokens.append(Token(kind, match.group(), pos))
        pos = match.end()
    tokens.append(Token("end", "", len(text)))
    return tokens


def _unquote(literal: str) -> str:
    return re.sub(r"\\(.)", r"\1", literal[1:-1])


class _Parser:
    """Shared recursive descent: expr := and (OR and)* ; and := unary (AND unary)* ; unary := NOT unary | atom."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = tokenize(text)
        self.i = 0

    def peek(self) -> Token:
        return self.tokens[self.i]

    def take(self) -> Token:
        token = self.tokens[self.i]
        self.i += 1
        return token

    def is_keyword(self, word: str) -> bool:
        token = self.peek()
        return token.kind == "word" and token.text.upper() == word

    def fail(self, what: str) -> RuleError:
        token = self.peek()
        found = token.text or "end of rule"
        return RuleError(f"expected {what} at {token.pos} in {self.text!r}, found {found!r}")

    def parse(self) -> tuple[Any, ...]:
        node = self.expr()
        if self.peek().kind != "end":
            raise self.fail("AND, OR or the end")
        return node

    def expr(self) -> tuple[Any, ...]:
        node = self.conjunction()
        while self.is_keyword("OR"):
            self.take()
            node = ("or", node, self.conjunction())
        return node

    def conjunction(self) -> tuple[Any, ...]:
        node = self.unary()
        while self.is_keyword("AND"):
            self.take()
            node = ("and", node, self.unary())
        return node

    def unary(self) -> tuple[Any, ...]:
        if self.is_keyword("NOT"):
            self.take()
            return ("not", self.unary())
        if self.peek().kind == "lparen":
            self.take()
            node = self.expr()
            if self.peek().kind != "rparen":
                raise self.fail("')'")
            self.take()
            return node
        return self.atom()

    def atom(self) -> tuple[Any, ...]:
        raise NotImplementedError


class _TraitRuleParser(_Parser):
    """atom := KEY OP VALUE, VALUE := "string" | number | bare word."""

    def atom(self) -> tuple[Any, ...]:
        key = self.peek()
        if key.kind != "word" or key.text.upper() in KEYWORDS:
            raise self.fail("a signal key")
        self.take()
        op_token = self.peek()
        if op_token.kind == "op":
            op = op_token.text
        elif op_token.kind == "word" and op_token.text.upper() == "CONTAINS":
            op = "contains"
        else:
            raise self.fail("one of " + ", ".join(COMPARISON_OPS))
        self.take()
        value_token = self.peek()
        if value_token.kind == "string":
            value: str | float = _unquote(value_token.text)
        elif value_token.kind == "word" and value_token.text.upper() not in KEYWORDS:
            number = _to_number(value_token.text)
            value = number if number is not None else value_token.text
        else:
            raise self.fail("a value")
        self.take()
        if op in ("<", "<=", ">", ">=") and not isinstance(value, float):
            number = _to_number(value)
            if number is None:
                raise RuleError(f"{op} needs a number, got {value!r} in {self.text!r}")
            value = number
        return ("cmp", key.text, op, value)


class _SegmentRuleParser(_Parser):
    """atom := TRAIT_ID (an integer)."""

    def atom(self) -> tuple[Any, ...]:
        token = self.peek()
        if token.kind != "word" or not token.text.isdigit():
            raise self.fail("a trait id")
        self.take()
        return ("trait", int(token.text))


def parse_trait_rule(text: str) -> tuple[Any, ...]:
    return _TraitRuleParser(text).parse()


def parse_segment_rule(text: str) -> tuple[Any, ...]:
    return _SegmentRuleParser(text).parse()


def _to_number(value: str) -> float | None:
    try:
        number = float(value.strip())
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def _strip_quotes(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value


def _value_matches(value: str, op: str, expected: str | float) -> bool:
    value = _strip_quotes(value)
    if op == "contains":
        return str(_format_value(expected)) in value
    if op in ("==", "!="):
        if isinstance(expected, float):
            number = _to_number(value)
            equal = number is not None and number == expected
        else:
            equal = value == expected
        return equal if op == "==" else not equal
    number = _to_number(value)
    if number is None or not isinstance(expected, float):
        return False
    return {
        "<": number < expected,
        "<=": number <= expected,
        ">": number > expected,
        ">=": number >= expected,
    }[op]


def _format_value(value: str | float) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def evaluate_trait_rule(node: tuple[Any, ...], signals: dict[str, list[str]]) -> bool:
    """True when the signals satisfy the rule; a comparison matches when any value of the key matches."""
    kind = node[0]
    if kind == "cmp":
        _, key, op, expected = node
        return any(_value_matches(v, op, expected) for v in signals.get(key, ()))
    if kind == "and":
        return evaluate_trait_rule(node[1], signals) and evaluate_trait_rule(node[2], signals)
    if kind == "or":
        return evaluate_trait_rule(node[1], signals) or evaluate_trait_rule(node[2], signals)
    if kind == "not":
        return not evaluate_trait_rule(node[1], signals)
    raise RuleError(f"unknown node {kind!r}")


def evaluate_segment_rule(node: tuple[Any, ...], traits: set[int]) -> bool:
    kind = node[0]
    if kind == "trait":
        return node[1] in traits
    if kind == "and":
        return evaluate_segment_rule(node[1], traits) and evaluate_segment_rule(node[2], traits)
    if kind == "or":
        return evaluate_segment_rule(node[1], traits) or evaluate_segment_rule(node[2], traits)
    if kind == "not":
        return not evaluate_segment_rule(node[1], traits)
    raise RuleError(f"unknown node {kind!r}")


@dataclass(frozen=True)
class Trait:
    id: int
    name: str
    rule: str
    ast: tuple[Any, ...]


@dataclass(frozen=True)
class Segment:
    id: int
    name: str
    rule: str
    ast: tuple[Any, ...]
    legacy_id: int


@dataclass(frozen=True)
class CookieDestination:
    id: int
    name: str
    cookie_name: str
    key: str
    separator: str
    ttl_days: int
    domain: str
    mappings: tuple[tuple[int, str], ...]  # (segment id, mapped value), in the order configured


@dataclass(frozen=True)
class UrlDestination:
    id: int
    name: str
    url: str
    secure_url: str
    type: str  # "img" or "iframe"
    delimiter: str
    mappings: tuple[tuple[int, str], ...]


def _check_keys(kind: str, item: dict[str, Any], allowed: set[str], required: set[str]) -> None:
    if not isinstance(item, dict):
        raise RuleError(f"{kind}: each entry must be a table/object, got {item!r}")
    unknown = set(item) - allowed
    if unknown:
        raise RuleError(f"{kind}: unknown key(s) {sorted(unknown)} in {item!r}")
    missing = required - set(item)
    if missing:
        raise RuleError(f"{kind}: missing key(s) {sorted(missing)} in {item!r}")


def _int(kind: str, value: Any) -> int:
    if isinstance(value, bool):
        raise RuleError(f"{kind}: expected an integer, got {value!r}")
    try:
        return int(value)
    except (TypeError, ValueError):
        raise RuleError(f"{kind}: expected an integer, got {value!r}") from None


def _mappings(kind: str, raw: Any) -> tuple[tuple[int, str], ...]:
    if not isinstance(raw, dict):
        raise RuleError(f"{kind}: mappings must be a table of segment id -> value")
    return tuple((_int(f"{kind} mapping key", seg), str(value)) for seg, value in raw.items())


class RuleSet:
    """Compiled traits, segments and destinations."""

    def __init__(
        self,
        traits: list[Trait],
        segments: list[Segment],
        cookie_destinations: list[CookieDestination],
        url_destinations: list[UrlDestination],
    ) -> None:
        self.traits = traits
        self.segments = segments
        self.cookie_destinations = cookie_destinations
        self.url_destinations = url_destinations

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RuleSet:
        """Build from the ``traits`` / ``segments`` / ``destinations`` shape of rules.toml (or its JSON twin)."""
        traits = [cls._trait(t) for t in data.get("traits", [])]
        segments = [cls._segment(s) for s in data.get("segments", [])]
        destinations = data.get("destinations", {}) or {}
        if not isinstance(destinations, dict) or set(destinations) - {"cookie", "url"}:
            raise RuleError("destinations: expected a table with 'cookie' and/or 'url' lists")
        cookies = [cls._cookie(d) for d in destinations.get("cookie", [])]
        urls = [cls._url(d) for d in destinations.get("url", [])]
        for kind, items in (("traits", traits), ("segments", segments), ("cookie destinations", cookies)):
            ids = [item.id for item in items]
            if len(ids) != len(set(ids)):
                raise RuleError(f"{kind}: duplicate ids {sorted({i for i in ids if ids.count(i) > 1})}")
        return cls(traits, segments, cookies, urls)

    @staticmethod
    def _trait(item: dict[str, Any]) -> Trait:
        _check_keys("trait", item, {"id", "name", "rule"}, {"id", "rule"})
        rule = str(item["rule"])
        return Trait(_int("trait id", item["id"]), str(item.get("name", "")), rule, parse_trait_rule(rule))

    @staticmethod
    def _segment(item: dict[str, Any]) -> Segment:
        _check_keys("segment", item, {"id", "name", "rule", "legacy_id"}, {"id", "rule"})
        seg_id = _int("segment id", item["id"])
        rule = str(item["rule"])
        legacy = _int("segment legacy_id", item.get("legacy_id", seg_id))
        return Segment(seg_id, str(item.get("name", "")), rule, parse_segment_rule(rule), legacy)

    @staticmethod
    def _cookie(item: dict[str, Any]) -> CookieDestination:
        allowed = {"id", "name", "cookie_name", "key", "separator", "ttl_days", "domain", "mappings"}
        _check_keys("cookie destination", item, allowed, {"id", "cookie_name", "mappings"})
        return CookieDestination(
            id=_int("cookie destination id", item["id"]),
            name=str(item.get("name", "")),
            cookie_name=str(item["cookie_name"]),
            key=str(item.get("key", "segs")),
            separator=str(item.get("separator", ",")),
            ttl_days=_int("cookie destination ttl_days", item.get("ttl_days", 30)),
            domain=str(item.get("domain", "aam-api.com")),
            mappings=_mappings("cookie destination", item["mappings"]),
        )

    @staticmethod
    def _url(item: dict[str, Any]) -> UrlDestination:
        allowed = {"id", "name", "url", "secure_url", "type", "delimiter", "mappings"}
        _check_keys("url destination", item, allowed, {"id", "url", "mappings"})
        kind = str(item.get("type", "img"))
        if kind not in ("img", "iframe"):
            raise RuleError(f"url destination: type must be 'img' or 'iframe', got {kind!r}")
        url = str(item["url"])
        return UrlDestination(
            id=_int("url destination id", item["id"]),
            name=str(item.get("name", "")),
            url=url,
            secure_url=str(item.get("secure_url", url)),
            type=kind,
            delimiter=str(item.get("delimiter", ";")),
            mappings=_mappings("url destination", item["mappings"]),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "traits": [{"id": t.id, "name": t.name, "rule": t.rule} for t in self.traits],
            "segments": [{"id": s.id, "name": s.name, "rule": s.rule, "legacy_id": s.legacy_id} for s in self.segments],
            "destinations": {
                "cookie": [
                    {
                        "id": d.id,
                        "name": d.name,
                        "cookie_name": d.cookie_name,
                        "key": d.key,
                        "separator": d.separator,
                        "ttl_days": d.ttl_days,
                        "domain": d.domain,
                        "mappings": {str(seg): value for seg, value in d.mappings},
                    }
                    for d in self.cookie_destinations
                ],
                "url": [
                    {
                        "id": d.id,
                        "name": d.name,
                        "url": d.url,
                        "secure_url": d.secure_url,
                        "type": d.type,
                        "delimiter": d.delimiter,
                        "mappings": {str(seg): value for seg, value in d.mappings},
                    }
                    for d in self.url_destinations
                ],
            },
        }

    # --- evaluation -------------------------------------------------------------------------------------

    def realized_traits(self, signals: dict[str, list[str]]) -> set[int]:
        """The rule-based traits these signals realize."""
        return {t.id for t in self.traits if evaluate_trait_rule(t.ast, signals)}

    def qualified_segments(self, traits: set[int]) -> list[Segment]:
        return [s for s in self.segments if evaluate_segment_rule(s.ast, traits)]

    def stuff(self, segment_ids: set[int]) -> list[dict[str, Any]]:
        """One ``stuff`` entry per cookie destination the user's segments map to."""
        entries = []
        for dest in self.cookie_destinations:
            values = [quote(value, safe="") for seg, value in dest.mappings if seg in segment_ids]
            if values:
                entries.append(
                    {
                        "cn": dest.cookie_name,
                        "cv": f"{dest.key}={dest.separator.join(values)}",
                        "ttl": dest.ttl_days,
                        "dmn": dest.domain,
                    }
                )
        return entries

    def dests(self, segment_ids: set[int], *, uuid: str, region: int, now: float, rnd: int) -> list[dict[str, Any]]:
        """One ``dests`` entry per URL destination the user's segments map to (macros filled in)."""
        entries = []
        for dest in self.url_destinations:
            values = [value for seg, value in dest.mappings if seg in segment_ids]
            if not values:
                continue
            alias = quote(dest.delimiter.join(values), safe="")
            macros = {
                "%alias%": alias,
                "%did%": uuid,
                "%region%": str(region),
                "%rnd%": str(rnd),
                "%timestamp%": str(int(now * 1000)),
            }

            def fill(template: str, proto: str, macros: dict[str, str] = macros) -> str:
                for macro, value in {**macros, "%http_proto%": proto}.items():
                    template = template.replace(macro, value)
                return template

            entries.append(
                {
                    "id": f"{dest.id}-{int(now)}",
                    "y": dest.type,
                    "c": fill(dest.url, "http"),
                    "e": fill(dest.secure_url, "https"),
                }
            )
        return entries
