"""moto's server in its own process, for tests that put real load on it.

moto spends milliseconds of Python CPU on every call (an UpdateItem costs about 10 ms). In the test
process, that CPU competes with the code under test for the GIL; in a process of its own it runs in
parallel. One process per service spreads the load further.

``sqs_under_load``: the server process applies ``local.aws.patch_moto_sqs`` (moto's SQS made
thread-safe under concurrent deletes, sends and receives, and its receive cost independent of the
queue's length) and reads SQS message times from a plain ``time.time()`` clock: moto computes the
current time through several datetime conversions for every message of the queue on every call (a
FIFO queue of 1,000 messages cost ~80 ms per SendMessage); the clock gives the same wall-clock
milliseconds several times cheaper.

Usage::

    with MotoProcess() as sqs, MotoProcess() as dynamodb:
        env = {"AWS_ENDPOINT_URL_SQS": sqs.endpoint, "AWS_ENDPOINT_URL_DYNAMODB": dynamodb.endpoint}
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import Self

_LAUNCHER = """
import sys, time
sys.path.insert(0, {root!r})
import moto.sqs.models
from local.aws import patch_moto_sqs
patch_moto_sqs()
moto.sqs.models.unix_time_millis = lambda *args: time.time() * 1000.0
from moto.server import main
main(sys.argv[1:])
"""
REPO_ROOT = Path(__file__).resolve().parents[2]


class MotoProcess:
    def __init__(self, host: str = "127.0.0.1", start_timeout: float = 30.0, *, sqs_under_load: bool = False) -> None:
        self.host = host
        self.sqs_under_load = sqs_under_load
        self.port = _free_port(host)
        self.endpoint = f"http://{host}:{self.port}"
        self.start_timeout = start_timeout
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> Self:
        return self.launch().wait_until_ready()

    def launch(self) -> Self:
        """Start the process and return at once (its port is known: other processes can start meanwhile)."""
        launcher = _LAUNCHER.format(root=str(REPO_ROOT))
        program = ["-c", launcher] if self.sqs_under_load else ["-m", "moto.server"]
        self._process = subprocess.Popen(
            [sys.executable, *program, "-H", self.host, "-p", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        return self

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def wait_until_ready(self) -> Self:
        assert self._process is not None, "launch() first"
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"moto server exited with {self._process.returncode}")
            try:
                urllib.request.urlopen(f"{self.endpoint}/moto-api/", timeout=1).close()
                return self
            except (urllib.error.URLError, OSError):
                time.sleep(0.1)
        self.stop()
        raise RuntimeError("moto server did not start in time")

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        port: int = probe.getsockname()[1]
        return port
