"""The public identity contract: the input all three functions accept and the ``resolve_ids`` result.

JSON field names are exact (see the design's "Identity input" and "resolve_ids result").

Decisions:

- ``IdentityInput`` forbids unknown fields; the functions subclass it to add their own fields
  (``signals``, ``max_age_seconds``...) and inherit the config.
- Explicit input is refused with a clear 400, never silently dropped: an invalid ``mid``/``uuid``,
  an unknown ``region_id`` (the rule lists the known regions), a bad declared ID. Untrusted carriers
  (cookies, the store) are read tolerantly elsewhere: there an unknown region just falls back.
- ``amcv`` over 4096 characters or ``cookies`` over 8192 is ``PayloadTooLarge`` (413).
- ``dcs_response`` is a DCS answer the caller already holds: its other fields (``stuff``, ``tid``...)
  are ignored; ``dcs_region`` may be an int or a numeric string, ``d_region`` is accepted as an alias;
  a numeric region missing from the table is kept here and ignored by the resolution (the DCS may know
  regions this table does not).
- Declared IDs are echoed in the result as validated: the caller sent them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final, Literal, overload

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import PydanticCustomError

from aam_dcs.errors import InvalidRequest, PayloadTooLarge
from aam_dcs.ids import validation as rules
from aam_dcs.json_numbers import json_integer
from aam_dcs.validation import invalid_request_from

Source = Literal["request", "dcs_response", "amcv", "cookie", "store", "id_service", "default", "partner"]

MAX_AMCV_INPUT_CHARS: Final = 4096
MAX_COOKIES_INPUT_CHARS: Final = 8192
MAX_DCS_ERRORS: Final = 100
MAX_DCS_REGION: Final = 9999
OPT_OUT_CODES: Final = frozenset({171, 172, 173})
PAYLOAD_TOO_LARGE: Final = "payload_too_large"


def _apply[T](check: Callable[[Any], T], value: object) -> T:
    """Run a rule inside a validator; the rule becomes the pydantic message, so it reaches the caller."""
    try:
        return check(value)
    except rules.RuleError as exc:
        raise PydanticCustomError(exc.kind, exc.rule) from None


def _optional_user_id(value: object) -> str | None:
    return None if value is None else _apply(rules.check_user_id, value)


def _capped_text(value: object, cap: int) -> object:
    if isinstance(value, str) and len(value) > cap:
        raise PydanticCustomError(PAYLOAD_TOO_LARGE, f"must be at most {cap} characters")
    return value


class CustomerId(BaseModel):
    """A declared ID: ``data_source_id`` (sent as ``d_cid``) or ``integration_code`` (``d_cid_ic``), not both."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, str_strip_whitespace=False, json_schema_extra=rules.ONE_NAMESPACE_SCHEMA
    )

    data_source_id: int | None = Field(default=None, json_schema_extra=rules.DATA_SOURCE_SCHEMA)
    integration_code: str | None = Field(default=None, json_schema_extra=rules.INTEGRATION_CODE_SCHEMA)
    id: str = Field(json_schema_extra=rules.CUSTOMER_ID_SCHEMA)
    auth_state: int = Field(default=0, json_schema_extra=rules.AUTH_STATE_SCHEMA)

    @field_validator("data_source_id", mode="before")
    @classmethod
    def _data_source_id(cls, value: object) -> int | None:
        return None if value is None else _apply(rules.check_data_source_id, value)

    @field_validator("integration_code")
    @classmethod
    def _integration_code(cls, value: str | None) -> str | None:
        return None if value is None else _apply(rules.check_integration_code, value)

    @field_validator("id")
    @classmethod
    def _id(cls, value: str) -> str:
        return _apply(rules.check_customer_id_value, value)

    @field_validator("auth_state", mode="before")
    @classmethod
    def _auth_state(cls, value: object) -> int:
        return _apply(rules.check_auth_state, value)

    @model_validator(mode="after")
    def _one_namespace(self) -> CustomerId:
        if (self.data_source_id is None) == (self.integration_code is None):
            raise PydanticCustomError("customer_id_namespace", rules.NAMESPACE_RULE)
        return self

    @property
    def namespace(self) -> tuple[str, int | str]:
        """The data source this ID belongs to, for the per-source limit."""
        if self.data_source_id is not None:
            return ("data_source_id", self.data_source_id)
        return ("integration_code", self.integration_code or "")


class DcsErrorEntry(BaseModel):
    model_config = ConfigDict(extra="ignore")

    code: int
    msg: str = ""


class DcsResponseIdentity(BaseModel):
    """The identity part of a DCS ``/event`` answer the caller already holds."""

    model_config = ConfigDict(extra="ignore")

    uuid: str | None = Field(default=None, json_schema_extra=rules.USER_ID_SCHEMA)
    dcs_region: int | None = Field(
        default=None,
        validation_alias=AliasChoices("dcs_region", "d_region"),
        json_schema_extra={"minimum": 0, "maximum": MAX_DCS_REGION},
    )
    errors: list[DcsErrorEntry] = Field(default_factory=list, max_length=MAX_DCS_ERRORS)

    @field_validator("uuid", mode="before")
    @classmethod
    def _uuid(cls, value: object) -> str | None:
        # The DCS leaves ``uuid`` out (or empty) when it answers with an opt-out error instead.
        return None if value in (None, "") else _optional_user_id(value)

    @field_validator("dcs_region", mode="before")
    @classmethod
    def _region(cls, value: object) -> int | None:
        if value is None or value == "":
            return None
        number = json_integer(value)
        if number is not None and 0 <= number <= MAX_DCS_REGION:
            return number
        if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 4:
            return int(value)
        raise PydanticCustomError("dcs_region", "must be a DCS region ID: an integer or a numeric string")

    @property
    def error_codes(self) -> list[int]:
        return [entry.code for entry in self.errors]

    @property
    def opted_out(self) -> bool:
        """Errors 171-173 (opt-out tag, blocked cookies, NAI opt-out) come back instead of a UUID."""
        return any(code in OPT_OUT_CODES for code in self.error_codes)


class IdentityInput(BaseModel):
    """The identity fields every function accepts; every field is optional."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)

    mid: str | None = Field(default=None, json_schema_extra=rules.USER_ID_SCHEMA)
    uuid: str | None = Field(default=None, json_schema_extra=rules.USER_ID_SCHEMA)
    region_id: int | None = Field(default=None, json_schema_extra=rules.REGION_SCHEMA)
    amcv: str | None = Field(default=None, json_schema_extra={"maxLength": MAX_AMCV_INPUT_CHARS})
    cookies: str | None = Field(default=None, json_schema_extra={"maxLength": MAX_COOKIES_INPUT_CHARS})
    dcs_response: DcsResponseIdentity | None = None
    customer_ids: list[CustomerId] = Field(default_factory=list, json_schema_extra=rules.CUSTOMER_IDS_SCHEMA)
    mint: bool = False

    @field_validator("mid", "uuid", mode="before")
    @classmethod
    def _user_id(cls, value: object) -> str | None:
        return _optional_user_id(value)

    @field_validator("region_id", mode="before")
    @classmethod
    def _region(cls, value: object) -> int | None:
        return None if value is None else _apply(rules.check_region, value)

    @field_validator("amcv", mode="before")
    @classmethod
    def _amcv_cap(cls, value: object) -> object:
        return _capped_text(value, MAX_AMCV_INPUT_CHARS)

    @field_validator("cookies", mode="before")
    @classmethod
    def _cookies_cap(cls, value: object) -> object:
        return _capped_text(value, MAX_COOKIES_INPUT_CHARS)

    @field_validator("customer_ids", mode="before")
    @classmethod
    def _customer_id_count(cls, value: object) -> object:
        # Counted before the entries are validated, so a huge list costs nothing.
        if isinstance(value, list | tuple):
            _apply(rules.check_customer_id_count, len(value))
        return value

    @field_validator("customer_ids")
    @classmethod
    def _per_data_source(cls, value: list[CustomerId]) -> list[CustomerId]:
        _apply(rules.check_ids_per_data_source, [customer_id.namespace for customer_id in value])
        return value


class ResolvedIdentity(BaseModel):
    """The ``resolve_ids`` result. ``region_source``/``id_source`` say where each value came from."""

    model_config = ConfigDict(frozen=True)

    mid: str | None = None
    uuid: str | None = None
    region_id: int | None = None
    region_host: str
    region_source: Source
    blob: str | None = None
    opted_out: bool = False
    customer_ids: list[CustomerId] = Field(default_factory=list)
    id_source: Source | None = None

    @property
    def has_user_id(self) -> bool:
        return self.mid is not None or self.uuid is not None


@overload
def parse_identity(data: Mapping[str, Any]) -> IdentityInput: ...
@overload
def parse_identity[M: BaseModel](data: Mapping[str, Any], model: type[M]) -> M: ...
def parse_identity(data: Mapping[str, Any], model: type[BaseModel] = IdentityInput) -> BaseModel:
    """Validate caller input into ``model`` (``IdentityInput`` or a subclass).

    A failure raises ``InvalidRequest`` (``PayloadTooLarge`` for an oversized ``amcv``/``cookies``):
    ``field`` is the dotted path of the first error (``customer_ids[3].auth_state``), ``rule`` its
    message, ``errors`` every ``{field, rule}``. The rejected value is never echoed: it may be a raw
    customer ID.
    """
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise _invalid(exc) from None


def _invalid(exc: ValidationError) -> InvalidRequest:
    invalid = invalid_request_from(exc)
    problems: list[dict[str, str]] = invalid.details.get("errors", [])
    kinds = [error["type"] for error in exc.errors(include_input=False)]
    too_large = [problem for problem, kind in zip(problems, kinds, strict=False) if kind == PAYLOAD_TOO_LARGE]
    if not too_large:
        return invalid
    first = too_large[0]
    return PayloadTooLarge(
        f"invalid {first['field']}: {first['rule']}", field=first["field"], rule=first["rule"], errors=problems
    )
