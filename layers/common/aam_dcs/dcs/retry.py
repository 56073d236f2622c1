"""The DCS retry rules as a urllib3 ``Retry``.

- Attempts in all = ``max_attempts`` (the first included).
- Retried: connect errors (the request never left), 5xx and 429. Never a 2xx: the DCS
  answered, even if the body is empty or full of warnings.
- A non-idempotent call (signals, trait IDs, declared IDs) is not retried once it may have
  reached the DCS: no retry on read timeouts, dropped connections or other errors after send.
- ``Retry-After`` (seconds, decimal seconds, or an HTTP date) is honoured on 429/503 up to
  ``RetryPolicy.retry_after_cap``; beyond it the call ends at once.
- Backoff is exponential with jitter from the first retry on, so one visitor's calls never
  come in a burst.
"""

from __future__ import annotations

import email.utils
import random
import re
import time
from typing import Any, Self

from urllib3 import BaseHTTPResponse
from urllib3.connectionpool import ConnectionPool
from urllib3.exceptions import InvalidHeader, MaxRetryError, ResponseError
from urllib3.util.retry import Retry

from aam_dcs.dcs.policy import RETRY_AFTER_STATUSES, RETRYABLE_STATUSES, RetryPolicy

_SECONDS = re.compile(r"^\s*[0-9]{1,9}(?:\.[0-9]{1,6})?\s*$")


class RetriesExhausted(MaxRetryError):
    """No (further) attempt is allowed; ``attempts`` says how many were made."""

    def __init__(self, pool: ConnectionPool | None, url: str | None, reason: Exception | None, attempts: int) -> None:
        super().__init__(pool, url, reason)  # type: ignore[arg-type]
        self.attempts = attempts


class DcsRetry(Retry):
    """urllib3 ``Retry`` with a cap on ``Retry-After``, decimal seconds, and jitter from the first retry."""

    RETRY_AFTER_STATUS_CODES = RETRY_AFTER_STATUSES

    def __init__(self, *args: Any, retry_after_cap: float = 5.0, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.retry_after_cap = retry_after_cap

    def new(self, **kw: Any) -> Self:
        kw.setdefault("retry_after_cap", self.retry_after_cap)
        return super().new(**kw)

    @property
    def attempts_made(self) -> int:
        """Attempts so far, the current one included."""
        return len(self.history) + 1

    def get_backoff_time(self) -> float:
        failures = len(self.history)
        if failures == 0:
            return 0.0
        backoff = self.backoff_factor * 2.0 ** (failures - 1) + random.random() * self.backoff_jitter  # noqa: S311
        return max(0.0, min(self.backoff_max, backoff))

    def parse_retry_after(self, retry_after: str) -> float:
        if _SECONDS.match(retry_after):
            return float(retry_after)
        parsed = email.utils.parsedate_tz(retry_after)
        if parsed is None:
            raise InvalidHeader(f"Invalid Retry-After header: {retry_after}")
        return max(0.0, email.utils.mktime_tz(parsed) - time.time())

    def get_retry_after(self, response: BaseHTTPResponse) -> float | None:
        """``Retry-After`` in seconds on 429/503; ``None`` when absent, elsewhere or unreadable."""
        if response.status not in RETRY_AFTER_STATUSES:
            return None
        try:
            return super().get_retry_after(response)
        except InvalidHeader:
            return None

    def increment(
        self,
        method: str | None = None,
        url: str | None = None,
        response: BaseHTTPResponse | None = None,
        error: Exception | None = None,
        _pool: ConnectionPool | None = None,
        _stacktrace: Any = None,
    ) -> Self:
        if response is not None and self._asks_too_long_a_wait(response):
            raise RetriesExhausted(_pool, url, ResponseError("Retry-After beyond the cap"), self.attempts_made)
        try:
            return super().increment(method, url, response, error, _pool, _stacktrace)
        except MaxRetryError as exhausted:
            raise RetriesExhausted(_pool, url, exhausted.reason, self.attempts_made) from exhausted.reason

    def _asks_too_long_a_wait(self, response: BaseHTTPResponse) -> bool:
        wait = self.get_retry_after(response)
        return wait is not None and wait > self.retry_after_cap


def build_retry(policy: RetryPolicy, *, max_attempts: int, idempotent: bool) -> DcsRetry:
    """The retry rules for one kind of call; reused across calls (urllib3 copies on increment)."""
    return DcsRetry(
        total=max_attempts - 1,
        connect=None,
        read=None if idempotent else 0,
        other=None if idempotent else 0,
        status=None,
        redirect=False,
        allowed_methods=None,
        status_forcelist=RETRYABLE_STATUSES,
        raise_on_status=False,
        respect_retry_after_header=True,
        backoff_factor=policy.backoff_factor,
        backoff_jitter=policy.backoff_jitter,
        backoff_max=policy.backoff_max,
        retry_after_cap=policy.retry_after_cap,
    )
