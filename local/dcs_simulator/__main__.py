"""``python -m local.dcs_simulator --host 127.0.0.1 --port 8700 --config rules.toml``."""

from __future__ import annotations

import argparse
import signal
import sys
import threading

from .config import ConfigError, SimulatorConfig
from .server import DcsSimulator


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local.dcs_simulator", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8700, help="port (default 8700; 0 picks a free one)")
    parser.add_argument("--config", default=None, help="TOML config (default: the bundled rules.toml)")
    parser.add_argument("--verbose", action="store_true", help="log every request to stderr")
    args = parser.parse_args(argv)
    try:
        config = SimulatorConfig.load(args.config)
    except ConfigError as exc:
        print(f"dcs-simulator: {exc}", file=sys.stderr)
        return 2
    stop = threading.Event()

    def _on_signal(signum: int, _frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)
    sim = DcsSimulator(config=config, host=args.host, port=args.port, verbose=args.verbose)
    try:
        url = sim.start()
    except OSError as exc:
        print(f"dcs-simulator: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    print(f"dcs-simulator: serving on {url} (config {config.source}); Ctrl-C stops", flush=True)
    try:
        while not stop.wait(0.5):
            pass
    finally:
        sim.stop()
        print("dcs-simulator: stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
