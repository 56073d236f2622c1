"""rules.toml loading and validation, and the standalone command (python -m local.dcs_simulator)."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from local.dcs_simulator import DEFAULT_CONFIG_PATH, ConfigError, SimulatorConfig

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_bundled_config_has_the_demo_rules():
    cfg = SimulatorConfig.load()
    assert cfg.source == str(DEFAULT_CONFIG_PATH)
    assert cfg.partners == {"acme": ("0123456789ABCDEF01234567@AdobeOrg",)}
    assert (cfg.gslb_region, cfg.id_service_region, cfg.sync_delay_seconds) == (9, 7, 0)
    traits = {t["id"]: t["rule"] for t in cfg.rules["traits"]}
    assert traits[1001] == 'c_category == "tents"'
    assert traits[1002] == 'c_category == "shoes"'
    assert traits[1003] == "p_age < 30"
    assert traits[1004] == "c_cart_value >= 100"
    assert traits[1005] == 'c_color contains "blue"'
    segments = {s["id"]: (s["name"], s["rule"]) for s in cfg.rules["segments"]}
    assert segments[2001] == ("Campers", "1001")
    assert segments[2002] == ("Young runners", "1002 AND 1003")
    assert segments[2003][0] == "Big spenders"
    (cookie,) = cfg.rules["destinations"]["cookie"]
    assert (cookie["cookie_name"], cookie["key"], cookie["separator"]) == ("aam_seg", "segs", ",")
    assert cfg.fault_config().error_rate == 0


def test_config_round_trips_through_its_dict_shape():
    cfg = SimulatorConfig.load()
    assert SimulatorConfig.from_dict(json.loads(json.dumps(cfg.to_dict())), source=cfg.source) == cfg


def test_a_minimal_toml_file_works(tmp_path):
    path = tmp_path / "mini.toml"
    path.write_text(
        """
        [simulator]
        gslb_region = 6
        [[partners]]
        alias = "outdoors"
        org_ids = ["AAAAAAAAAAAAAAAAAAAAAAAA@AdobeOrg", "BBBBBBBBBBBBBBBBBBBBBBBB@AdobeOrg"]
        [[traits]]
        id = 1
        rule = 'c_a == "b"'
        """
    )
    cfg = SimulatorConfig.load(path)
    assert cfg.gslb_region == 6
    assert cfg.partner_for_org("BBBBBBBBBBBBBBBBBBBBBBBB@AdobeOrg") == "outdoors"
    assert cfg.rule_set().segments == []


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ("[simulator]\ngslb_region = 5", "gslb_region"),
        ("[simulator]\nregion = 9", "unknown key"),
        ("[nonsense]\na = 1", "unknown section"),
        ("[[traits]]\nid = 1\nrule = 'c_a =='", "expected a value"),
        ("[[segments]]\nid = 1\nrule = '1 AND'", "expected"),
        ("[opt_out]\nuuids = ['123']", "38-digit"),
        ("[opt_out]\ndeclared_ids = [{ id = 'x' }]", "data_source_id"),
        ("[faults]\nerror_rate = 3", "error_rate"),
        ("[limits]\nmax_declared_ids = 0", "positive"),
        ("[[partners]]\nalias = 'Not OK'", "lower-case"),
        ("this is not toml", "not valid TOML"),
    ],
)
def test_bad_config_is_refused_with_a_clear_message(tmp_path, toml, message):
    path = tmp_path / "bad.toml"
    path.write_text(toml)
    with pytest.raises(ConfigError, match=message):
        SimulatorConfig.load(path)


def test_missing_config_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        SimulatorConfig.load(tmp_path / "missing.toml")


def test_command_line_serves_and_stops_cleanly_on_sigterm():
    proc = subprocess.Popen(
        [sys.executable, "-m", "local.dcs_simulator", "--host", "127.0.0.1", "--port", "0"],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        match = re.search(r"serving on (http://127\.0\.0\.1:\d+)", line)
        assert match, line
        with urllib.request.urlopen(f"{match.group(1)}/_admin/health", timeout=5) as response:
            assert json.load(response)["status"] == "ok"
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=5) == 0
        assert time.monotonic() - started < 3
        assert "stopped" in proc.stdout.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_command_line_rejects_a_bad_config(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text("[simulator]\ngslb_region = 5")
    proc = subprocess.run(
        [sys.executable, "-m", "local.dcs_simulator", "--port", "0", "--config", str(path)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
    )
    assert proc.returncode == 2
    assert "gslb_region" in proc.stderr
