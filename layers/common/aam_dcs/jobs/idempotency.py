"""Run a queued DCS call at most once per key: Powertools idempotency on the profiles table.

A DCS signal call is not idempotent (every call is another trait realization), and SQS delivers
at least once. The worker runs each delivery through :meth:`Idempotency.run` with a key (the
caller's ``event_id`` or the SQS message ID, scoped by the visitor): the first run calls the DCS
and stores the answer; a redelivery of a message that was already delivered gets the stored answer
back and makes no call.

Records live in the profiles table beside the profiles (``pk`` = ``static_pk_value``, ``sk`` =
the hashed key, TTL on ``expires_at``) for ``expires_after_seconds`` (default 24 hours, longer
than any redelivery: maxReceiveCount x backoff). All records share one partition key, a hot key
at very high rates; DynamoDB's adaptive capacity splits it by sort key.

Powertools semantics, which the worker relies on:

- the work raises (an ``Exception``): the record is deleted, the next delivery runs again;
- the process dies mid-run (timeout, crash): the record stays ``INPROGRESS`` until the Lambda's
  remaining time at the start has passed (``register``), so a redelivery before that raises
  :class:`DeliveryInProgress` (retry later) and one after it runs again: a possible duplicate.

No table: :class:`NoIdempotency`, every delivery calls the DCS (at-least-once, duplicates possible
on redelivery). Powertools' idempotency module imports boto3, so it is loaded on first use.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Final, Protocol, cast

from aam_dcs.aws import new_client

DEFAULT_EXPIRY_SECONDS: Final = 24 * 3600
STATIC_PK: Final = "idempotency#send_signals"
KEY_PREFIX: Final = "send_signals"

Work = Callable[[], dict[str, Any]]


class DeliveryInProgress(Exception):
    """Another run holds the key: a live one, or one whose process died mid-call."""


class IdempotencyUnavailable(Exception):
    """The idempotency records could not be read or written (try again later)."""


class Idempotency(Protocol):
    def register(self, context: Any) -> None:
        """The Lambda context of the invocation (its remaining time bounds an in-progress record)."""
        ...

    def run(self, key: str, work: Work) -> dict[str, Any]:
        """``work()`` once per key; later runs get its stored result."""
        ...


class NoIdempotency:
    """No table configured: every run calls the work."""

    def register(self, context: Any) -> None:
        return None

    def run(self, key: str, work: Work) -> dict[str, Any]:
        return work()


class PowertoolsIdempotency:
    def __init__(
        self,
        table_name: str,
        *,
        expires_after_seconds: int = DEFAULT_EXPIRY_SECONDS,
        static_pk_value: str = STATIC_PK,
    ) -> None:
        self.table_name = table_name
        self.expires_after_seconds = expires_after_seconds
        self.static_pk_value = static_pk_value
        self._context: Any = None
        self._lock = threading.Lock()  # the worker's threads may all ask for the runner at once

    def register(self, context: Any) -> None:
        with self._lock:
            self._context = context
            if "_config" in self.__dict__:
                self._config.register_lambda_context(context)

    def run(self, key: str, work: Work) -> dict[str, Any]:
        from aws_lambda_powertools.utilities.idempotency.exceptions import (  # noqa: PLC0415
            IdempotencyAlreadyInProgressError,
            IdempotencyPersistenceLayerError,
        )

        with self._lock:
            runner = self._runner
        try:
            result: dict[str, Any] = runner(job={"key": key}, work=work)
        except IdempotencyAlreadyInProgressError:
            raise DeliveryInProgress("a delivery of this message is in progress, or died mid-call") from None
        except IdempotencyPersistenceLayerError as error:
            raise IdempotencyUnavailable(f"idempotency records unavailable: {type(error).__name__}") from None
        return result

    @cached_property
    def _config(self) -> Any:
        from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig  # noqa: PLC0415

        config = IdempotencyConfig(
            event_key_jmespath="key",
            raise_on_no_idempotency_key=True,
            expires_after_seconds=self.expires_after_seconds,
            hash_function="sha256",
        )
        if self._context is not None:
            config.register_lambda_context(self._context)
        return config

    @cached_property
    def _runner(self) -> Callable[..., Any]:
        from aws_lambda_powertools.utilities.idempotency import (  # noqa: PLC0415
            DynamoDBPersistenceLayer,
            idempotent_function,
        )

        layer = DynamoDBPersistenceLayer(
            boto3_client=new_client("dynamodb"),  # built like every other client: traced, under the lock
            table_name=self.table_name,
            key_attr="pk",
            sort_key_attr="sk",
            static_pk_value=self.static_pk_value,
            expiry_attr="expires_at",
        )

        def once(*, job: dict[str, str], work: Work) -> dict[str, Any]:
            return work()

        runner = idempotent_function(
            once, data_keyword_argument="job", persistence_store=layer, config=self._config, key_prefix=KEY_PREFIX
        )
        return cast(Callable[..., Any], runner)


@dataclass
class InMemoryIdempotency:
    """The fake, with Powertools' states: INPROGRESS while running (left behind by a crash), COMPLETED after."""

    records: dict[str, tuple[str, dict[str, Any] | None]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def register(self, context: Any) -> None:
        return None

    def run(self, key: str, work: Work) -> dict[str, Any]:
        with self._lock:
            found = self.records.get(key)
            if found is not None:
                status, result = found
                if status == "INPROGRESS":
                    raise DeliveryInProgress(key)
                return dict(result or {})
            self.records[key] = ("INPROGRESS", None)
        try:
            result = work()
        except Exception:
            with self._lock:
                self.records.pop(key, None)
            raise
        with self._lock:
            self.records[key] = ("COMPLETED", result)
        return result
