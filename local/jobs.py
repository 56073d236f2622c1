"""Run a scheduled batch job now: ``python -m local.jobs enrich`` or ``python -m local.jobs send-batch``.

With the local stack running (``make run``), the job runs there (``POST /_local/jobs/<name>``) and
its queued messages are worked by the stack's pollers. Without one, a temporary stack starts on free
ports, runs the job with the schedule's input from ``template.yaml``, works the queue until it is
empty and stops. The job's summary is printed as JSON.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys

import requests

from local.functions import InvocationError
from local.run import JOB_ALIASES, LocalStack, quiet_powertools_warnings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local.jobs", description=__doc__.split("\n\n")[0])
    parser.add_argument("job", choices=sorted(JOB_ALIASES), help="which scheduled job")
    parser.add_argument("--api-port", type=int, default=3000, help="port of a running local stack (default 3000)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--input", help="job input as JSON instead of the schedule's")
    parser.add_argument("--timeout", type=float, default=120, help="seconds to wait for the queue (temporary stack)")
    args = parser.parse_args(argv)
    quiet_powertools_warnings()
    job_input = json.loads(args.input) if args.input else None

    url = f"http://{args.host}:{args.api_port}/_local/jobs/{args.job}"
    try:
        response = requests.post(url, json=job_input, timeout=330)
    except requests.ConnectionError:
        print(f"no local stack on {args.host}:{args.api_port}; running the job on a temporary one", file=sys.stderr)
    else:
        print(json.dumps(response.json(), indent=2))
        return 0 if response.ok else 1

    # The functions' logs go to stderr: stdout is the job's summary.
    out = sys.stdout
    with contextlib.redirect_stdout(sys.stderr), LocalStack(api_port=0, dcs_port=0) as stack:
        try:
            result = stack.run_job(args.job, job_input)
        except InvocationError as exc:
            print(json.dumps(exc.payload(), indent=2), file=out)
            return 1
        except Exception as exc:
            print(json.dumps({"errorType": type(exc).__name__, "errorMessage": str(exc)}, indent=2), file=out)
            return 1
        print(json.dumps(result, indent=2), file=out, flush=True)
        if not stack.wait_for_queues(args.timeout):
            print(f"the queues were not empty after {args.timeout:.0f} s", file=sys.stderr)
            return 1
        for poller in stack.pollers:
            print(f"{poller.name}: {json.dumps(poller.stats.as_dict())}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
