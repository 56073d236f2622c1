import importlib

import pytest

ORG = "0123456789ABCDEF01234567@AdobeOrg"


@pytest.fixture
def bundle_env(monkeypatch):
    monkeypatch.setenv("AAM_PARTNER", "acme")
    monkeypatch.setenv("AAM_ORG_ID", ORG)
    monkeypatch.setenv("ALLOWED_ORIGINS", "https://shop.example")
    for name in ("PROFILES_TABLE", "SIGNAL_QUEUE_URL", "ENRICH_QUEUE_URL", "EVENT_BUS_NAME", "AAM_DCS_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def load_function(bundle_env):
    """Import ``functions/<name>/app.py`` fresh, after the environment is set."""

    def load(name):
        module = importlib.import_module(f"functions.{name}.app")
        return importlib.reload(module)

    return load
