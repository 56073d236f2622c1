"""What a DCS answer to a signal call means, and what it teaches about the visitor.

The DCS answers HTTP 200 to almost everything; the codes decide:

- no code, or only warnings (3xx...): ``sent``, the codes ride along in ``warnings``;
- opt-out (171-173, 315), blocked geography (198/199), denylisted ID (303/304/306/307) or a
  dropped call (311): ``discarded``, the codes in ``warnings``;
- a transient DCS error (0, 10, 2xx) with nothing discarded: ``DcsUnavailable`` (the DCS may have
  kept part of the call: ``may_have_processed``);
- invalid requests (1, 2, 1xx) never get here: the client raises ``DcsRejected``.

What the answer teaches is remembered through the resolver: the ``uuid``, the serving region, and
an opt-out on 171-173. A region learned from a call to the partner alias names the data centre the
alias routed the Lambda to, not the visitor's; it is recorded as a server-side region
(``id_service``), which the resolution order ranks below the visitor's own region.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

from aam_dcs.dcs.codes import ErrorClass
from aam_dcs.dcs.response import DcsResponse
from aam_dcs.errors import DcsUnavailable
from aam_dcs.ids.learning import learned_from_answer
from aam_dcs.ids.models import OPT_OUT_CODES, ResolvedIdentity
from aam_dcs.ids.validation import valid_user_id
from aam_dcs.signals.models import SendSignalsResult, SendStatus, Warning_

#: Why the DCS kept none of the call's data, by error class (the dead-letter reason on the async path).
DISCARD_REASONS: Final[dict[ErrorClass, str]] = {
    ErrorClass.DROPPED: "dropped_invalid_parameters",
    ErrorClass.DENYLISTED: "denylisted",
    ErrorClass.OPT_OUT: "opted_out",
    ErrorClass.BLOCKED: "blocked_geography",
}


@dataclass(frozen=True)
class Delivery:
    """A signal call the DCS answered. Kept as JSON by the idempotency store, so plain values only."""

    status: SendStatus
    tid: str | None = None
    codes: list[int] = field(default_factory=list)
    warnings: list[dict[str, Any]] = field(default_factory=list)
    uuid: str | None = None
    dcs_region: int | None = None
    reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "tid": self.tid,
            "codes": list(self.codes),
            "warnings": [dict(w) for w in self.warnings],
            "uuid": self.uuid,
            "dcs_region": self.dcs_region,
            "reason": self.reason,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Delivery:
        return cls(
            status=data["status"],
            tid=data.get("tid"),
            codes=[int(c) for c in data.get("codes") or []],
            warnings=[dict(w) for w in data.get("warnings") or []],
            uuid=data.get("uuid"),
            dcs_region=data.get("dcs_region"),
            reason=data.get("reason"),
        )

    @property
    def opted_out(self) -> bool:
        """The DCS reported an opt-out tag for the visitor (171-173)."""
        return any(code in OPT_OUT_CODES for code in self.codes)

    def result(self, region_id: int | None, segments: list[str] | None = None) -> SendSignalsResult:
        return SendSignalsResult(
            status=self.status,
            region_id=region_id,
            tid=self.tid,
            warnings=[Warning_.model_validate(w) for w in self.warnings],
            segments=segments,
            opted_out=self.opted_out,
        )


def interpret(response: DcsResponse) -> Delivery:
    """The delivery an answer stands for; transient DCS errors raise ``DcsUnavailable``."""
    if response.transient and not response.discarded:
        raise DcsUnavailable(
            "the DCS reported an internal error for the call",
            codes=response.codes,
            tid=response.tid,
            may_have_processed=True,
        )
    return Delivery(
        status="discarded" if response.discarded else "sent",
        tid=response.tid,
        codes=response.codes,
        warnings=[{"code": item.code, "msg": item.msg} for item in response.errors],
        uuid=response.uuid if response.uuid and valid_user_id(response.uuid) else None,
        dcs_region=response.dcs_region,
        reason=discard_reason(response) if response.discarded else None,
    )


def discard_reason(response: DcsResponse) -> str:
    """The first discarding class found, most telling first (311 before a denylist...)."""
    classes = response.classes
    return next(reason for error_class, reason in DISCARD_REASONS.items() if error_class in classes)


def learned_identity(resolved: ResolvedIdentity, delivery: Delivery, partner_host: str) -> ResolvedIdentity | None:
    """The identity updated with what the answer taught, or ``None`` when it taught nothing new."""
    return learned_from_answer(
        resolved,
        uuid=delivery.uuid,
        dcs_region=delivery.dcs_region,
        opted_out=delivery.opted_out,
        partner_host=partner_host,
    )
