"""The DCS wire format: one encoding pass, declared-ID values, size rules and :class:`DcsRequest`.

Encoding rules (reference 1.4): every key and value is percent-encoded exactly once, as UTF-8,
with nothing left "safe" (space is ``%20``, ``+`` is ``%2B``, ``%`` is ``%25``). A single bad
``%`` makes the DCS drop the whole call (311), so values are never pre-encoded.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final, Literal
from urllib.parse import quote

from aam_dcs.config import Settings
from aam_dcs.dcs.regions import REGION_HOSTS, region_host
from aam_dcs.errors import InvalidRequest, PayloadTooLarge

GET_LIMIT_BYTES: Final = 8192
POST_LIMIT_BYTES: Final = 32768
HEADER_LIMIT_CHARS: Final = 2048
FORM_CONTENT_TYPE: Final = "application/x-www-form-urlencoded"
DECLARED_ID_SEPARATOR: Final = "\x01"
AUTH_STATES: Final = frozenset({0, 1, 2})

DcsPath = Literal["/event", "/id"]
HttpMethod = Literal["GET", "POST"]

#: Keys that identify the visitor or steer the response, but carry no data the DCS records
#: as a trait realization. Any other key (signals, ``d_sid``, ``d_cid``...) makes a call
#: non-idempotent.
CONTROL_KEYS: Final = frozenset(
    {
        "d_rtbd", "d_jsonv", "d_dst", "d_cts", "d_ver", "d_uuid", "d_mid", "d_orgid", "d_blob",
        "dcs_region", "d_ptfm", "d_nsid", "d_caller", "d_coppa", "d_visid_ver", "gdpr",
        "gdpr_consent", "ts", "_ts",
    }
)  # fmt: skip
FORBIDDEN_KEYS: Final = frozenset({"d_cb"})  # JSONP would wrap the JSON body

_DEMDEX_HOST = re.compile(r"^(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+demdex\.net\Z")
_PRINTABLE_LATIN1 = re.compile(r"^[\x20-\x7e\xa0-\xff]*\Z")
_UNRESERVED = re.compile(r"[A-Za-z0-9_.~-]*\Z")  # what quote() never escapes


def encode_params(pairs: Sequence[tuple[str, str]]) -> str:
    """Percent-encode key/value pairs in one pass: UTF-8, nothing safe, ``%20`` for space.

    The same text as ``urlencode(pairs, quote_via=quote, safe="")``; IDs and most signal values
    need no escaping, and skipping ``quote`` for them saves a third of building a call.
    """
    return "&".join(f"{_escaped(key)}={_escaped(value)}" for key, value in pairs)


def _escaped(text: str) -> str:
    return text if _UNRESERVED.match(text) else quote(text, safe="")


def declared_id_value(namespace: int | str, user_id: str, auth_state: int | None = None) -> str:
    """A ``d_cid``/``d_cid_ic`` value: the raw parts joined by ``\\x01`` (encoded later, once)."""
    parts = [str(namespace), user_id]
    if auth_state is not None:
        if auth_state not in AUTH_STATES:
            raise InvalidRequest("auth_state must be 0, 1 or 2", field="customer_ids", rule="auth_state in 0, 1, 2")
        parts.append(str(auth_state))
    if any(not part or DECLARED_ID_SEPARATOR in part for part in parts):
        raise InvalidRequest(
            "a declared ID part is empty or contains the \\x01 separator",
            field="customer_ids",
            rule="non-empty parts without control character 0x01",
        )
    return DECLARED_ID_SEPARATOR.join(parts)


def _encode_checked(pairs: Sequence[tuple[str, str]]) -> str:
    try:
        return encode_params(pairs)
    except UnicodeEncodeError:
        raise InvalidRequest(
            "a signal or ID is not valid Unicode text", field="signals", rule="valid Unicode text (no lone surrogates)"
        ) from None


def carries_data(params: Sequence[tuple[str, str]]) -> bool:
    """True when a call records something: signals, trait IDs or declared IDs."""
    return any(key not in CONTROL_KEYS for key, _ in params)


def check_header_value(name: str, value: str | None) -> None:
    """Refuse a forwarded header value that could split or smuggle headers."""
    if value is None:
        return
    if len(value) > HEADER_LIMIT_CHARS:
        raise PayloadTooLarge(
            f"{name} is longer than {HEADER_LIMIT_CHARS} characters",
            field=name,
            rule=f"at most {HEADER_LIMIT_CHARS} characters",
        )
    if not _PRINTABLE_LATIN1.match(value):
        raise InvalidRequest(
            f"{name} contains control characters (CR, LF...) or characters outside Latin-1",
            field=name,
            rule="printable characters only, no CR/LF or other control characters",
        )


def wire_method(path: str, query: str) -> HttpMethod:
    """GET up to 8 KB of request line, form POST up to 32 KB of body; beyond that, refuse."""
    if len(path) + 1 + len(query) <= GET_LIMIT_BYTES:
        return "GET"
    if len(query) <= POST_LIMIT_BYTES:
        return "POST"
    raise PayloadTooLarge(
        f"the DCS call would be {len(query)} bytes; the DCS accepts at most {GET_LIMIT_BYTES} bytes "
        f"by GET and {POST_LIMIT_BYTES} bytes by POST",
        field="signals",
        rule=f"encoded call at most {GET_LIMIT_BYTES} bytes (GET) or {POST_LIMIT_BYTES} bytes (POST)",
        size=len(query),
    )


def allowed_hosts(settings: Settings, path: DcsPath) -> frozenset[str]:
    """The only hosts a call may target: the region table or the partner alias for ``/event``,
    the configured ID-service host for ``/id``."""
    if path == "/id":
        return frozenset({settings.id_service_host})
    return frozenset({*REGION_HOSTS.values(), settings.partner_host})


@dataclass(frozen=True, slots=True)
class DcsRequest:
    """One DCS call, ready for the wire. Build it with :meth:`event` or :meth:`id_call`.

    ``params`` must already hold the control keys (``d_rtbd=json``...). ``query`` and
    ``method`` are computed once: the size rule is checked when the request is built,
    before any network call.
    """

    path: DcsPath
    target_host: str
    params: Sequence[tuple[str, str]]
    idempotent: bool = False
    user_agent: str | None = None
    referer: str | None = None
    query: str = field(init=False, repr=False)
    method: HttpMethod = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "params", tuple(self.params))
        self._check_shape()
        check_header_value("user_agent", self.user_agent)
        check_header_value("referer", self.referer)
        query = _encode_checked(self.params)
        object.__setattr__(self, "query", query)
        object.__setattr__(self, "method", wire_method(self.path, query))

    def _check_shape(self) -> None:
        if self.path not in ("/event", "/id"):
            raise ValueError(f"unknown DCS path {self.path!r}")
        if not _DEMDEX_HOST.match(self.target_host):
            raise ValueError("target_host must be a demdex.net host from the region table or settings")
        keys = {key for key, _ in self.params}
        if ("d_rtbd", "json") not in self.params:
            raise ValueError("params must contain d_rtbd=json: without it the DCS answers with a pixel")
        if keys & FORBIDDEN_KEYS:
            raise ValueError(f"params must not contain {sorted(keys & FORBIDDEN_KEYS)}")
        if self.idempotent and self.path == "/event" and carries_data(self.params):
            raise ValueError("an /event call with signals, trait IDs or declared IDs is not idempotent")

    @classmethod
    def event(
        cls,
        settings: Settings,
        params: Sequence[tuple[str, str]],
        *,
        region_id: int | None,
        user_agent: str | None = None,
        referer: str | None = None,
    ) -> DcsRequest:
        """An ``/event`` call to the region's host (the partner alias when the region is unknown).

        It is idempotent (retried on read timeouts) only when it carries no data.
        """
        return cls(
            path="/event",
            target_host=region_host(region_id, settings.partner_host),
            params=tuple(params),
            idempotent=not carries_data(params),
            user_agent=user_agent,
            referer=referer,
        )

    @classmethod
    def id_call(
        cls,
        settings: Settings,
        params: Sequence[tuple[str, str]],
        *,
        user_agent: str | None = None,
        referer: str | None = None,
    ) -> DcsRequest:
        """An ID-service ``/id`` call to the configured host; it is safe to repeat."""
        return cls(
            path="/id",
            target_host=settings.id_service_host,
            params=tuple(params),
            idempotent=True,
            user_agent=user_agent,
            referer=referer,
        )

    @property
    def url_path(self) -> str:
        """The request target: path and query for GET, the bare path for POST."""
        return f"{self.path}?{self.query}" if self.method == "GET" else self.path

    @property
    def body(self) -> bytes | None:
        """The form body for POST, ``None`` for GET."""
        return self.query.encode("ascii") if self.method == "POST" else None
