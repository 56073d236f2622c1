"""Logger, Tracer and Metrics shared by the three functions.

Service name and metrics namespace come from ``POWERTOOLS_SERVICE_NAME`` and
``POWERTOOLS_METRICS_NAMESPACE`` (set in template.yaml). Logs never carry raw customer IDs,
blobs or consent strings: log ``fingerprint(value)`` when a value must be correlated.
"""

from __future__ import annotations

import hashlib

from aws_lambda_powertools import Logger, Metrics, Tracer

logger = Logger()
tracer = Tracer()
metrics = Metrics()


def fingerprint(value: str) -> str:
    """A short, stable, non-reversible tag for a sensitive value (for log correlation only)."""
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:12]
