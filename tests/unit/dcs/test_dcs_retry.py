"""The retry rules on their own (no socket): Retry-After parsing, backoff, the per-kind budgets."""

from __future__ import annotations

import email.utils
import time

import pytest
from urllib3 import HTTPResponse
from urllib3.exceptions import ConnectTimeoutError, ProtocolError, ReadTimeoutError

from aam_dcs.dcs.policy import RETRYABLE_STATUSES, RetryPolicy
from aam_dcs.dcs.retry import DcsRetry, RetriesExhausted, build_retry

POLICY = RetryPolicy(backoff_factor=0.1, backoff_jitter=0.05, backoff_max=0.3, retry_after_cap=2.0)


def answer(status: int, **headers: str) -> HTTPResponse:
    return HTTPResponse(body=b"", headers={k.replace("_", "-"): v for k, v in headers.items()}, status=status)


class TestRetryAfter:
    @pytest.fixture
    def retry(self) -> DcsRetry:
        return build_retry(POLICY, max_attempts=3, idempotent=True)

    @pytest.mark.parametrize(("value", "seconds"), [("3", 3.0), ("0", 0.0), (" 0.25 ", 0.25), ("1.5", 1.5)])
    def test_seconds_and_decimal_seconds(self, retry: DcsRetry, value: str, seconds: float) -> None:
        assert retry.get_retry_after(answer(503, Retry_After=value)) == seconds

    def test_http_date(self, retry: DcsRetry) -> None:
        in_a_minute = email.utils.formatdate(time.time() + 60, usegmt=True)
        wait = retry.get_retry_after(answer(429, Retry_After=in_a_minute))
        assert wait is not None
        assert 55 <= wait <= 61

    def test_http_date_in_the_past_means_no_wait(self, retry: DcsRetry) -> None:
        assert retry.get_retry_after(answer(503, Retry_After="Wed, 21 Oct 2015 07:28:00 GMT")) == 0.0

    @pytest.mark.parametrize("value", ["soon", "-1", "1e3", ""])
    def test_unreadable_values_are_ignored(self, retry: DcsRetry, value: str) -> None:
        assert retry.get_retry_after(answer(503, Retry_After=value)) is None

    @pytest.mark.parametrize("status", [500, 502, 504, 413, 200])
    def test_only_honoured_on_429_and_503(self, retry: DcsRetry, status: int) -> None:
        assert retry.get_retry_after(answer(status, Retry_After="1")) is None

    def test_beyond_the_cap_ends_the_call_at_once(self, retry: DcsRetry) -> None:
        with pytest.raises(RetriesExhausted) as info:
            retry.increment("GET", "/event", response=answer(503, Retry_After="3"))
        assert info.value.attempts == 1

    def test_within_the_cap_counts_as_a_retry(self, retry: DcsRetry) -> None:
        after = retry.increment("GET", "/event", response=answer(429, Retry_After="2"))
        assert after.total == 1
        assert after.retry_after_cap == POLICY.retry_after_cap


class TestBackoff:
    def test_first_retry_already_waits_with_jitter(self) -> None:
        retry = build_retry(POLICY, max_attempts=5, idempotent=True)
        assert retry.get_backoff_time() == 0.0
        once = retry.increment("GET", "/event", error=ConnectTimeoutError())
        assert 0.1 <= once.get_backoff_time() <= 0.15
        twice = once.increment("GET", "/event", error=ConnectTimeoutError())
        assert 0.2 <= twice.get_backoff_time() <= 0.25

    def test_capped(self) -> None:
        retry = build_retry(POLICY, max_attempts=10, idempotent=True)
        for _ in range(5):
            retry = retry.increment("GET", "/event", error=ConnectTimeoutError())
        assert retry.get_backoff_time() == POLICY.backoff_max


class TestBudgets:
    def test_attempts_in_all_include_the_first(self) -> None:
        retry = build_retry(POLICY, max_attempts=2, idempotent=True)
        retry = retry.increment("GET", "/event", error=ConnectTimeoutError())
        with pytest.raises(RetriesExhausted) as info:
            retry.increment("GET", "/event", error=ConnectTimeoutError())
        assert info.value.attempts == 2

    def test_single_attempt(self) -> None:
        with pytest.raises(RetriesExhausted) as info:
            build_retry(POLICY, max_attempts=1, idempotent=True).increment("GET", "/event", error=ConnectTimeoutError())
        assert info.value.attempts == 1

    @pytest.mark.parametrize("error", [ReadTimeoutError(None, "/event", "timed out"), ProtocolError("aborted")])  # type: ignore[arg-type]
    def test_non_idempotent_calls_are_not_retried_after_send(self, error: Exception) -> None:
        retry = build_retry(POLICY, max_attempts=3, idempotent=False)
        with pytest.raises(RetriesExhausted) as info:
            retry.increment("GET", "/event", error=error)
        assert info.value.reason is error
        assert info.value.attempts == 1

    def test_non_idempotent_calls_are_retried_when_the_request_never_left(self) -> None:
        retry = build_retry(POLICY, max_attempts=3, idempotent=False)
        assert retry.increment("GET", "/event", error=ConnectTimeoutError()).total == 1

    def test_idempotent_calls_are_retried_after_read_timeouts(self) -> None:
        retry = build_retry(POLICY, max_attempts=3, idempotent=True)
        assert retry.increment("GET", "/id", error=ReadTimeoutError(None, "/id", "timed out")).total == 1  # type: ignore[arg-type]

    @pytest.mark.parametrize("status", [429, 500, 502, 503, 504, 599])
    def test_retryable_statuses(self, status: int) -> None:
        assert build_retry(POLICY, max_attempts=3, idempotent=False).is_retry("POST", status)

    @pytest.mark.parametrize("status", [200, 204, 301, 400, 404, 413])
    def test_statuses_never_retried(self, status: int) -> None:
        retry = build_retry(POLICY, max_attempts=3, idempotent=True)
        assert not retry.is_retry("GET", status, has_retry_after=True)

    def test_retryable_status_set(self) -> None:
        assert {429, *range(500, 600)} == RETRYABLE_STATUSES
