"""The retry policy's tunables, importable without the HTTP library."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

#: Statuses worth another attempt: rate limiting and server errors.
RETRYABLE_STATUSES: Final = frozenset({429, *range(500, 600)})
#: Statuses whose ``Retry-After`` header is honoured.
RETRY_AFTER_STATUSES: Final = frozenset({429, 503})


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Backoff between attempts; the number of attempts comes from the settings.

    The n-th retry waits ``backoff_factor * 2**(n-1)`` plus a random jitter of up to
    ``backoff_jitter`` seconds, capped at ``backoff_max``. A ``Retry-After`` of 429/503 is
    honoured up to ``retry_after_cap`` seconds; a longer one ends the call at once (the error
    carries ``retry_after``) rather than keeping a Lambda waiting.
    """

    backoff_factor: float = 0.1
    backoff_jitter: float = 0.1
    backoff_max: float = 1.0
    retry_after_cap: float = 5.0
