"""Typed errors of the bundle.

Every error a caller can see is one of these classes. The class name is part of the public
contract: direct invokers (Step Functions, other Lambdas) catch and retry by name, and the API
maps each class to one HTTP status in ``aam_dcs.api``.
"""

from __future__ import annotations

from typing import Any


class AamDcsError(Exception):
    """Base class: carries an HTTP status and a JSON-ready body."""

    http_status = 500
    retryable = False

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = {k: v for k, v in details.items() if v is not None}

    def to_dict(self) -> dict[str, Any]:
        return {"error": type(self).__name__, "message": self.message, **self.details}


class InvalidRequest(AamDcsError):
    """The caller's input breaks a rule; ``field`` names the input, ``rule`` says what is wrong."""

    http_status = 400

    def __init__(self, message: str, *, field: str | None = None, rule: str | None = None, **details: Any) -> None:
        super().__init__(message, field=field, rule=rule, **details)
        self.field = field
        self.rule = rule


class PayloadTooLarge(InvalidRequest):
    """A request body, field or the DCS call it would produce exceeds its size cap."""

    http_status = 413


class FeatureDisabled(AamDcsError):
    """The request needs an AWS resource whose setting is unset (no queue, no table...)."""

    http_status = 503

    def __init__(self, message: str, *, setting: str) -> None:
        super().__init__(message, setting=setting)
        self.setting = setting


class NotImplementedYet(AamDcsError):
    """The route exists in the contract, but the capability has not shipped in this version."""

    http_status = 501


class DcsError(AamDcsError):
    """The DCS (or the ID service) did not give a usable answer."""

    http_status = 502

    def __init__(
        self,
        message: str,
        *,
        codes: list[int] | None = None,
        tid: str | None = None,
        retry_after: float | None = None,
        **details: Any,
    ) -> None:
        super().__init__(message, codes=codes or None, tid=tid, retry_after=retry_after, **details)
        self.codes = codes or []
        self.tid = tid
        self.retry_after = retry_after


class DcsUnavailable(DcsError):
    """Transport failure, 5xx, 429 or a transient DCS error code after the retry budget."""

    retryable = True


class CircuitOpen(DcsUnavailable):
    """The bundle did not call the DCS: this host failed ``AAM_BREAKER_FAILURES`` calls in a row.

    Calls to the host fail at once until a trial call, allowed ``AAM_BREAKER_OPEN_SECONDS`` after
    the breaker opened, gets an answer. ``retry_after`` is the number of seconds until that trial;
    ``dcs_host`` names the host. Queue workers retry the message later, like any outage.
    """

    http_status = 503

    def __init__(self, message: str, *, dcs_host: str, retry_after: float) -> None:
        super().__init__(message, retry_after=round(retry_after, 3), dcs_host=dcs_host)
        self.dcs_host = dcs_host


class DcsTimeout(DcsError):
    """No answer within the timeout. On a signal call the DCS may still have processed it."""

    http_status = 504
    retryable = True


class DcsRejected(DcsError):
    """The DCS answered and refused the request as invalid (bad host, org, IDs, encoding)."""


class DcsBadResponse(DcsError):
    """The DCS answered with a body that is not the JSON it documents."""

    retryable = True


class RateLimited(AamDcsError):
    """The bundle refused to call the DCS: the visitor reached its calls-per-minute cap.

    The cap (``AAM_USER_CALLS_PER_MINUTE``) keeps every visitor far from the call rates that get
    an ID denylisted for good. ``retry_after`` is the number of seconds until the cap resets.
    """

    http_status = 429
    retryable = True

    def __init__(self, message: str, *, retry_after: float, **details: Any) -> None:
        super().__init__(message, retry_after=round(retry_after, 3), **details)
        self.retry_after = retry_after
