"""Starting and stopping the local stack: speed, clean shutdown, environment restored, the CLIs."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from local.run import LocalStack, rate_seconds

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_start_stop_restores_the_environment() -> None:
    before = dict(os.environ)
    stack = LocalStack(api_port=0, dcs_port=0)
    started = time.monotonic()
    with stack:
        assert time.monotonic() - started < 10  # a few seconds, not more
        assert os.environ["AWS_ENDPOINT_URL"] == stack.aws_endpoint
        assert requests.get(f"{stack.api_url}/_local/health", timeout=5).ok
        with pytest.raises(RuntimeError, match="already running"):
            LocalStack(api_port=0, dcs_port=0).start()
        api_url, simulator_url = stack.api_url, stack.simulator_url
    assert dict(os.environ) == before
    for url in (api_url, simulator_url):
        with pytest.raises(requests.ConnectionError):
            requests.get(url, timeout=2)
    # a second stack in the same process starts clean (fresh moto state, fresh handler modules)
    with LocalStack(api_port=0, dcs_port=0) as again:
        assert (
            again.client("sqs").get_queue_attributes(
                QueueUrl=again.queue_url("SignalQueue"), AttributeNames=["ApproximateNumberOfMessages"]
            )["Attributes"]["ApproximateNumberOfMessages"]
            == "0"
        )
        assert os.environ["AAM_DCS_ENDPOINT"] == again.simulator_url


def test_rate_expressions() -> None:
    assert rate_seconds("rate(1 day)") == 86400
    assert rate_seconds("rate(5 minutes)") == 300
    assert rate_seconds("cron(0 3 * * ? *)") is None


def test_run_cli_prints_urls_and_stops_cleanly_on_sigterm() -> None:
    api_port, dcs_port = free_port(), free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "local.run", "--api-port", str(api_port), "--dcs-port", str(dcs_port), "--quiet"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:  # the port is bound early; requests wait until the stack is ready
                if requests.get(f"http://127.0.0.1:{api_port}/_local/health", timeout=10).ok:
                    break
            except requests.RequestException:
                time.sleep(0.2)
        else:
            pytest.fail("the local stack did not come up")
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, stderr
    assert "Traceback" not in stderr
    assert f"http://127.0.0.1:{api_port}/" in stdout
    assert f"http://127.0.0.1:{dcs_port}" in stdout
    assert "/_admin/calls" in stdout
    assert "Stopped." in stdout


def test_invoke_cli(tmp_path: Path) -> None:
    event = tmp_path / "event.json"
    mid = "04512783304617290021837465019283746501"
    event.write_text(json.dumps({"mid": mid, "region_id": 9}))
    result = subprocess.run(
        [sys.executable, "-m", "local.invoke", "resolve_ids", str(event)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout[result.stdout.index("{") :])
    assert answer["mid"] == mid
    assert answer["region_host"] == "usw2.demdex.net"
