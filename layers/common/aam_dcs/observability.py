"""Logger, Tracer and Metrics shared by the three functions.

Service name and metrics namespace come from ``POWERTOOLS_SERVICE_NAME`` and
``POWERTOOLS_METRICS_NAMESPACE`` (set in template.yaml). Logs never carry raw customer IDs,
blobs or consent strings: log ``fingerprint(value)`` when a value must be correlated.

The tracer is Powertools' ``Tracer`` when tracing can run (inside Lambda, not turned off by
``POWERTOOLS_TRACE_DISABLED``). Otherwise it is a pass-through: Powertools' ``Tracer`` imports the
X-Ray SDK even to disable itself, and outside Lambda the SDK also builds a botocore session.
When tracing, only the libraries the bundle calls through are patched: ``httplib`` (the DCS, via
urllib3) at once, ``botocore`` when the first AWS client is built. Powertools' default patches
every library X-Ray supports, which loads botocore's whole client stack in every cold start.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer

TRUTHY = {"1", "y", "yes", "t", "true", "on"}


def tracing_enabled(environ: dict[str, str] | None = None) -> bool:
    """Powertools' rule: trace inside Lambda only, never in SAM or Chalice local, unless disabled."""
    env = os.environ if environ is None else environ
    if env.get("POWERTOOLS_TRACE_DISABLED", "false").strip().lower() in TRUTHY:
        return False
    emulated = env.get("AWS_SAM_LOCAL") or env.get("AWS_CHALICE_CLI_MODE")
    return bool(env.get("LAMBDA_TASK_ROOT")) and not emulated


class PassThroughTracer:
    """Tracer's decorators and calls, doing nothing: used where tracing cannot run."""

    disabled = True

    def capture_lambda_handler(self, lambda_handler: Callable[..., Any] | None = None, **_: Any) -> Any:
        return lambda_handler if lambda_handler is not None else (lambda handler: handler)

    def capture_method(self, method: Callable[..., Any] | None = None, **_: Any) -> Any:
        return method if method is not None else (lambda inner: inner)

    def put_annotation(self, key: str, value: Any) -> None:
        """Nothing to annotate without a trace."""

    def put_metadata(self, key: str, value: Any, namespace: str | None = None) -> None:
        """Nothing to attach without a trace."""


def _new_tracer() -> Tracer | PassThroughTracer:
    if not tracing_enabled():
        return PassThroughTracer()
    tracer = Tracer(auto_patch=False)
    tracer.patch(["httplib"])
    return tracer


def trace_aws_calls() -> None:
    """Trace boto3 calls from now on; called just before the first AWS client is built."""
    if isinstance(tracer, Tracer):
        tracer.patch(["botocore"])  # the X-Ray SDK patches a module once, however often asked


logger = Logger()
tracer = _new_tracer()
metrics = Metrics()


def fingerprint(value: str) -> str:
    """A short, stable, non-reversible tag for a sensitive value (for log correlation only)."""
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:12]
