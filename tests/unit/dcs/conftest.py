"""Fixtures for the DCS transport's pure unit tests (no network)."""

from __future__ import annotations

import pytest

from aam_dcs.config import Settings


@pytest.fixture
def settings() -> Settings:
    return Settings(partner="acme", org_id="ABC123@AdobeOrg")


@pytest.fixture
def local_settings() -> Settings:
    return Settings(partner="acme", org_id="ABC123@AdobeOrg", dcs_endpoint="http://127.0.0.1:8700")
