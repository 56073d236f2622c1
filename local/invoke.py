"""Invoke one function of the template in-process with an event file, on a temporary local stack.

    python -m local.invoke resolve_ids events/resolve_ids/direct.json
    python -m local.invoke SendSignalsFunction - < event.json       # "-" reads the event from stdin

The stack (DCS simulator, moto with the template's resources) starts on free ports, the function
runs with the same environment as under ``make run``, and its result is printed as JSON. A failed
invocation prints Lambda's error payload (``errorType``, ``errorMessage``) and exits 1.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import traceback
from typing import Any, TextIO

from local.functions import InvocationError
from local.run import LocalStack, parse_parameters, quiet_powertools_warnings


def _read_event(source: str) -> Any:
    text = sys.stdin.read() if source == "-" else open(source, encoding="utf-8").read()  # noqa: SIM115
    return json.loads(text) if text.strip() else {}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local.invoke", description=__doc__.split("\n\n")[0])
    parser.add_argument("function", help="logical ID (ResolveIdsFunction) or short name (resolve_ids)")
    parser.add_argument("event", help="JSON event file, or - for stdin")
    parser.add_argument("--param", action="append", default=[], metavar="NAME=VALUE", help="template parameter")
    parser.add_argument("--drain", action="store_true", help="run the SQS pollers and wait until the queues are empty")
    parser.add_argument("--timeout", type=float, default=60, help="seconds to wait with --drain (default 60)")
    args = parser.parse_args(argv)
    quiet_powertools_warnings()

    try:
        event = _read_event(args.event)
    except (OSError, json.JSONDecodeError) as exc:
        print(f"cannot read the event: {exc}", file=sys.stderr)
        return 2

    # The functions' logs and metrics go to stderr, as with ``sam local invoke``: stdout is the result.
    out = sys.stdout
    with contextlib.redirect_stdout(sys.stderr):
        return _invoke(args, event, out)


def _invoke(args: argparse.Namespace, event: Any, out: TextIO) -> int:
    with LocalStack(api_port=0, dcs_port=0, parameters=parse_parameters(args.param), pollers=args.drain) as stack:
        try:
            stack.function(args.function)
        except KeyError as exc:
            print(exc.args[0], file=sys.stderr)
            return 2
        try:
            result = stack.invoke(args.function, event)
        except InvocationError as exc:
            print(json.dumps(exc.payload(), indent=2), file=out, flush=True)
            return 1
        except Exception as exc:
            payload = {
                "errorType": type(exc).__name__,
                "errorMessage": str(exc),
                "stackTrace": traceback.format_exception(exc),
            }
            print(json.dumps(payload, indent=2), file=out, flush=True)
            return 1
        print(json.dumps(result, indent=2), file=out, flush=True)
        if args.drain and not stack.wait_for_queues(args.timeout):
            print(f"the queues were not empty after {args.timeout:.0f} s", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
