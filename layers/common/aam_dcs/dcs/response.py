"""DCS and ID-service answers as pydantic models, parsed tolerantly.

Every field is optional and tolerant of the shapes the DCS is known to send (numbers as
strings, a missing ``stuff``, an unknown region): any JSON object parses. Only a body that is
not a JSON object (the GIF pixel, JSONP, truncated JSON) fails, as :class:`DcsBadResponse`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Collection
from typing import Annotated, Any, Final, Self

from pydantic import AliasChoices, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, computed_field

from aam_dcs.dcs.codes import DISCARDING_CLASSES, ErrorClass, classify
from aam_dcs.dcs.regions import parse_region
from aam_dcs.errors import DcsBadResponse

DEFAULT_ID_SYNC_TTL: Final = 604800
DEFAULT_OPT_OUT_TTL: Final = 7200
_NUMERIC = re.compile(r"^\s*-?[0-9]{1,18}\s*$")
_TID_IN_TEXT = re.compile(rb'"tid"\s*:\s*"([A-Za-z0-9+/=_-]{1,64})"')
_NULL_IDS: Final = frozenset({"", "<null>", "null"})


def _as_text(value: object) -> str | None:
    """A string, or an integer written out (IDs keep their digits); anything else is absent."""
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value) if abs(value) < 10**60 else None
    return None


def _as_int(value: object) -> int | None:
    """An int from an int, an integral float or a numeric string; anything else is absent."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    if isinstance(value, str) and _NUMERIC.match(value):
        return int(value)
    return None


def _as_region(value: object) -> int | str | None:
    """The region value as sent (int or string), kept raw; ``dcs_region`` interprets it."""
    if isinstance(value, bool):
        return None
    return value if isinstance(value, int | str) else None


def _as_list(value: object) -> list[Any]:
    if isinstance(value, list):
        return value
    return [] if value is None else [value]


def _as_objects(value: object) -> list[dict[str, Any]]:
    return [item for item in _as_list(value) if isinstance(item, dict)]


def _as_id_list(value: object) -> list[str]:
    """Segment/trait IDs as strings, from a list of ints or strings or a comma-separated string."""
    items = value.split(",") if isinstance(value, str) else _as_list(value)
    texts = (_as_text(item) for item in items)
    return [text.strip() for text in texts if text and text.strip()]


def _as_error_items(value: object) -> list[dict[str, Any]]:
    """``{code, msg}`` entries with a usable code; entries without one are left out."""
    items = []
    for entry in _as_objects(value):
        code = _as_int(entry.get("code"))
        if code is not None:
            items.append({"code": code, "msg": _as_text(entry.get("msg")) or ""})
    return items


def _as_mid(value: object) -> str | None:
    text = _as_text(value)
    return None if text is None or text.strip() in _NULL_IDS else text


def _id_sync_ttl(value: object) -> int:
    ttl = _as_int(value)
    return DEFAULT_ID_SYNC_TTL if ttl is None else ttl


def _opt_out_ttl(value: object) -> int:
    ttl = _as_int(value)
    return DEFAULT_OPT_OUT_TTL if ttl is None else ttl


Text = Annotated[str | None, BeforeValidator(_as_text)]
Number = Annotated[int | None, BeforeValidator(_as_int)]
RawRegion = Annotated[int | str | None, BeforeValidator(_as_region)]
IdList = Annotated[list[str], BeforeValidator(_as_id_list)]


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)


class DcsErrorItem(_Lenient):
    """One DCS error: a numeric code and its message."""

    code: int
    msg: str = ""

    @property
    def error_class(self) -> ErrorClass:
        return classify(self.code)


ErrorItems = Annotated[list[DcsErrorItem], BeforeValidator(_as_error_items)]


class StuffEntry(_Lenient):
    """A cookie destination the visitor maps to: ``cn`` (name), ``cv`` (value), ``ttl`` (days), ``dmn``."""

    cn: Text = None
    cv: Text = None
    ttl: Number = None
    dmn: Text = None


class DestEntry(_Lenient):
    """A URL destination: ``c`` (URL), ``e`` (secure URL), ``y`` (``img``/``iframe``), ``id``."""

    c: Text = None
    e: Text = None
    y: Text = None
    id: Text = None


class ErrorCodes(_Lenient):
    """The transaction ID and error-code views shared by both answers; subclasses say where
    their codes come from."""

    tid: Text = None

    def error_items(self) -> list[DcsErrorItem]:
        raise NotImplementedError

    @property
    def codes(self) -> list[int]:
        return [item.code for item in self.error_items()]

    @property
    def classes(self) -> frozenset[ErrorClass]:
        return frozenset(item.error_class for item in self.error_items())

    def codes_in(self, *classes: ErrorClass) -> list[int]:
        return [item.code for item in self.items_in(*classes)]

    def items_in(self, *classes: ErrorClass) -> list[DcsErrorItem]:
        return [item for item in self.error_items() if item.error_class in classes]

    @property
    def invalid(self) -> list[int]:
        return self.codes_in(ErrorClass.INVALID)

    @property
    def transient(self) -> list[int]:
        return self.codes_in(ErrorClass.TRANSIENT)

    @property
    def warnings(self) -> list[DcsErrorItem]:
        return self.items_in(ErrorClass.WARNING)


class DcsResponse(ErrorCodes):
    """The JSON answer of ``/event`` (with ``d_rtbd=json``)."""

    uuid: Annotated[str | None, BeforeValidator(_as_mid)] = Field(
        default=None, validation_alias=AliasChoices("uuid", "u")
    )
    dcs_region_raw: RawRegion = Field(default=None, validation_alias=AliasChoices("dcs_region", "d_region", "region"))
    stuff: Annotated[list[StuffEntry], BeforeValidator(_as_objects)] = Field(default_factory=list)
    dests: Annotated[list[DestEntry], BeforeValidator(_as_objects)] = Field(default_factory=list)
    segments: IdList = Field(default_factory=list)
    traits: IdList = Field(default_factory=list)
    errors: ErrorItems = Field(default_factory=list)

    def error_items(self) -> list[DcsErrorItem]:
        return self.errors

    @computed_field  # type: ignore[prop-decorator]
    @property
    def dcs_region(self) -> int | None:
        """The serving region when it is in the region table, else ``None`` (see ``dcs_region_raw``)."""
        return parse_region(self.dcs_region_raw)

    @property
    def opted_out(self) -> bool:
        return ErrorClass.OPT_OUT in self.classes

    @property
    def blocked(self) -> bool:
        return bool(self.classes & {ErrorClass.BLOCKED, ErrorClass.DENYLISTED})

    @property
    def dropped(self) -> bool:
        return ErrorClass.DROPPED in self.classes

    @property
    def discarded(self) -> bool:
        """The DCS answered but kept none of the call's data (opt-out, block, denylist, 311)."""
        return bool(self.classes & DISCARDING_CLASSES)

    def with_header_codes(self, header_codes: Collection[int]) -> Self:
        """A copy with the ``X-Error`` codes the body did not already carry."""
        if not header_codes:
            return self
        return self.model_copy(update={"errors": _merge_codes(self.errors, header_codes)})


class IdServiceResponse(ErrorCodes):
    """The JSON answer of the ID service's ``/id``. ``ibs`` (browser ID syncs) is ignored."""

    d_mid: Annotated[str | None, BeforeValidator(_as_mid)] = None
    dcs_region_raw: RawRegion = Field(default=None, validation_alias=AliasChoices("dcs_region", "d_region"))
    id_sync_ttl: Annotated[int, BeforeValidator(_id_sync_ttl)] = DEFAULT_ID_SYNC_TTL
    d_blob: Text = None
    d_ottl: Annotated[int, BeforeValidator(_opt_out_ttl)] = DEFAULT_OPT_OUT_TTL
    d_optout: IdList = Field(default_factory=list)
    error_msg: Text = None
    errors: ErrorItems = Field(default_factory=list)
    error_message: ErrorItems = Field(default_factory=list)
    subdomain: Text = None

    def error_items(self) -> list[DcsErrorItem]:
        return [*self.errors, *self.error_message]

    @computed_field  # type: ignore[prop-decorator]
    @property
    def dcs_region(self) -> int | None:
        """The region of the data centre that served this call, when it is in the region table."""
        return parse_region(self.dcs_region_raw)

    @property
    def opted_out(self) -> bool:
        return bool(self.d_optout)

    def with_header_codes(self, header_codes: Collection[int]) -> Self:
        """A copy with the ``X-Error`` codes the body did not already carry (added to ``errors``)."""
        if not header_codes:
            return self
        known = self.error_items()
        extra = _merge_codes(known, header_codes)[len(known) :]
        return self.model_copy(update={"errors": [*self.errors, *extra]})


def _merge_codes(items: list[DcsErrorItem], header_codes: Collection[int]) -> list[DcsErrorItem]:
    """The body's errors plus any ``X-Error`` code the body did not already carry."""
    seen = {item.code for item in items}
    extra = [DcsErrorItem(code=code) for code in dict.fromkeys(header_codes) if code not in seen]
    return [*items, *extra]


def parse_error_header(value: str | None) -> list[int]:
    """Codes from an ``X-Error: 101,102`` header; junk tokens are skipped."""
    if not value:
        return []
    codes = (_as_int(token) for token in value.split(","))
    return [code for code in codes if code is not None]


def parse_event_response(body: bytes, *, x_error: str | None = None) -> DcsResponse:
    """Parse an ``/event`` body (and ``X-Error`` header) or raise :class:`DcsBadResponse`."""
    return _parse(DcsResponse, body).with_header_codes(parse_error_header(x_error))


def parse_id_response(body: bytes, *, x_error: str | None = None) -> IdServiceResponse:
    """Parse an ``/id`` body (and ``X-Error`` header) or raise :class:`DcsBadResponse`."""
    return _parse(IdServiceResponse, body).with_header_codes(parse_error_header(x_error))


def _parse[M: BaseModel](model: type[M], body: bytes) -> M:
    if not body.strip():
        raise DcsBadResponse("the DCS answered with an empty body")
    try:
        return model.model_validate_json(body)
    except ValidationError:
        raise DcsBadResponse(
            "the DCS answered with a body that is not a JSON object", tid=_tid_in_text(body), body_bytes=len(body)
        ) from None


def _tid_in_text(body: bytes) -> str | None:
    """The transaction ID from a malformed body, for support tickets."""
    match = _TID_IN_TEXT.search(body[:4096])
    return match.group(1).decode("ascii") if match else None
