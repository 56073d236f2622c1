"""No raw declared ID, blob or consent string reaches the logs, at any level, on any path."""

import importlib
import logging

import pytest

from local.dcs_simulator import DcsSimulator, SimulatorConfig
from tests.support.events import FakeLambdaContext, api_event

pytestmark = pytest.mark.integration

SECRET_CUSTOMER_ID = "jane.doe-crm-778899"
SECRET_CONSENT = "CPsecretTCstringQQ.AbCdEf"
SECRET_BLOB = "SecretBlobValue_0123456789"
MID = "04512783304617290021837465019283746501"


@pytest.fixture
def handlers(monkeypatch):
    with DcsSimulator(config=SimulatorConfig.load(), port=0) as sim:
        monkeypatch.setenv("AAM_PARTNER", "acme")
        monkeypatch.setenv("AAM_ORG_ID", "0123456789ABCDEF01234567@AdobeOrg")
        monkeypatch.setenv("AAM_DCS_ENDPOINT", sim.url)
        monkeypatch.setenv("POWERTOOLS_LOG_LEVEL", "DEBUG")
        monkeypatch.setenv("LOG_LEVEL", "DEBUG")
        from aam_dcs.dcs.http import reset_client

        reset_client()
        importlib.reload(importlib.import_module("aam_dcs.observability"))
        yield {
            name: importlib.reload(importlib.import_module(f"functions.{name}.app"))
            for name in ("resolve_ids", "send_signals", "lookup_segments")
        }
        reset_client()


def test_logs_never_carry_declared_ids_blobs_or_consent(handlers, capsys, caplog):
    caplog.set_level(logging.DEBUG)
    identity = {
        "mid": MID,
        "region_id": 9,
        "amcv": f"MCMID|{MID}|MCAAMLH-1728004800|9|MCAAMB-1728004800|{SECRET_BLOB}",
        "customer_ids": [{"data_source_id": 123, "id": SECRET_CUSTOMER_ID, "auth_state": 1}],
    }
    send = {**identity, "signals": {"c_category": "tents"}, "consent": {"gdpr": True, "gdpr_consent": SECRET_CONSENT}}
    context = FakeLambdaContext()
    handlers["resolve_ids"].lambda_handler(dict(identity), context)
    handlers["send_signals"].lambda_handler(dict(send), context)
    handlers["send_signals"].lambda_handler({**send, "dry_run": True}, context)
    handlers["lookup_segments"].lambda_handler({**identity, "refresh": True}, context)
    handlers["send_signals"].lambda_handler(api_event("POST", "/signals", body={**send, "region_id": 5}), context)
    bad = {**send, "customer_ids": [{"data_source_id": 123, "id": SECRET_CUSTOMER_ID, "auth_state": 9}]}
    handlers["send_signals"].lambda_handler(api_event("POST", "/signals", body=bad), context)

    captured = capsys.readouterr()
    logs = captured.out + captured.err + caplog.text
    assert "DCS" in logs or "dcs" in logs, "nothing was logged: the test would prove nothing"
    for secret in (SECRET_CUSTOMER_ID, SECRET_CONSENT, SECRET_BLOB):
        assert secret not in logs
