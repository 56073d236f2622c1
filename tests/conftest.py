"""Test-wide defaults: no real AWS credentials, no X-Ray, settings re-read for every test."""

import os

import pytest

os.environ.setdefault("AWS_DEFAULT_REGION", "us-west-2")
os.environ["AWS_ACCESS_KEY_ID"] = "testing"
os.environ["AWS_SECRET_ACCESS_KEY"] = "testing"
os.environ.pop("AWS_PROFILE", None)
os.environ["POWERTOOLS_TRACE_DISABLED"] = "true"
os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "AamDcsTests")
os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "aam-dcs-tests")
os.environ.setdefault("POWERTOOLS_DEV", "false")


@pytest.fixture(autouse=True)
def _fresh_settings():
    from aam_dcs.config import get_settings

    get_settings.cache_clear()
    yield
    get_settings.cache_clear()
