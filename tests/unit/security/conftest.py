"""The send_signals handler on fakes (no network, no AWS): a sender over a recording fake DCS."""

from __future__ import annotations

import importlib
import json
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import pytest

from aam_dcs.config import get_settings
from aam_dcs.jobs.signal_queue import InMemorySignalQueue
from tests.support.events import FakeLambdaContext, api_event
from tests.support.fakes import FakeDcs
from tests.support.signals import ORG, make_sender


@dataclass
class SignalsApi:
    """``POST /signals`` through the real handler; ``dcs`` records every call that left."""

    module: ModuleType
    dcs: FakeDcs

    def post(self, body: Any, headers: dict[str, str] | None = None) -> tuple[int, dict[str, Any]]:
        event = api_event("POST", "/signals", body=body, headers=headers)
        response = self.module.lambda_handler(event, FakeLambdaContext())
        return response["statusCode"], json.loads(response["body"])


@pytest.fixture
def signals_api(monkeypatch: pytest.MonkeyPatch) -> SignalsApi:
    monkeypatch.setenv("AAM_PARTNER", "acme")
    monkeypatch.setenv("AAM_ORG_ID", ORG)
    for name in ("PROFILES_TABLE", "SIGNAL_QUEUE_URL", "ENRICH_QUEUE_URL", "EVENT_BUS_NAME", "AAM_DCS_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    get_settings.cache_clear()
    module = importlib.reload(importlib.import_module("functions.send_signals.app"))
    dcs = FakeDcs()
    sender = make_sender(get_settings(), dcs=dcs, queue=InMemorySignalQueue())
    monkeypatch.setattr(module, "sender", lambda: sender)
    return SignalsApi(module, dcs)
