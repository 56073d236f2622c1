"""The local stack: DCS simulator, moto, the template's resources, SQS pollers, API gateway, demo page.

``python -m local.run --api-port 3000 --dcs-port 8700`` (what ``make run`` does) starts it all on
loopback and prints the URLs; Ctrl-C or SIGTERM stops it cleanly.

:class:`LocalStack` is the same thing as a reusable, in-process context manager for tests and
tools::

    with LocalStack(api_port=0, dcs_port=0) as stack:
        requests.get(f"{stack.api_url}/ids")
        stack.invoke("resolve_ids", {"mint": True})
        stack.simulator.calls("/event")

``simulator_url`` and ``aws_endpoint`` use a DCS simulator and a moto server that run elsewhere
(their own processes, so their CPU does not compete with the functions for this process's GIL)
instead of starting them in this process; ``on_container`` is handed to every function (see
:class:`local.functions.LocalFunction`).

Only one LocalStack runs per process at a time: the functions run in-process and read their
settings from the process environment, which the stack sets on start and restores on stop.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import sys
import threading
import time
import warnings
from collections.abc import Mapping
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from local.aws import JOBS_BUCKET, EventTap, MotoServer, Resources, client, process_environment, provision
from local.functions import ContainerHook, LocalFunction, fresh_layer_modules
from local.gateway import Gateway, LocalEndpoints
from local.poller import SqsPoller, SqsSourceConfig, wait_until_drained
from local.template import LOCAL_REGION, LOCAL_STACK_NAME, TEMPLATE_PATH, Evaluator, Schedule, SqsSource, Template
from local.visitor import VisitorEmulator

LOCAL_PARTNER = "acme"
LOCAL_ORG_ID = "0123456789ABCDEF01234567@AdobeOrg"
#: The X-Api-Key value of routes that require a key (``--param ApiKeyRequired=true``).
LOCAL_API_KEY = "local-api-key"

#: Template parameters of the local stack (the ports-dependent ones are added at start).
LOCAL_PARAMETERS: dict[str, str] = {
    "Partner": LOCAL_PARTNER,
    "OrgId": LOCAL_ORG_ID,
    "JobSourceBucket": JOBS_BUCKET,
    "Tracing": "Disabled",  # no X-Ray daemon listens here, as under sam local
    "SendSignalsJobInput": json.dumps({"job": "send_signals", "source": {"s3": f"s3://{JOBS_BUCKET}/signals/"}}),
}

#: Short names of the scheduled jobs (``/_local/jobs/<name>``, ``make enrich``, ``make send-batch``).
JOB_ALIASES = {"enrich": "EnrichSchedule", "send-batch": "SendSignalsSchedule"}

_ACTIVE_LOCK = threading.Lock()


class LocalStack:
    """The whole bundle on loopback, in this process. Ports 0 pick free ports."""

    def __init__(
        self,
        *,
        api_port: int = 3000,
        dcs_port: int = 8700,
        host: str = "127.0.0.1",
        aws_port: int = 0,
        parameters: Mapping[str, str] | None = None,
        template_path: Path | str = TEMPLATE_PATH,
        pollers: bool = True,
        retry_delay_seconds: int = 1,
        simulator_config: Any = None,
        access_log: bool = False,
        echo_events: bool = False,
        stack_name: str = LOCAL_STACK_NAME,
        simulator_url: str | None = None,
        aws_endpoint: str | None = None,
        on_container: ContainerHook | None = None,
    ) -> None:
        self.host = host
        self.external_simulator_url = simulator_url
        self.external_aws_endpoint = aws_endpoint
        self.on_container = on_container
        self.api_port = api_port
        self.dcs_port = dcs_port
        self.aws_port = aws_port
        self.extra_parameters = dict(parameters or {})
        self.template = Template.load(template_path)
        self.run_pollers = pollers
        self.retry_delay_seconds = retry_delay_seconds
        self.simulator_config = simulator_config
        self.access_log = access_log
        self.echo_events = echo_events
        self.stack_name = stack_name

        self.simulator: Any = None
        self.gateway: Gateway | None = None
        self.moto: MotoServer | None = None
        self._aws_endpoint = ""
        self._simulator_url = ""
        self.resources: Resources | None = None
        self.evaluator: Evaluator | None = None
        self.environment: dict[str, str] = {}
        self.functions: dict[str, LocalFunction] = {}
        self.function_errors: dict[str, str] = {}
        self.pollers: list[SqsPoller] = []
        self.event_tap: EventTap | None = None
        self.schedules: list[Schedule] = []
        self.startup_seconds = 0.0
        self._exit = ExitStack()
        self._saved_env: dict[str, str | None] = {}
        self._owns_lock = False
        self._scheduler_stop = threading.Event()

    # ------------------------------------------------------------------------------ lifecycle

    def __enter__(self) -> LocalStack:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> LocalStack:
        if not _ACTIVE_LOCK.acquire(blocking=False):
            raise RuntimeError("a LocalStack is already running in this process (one at a time)")
        self._owns_lock = True
        started = time.monotonic()
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - started
        return self

    def _start(self) -> None:
        from local.dcs_simulator import DcsSimulator, SimulatorConfig

        config = self.simulator_config if self.simulator_config is not None else SimulatorConfig.load()
        if self.external_simulator_url:
            simulator_url = self.external_simulator_url.rstrip("/")
            home_region = int(getattr(config, "gslb_region", 9) or 9)
        else:
            self.simulator = DcsSimulator(config=config, host=self.host, port=self.dcs_port)
            self.simulator.start()
            simulator_url, home_region = self.simulator.url, _gslb_region(self.simulator)

        if self.external_aws_endpoint:
            # A fresh account is the caller's business (a moto server of its own, as ``make run`` has).
            endpoint = self.external_aws_endpoint.rstrip("/")
        else:
            self.moto = MotoServer(self.host, self.aws_port)
            endpoint = self.moto.start()
        self._aws_endpoint = endpoint
        self._simulator_url = simulator_url

        # The gateway binds first: the CORS allow-list needs its port (routes are set once evaluated).
        self.gateway = Gateway(
            [],
            self.invoke,
            host=self.host,
            port=self.api_port,
            local=LocalEndpoints(
                visitor=VisitorEmulator(simulator_url, LOCAL_ORG_ID, home_region=home_region),
                jobs={},
                events=self.events,
                health=self.health,
            ),
            access_log=self.access_log,
            api_key=LOCAL_API_KEY,
        )
        self.gateway.bind()  # requests wait in the backlog until everything below is ready
        self.api_port = self.gateway.port

        parameters = {
            **LOCAL_PARAMETERS,
            "DcsEndpoint": simulator_url,
            "AllowedOrigins": f"http://127.0.0.1:{self.api_port},http://localhost:{self.api_port}",
            **self.extra_parameters,
        }
        base = self.template.evaluator(parameters, stack_name=self.stack_name, sqs_endpoint=endpoint)
        self.resources = provision(self.template, base, endpoint)
        self.evaluator = self.template.evaluator(
            parameters,
            stack_name=self.stack_name,
            sqs_endpoint=endpoint,
            physical_ids=self.resources.physical_ids,
            attributes=self.resources.attributes,
        )
        self.gateway.routes = self.template.api_routes(self.evaluator)

        # The functions' environment: the template's (Globals + function) with local values, plus AWS.
        # One process hosts every function, so variables that differ between functions take the
        # Globals value (only POWERTOOLS_SERVICE_NAME does in this template).
        functions = self.template.functions()
        global_vars = (self.template.globals.get("Function") or {}).get("Environment", {}).get("Variables", {})
        env: dict[str, str] = {name: self.evaluator.string(value) for name, value in global_vars.items()}
        for function in functions:
            for name, value in self.template.environment(function, self.evaluator).items():
                env.setdefault(name, value)
        env.setdefault("POWERTOOLS_METRICS_NAMESPACE", "AamDcsLocal")
        self.environment = env
        self._set_environment({**process_environment(endpoint, LOCAL_REGION), **env})

        self._exit.enter_context(fresh_layer_modules())
        for function in functions:
            local_function = LocalFunction(
                function,
                stack_name=self.stack_name,
                memory_size=_as_int(
                    self.evaluator.evaluate(_function_property(self.template, function.logical_id, "MemorySize")), 128
                ),
                timeout=_as_int(
                    self.evaluator.evaluate(_function_property(self.template, function.logical_id, "Timeout")), 3
                ),
                on_container=self.on_container,
            )
            self.functions[function.logical_id] = local_function
            try:
                local_function.warm()
            except Exception as exc:
                self.function_errors[function.logical_id] = str(exc)

        self.event_tap = EventTap(endpoint, self.resources.tap_queue_url, echo=self.echo_events)
        self.event_tap.start()

        self.schedules = self.template.schedules(self.evaluator)
        self.gateway.local.jobs = self._job_runners()

        if self.run_pollers:
            self.start_pollers()
        self._start_scheduler()
        self.gateway.serve()

    def stop(self) -> None:
        # Ask every background loop to stop first, then wait: their long polls end together.
        self._scheduler_stop.set()
        for poller in self.pollers:
            poller.request_stop()
        if self.event_tap is not None:
            self.event_tap.request_stop()
        self.stop_pollers()
        if self.event_tap is not None:
            self.event_tap.stop()
            self.event_tap = None
        if self.gateway is not None:
            self.gateway.stop()
        if self.simulator is not None and getattr(self.simulator, "running", True):
            self.simulator.stop()
        if self.moto is not None:
            self.moto.stop()
        self._aws_endpoint = ""
        for function in self.functions.values():
            function.close()
        self._exit.close()
        self._restore_environment()
        if self._owns_lock:
            self._owns_lock = False
            _ACTIVE_LOCK.release()

    # ------------------------------------------------------------------------------ pollers

    def start_pollers(self) -> None:
        assert self.resources is not None
        assert self.evaluator is not None
        if self.pollers:
            return
        for source in self.template.sqs_sources(self.evaluator):
            if not source.enabled:
                continue
            function = self.functions[source.function_id]
            poller = SqsPoller(
                self.source_config(source),
                function.invoke,
                endpoint=self.resources.endpoint,
                context_factory=function.context,
            )
            poller.start()
            self.pollers.append(poller)

    def source_config(self, source: SqsSource, *, label: str = "") -> SqsSourceConfig:
        """How the template's event source feeds its function from its queue."""
        assert self.resources is not None
        queue = self.resources.queues[source.queue_id]
        return SqsSourceConfig(
            queue_url=queue.url,
            queue_arn=queue.arn,
            batch_size=source.batch_size,
            report_batch_item_failures=source.report_batch_item_failures,
            maximum_concurrency=source.maximum_concurrency,
            fifo=queue.fifo,
            name=f"{queue.name}{label} -> {source.function_id}",
            retry_delay_seconds=self.retry_delay_seconds,
        )

    def stop_pollers(self) -> None:
        for poller in self.pollers:
            poller.request_stop()
        for poller in self.pollers:
            poller.stop()
        self.pollers = []

    def wait_for_queues(self, timeout: float = 30) -> bool:
        """Wait until the pollers' queues are empty and no batch is being processed."""
        assert self.resources is not None
        assert self.evaluator is not None
        urls = [self.resources.queues[s.queue_id].url for s in self.template.sqs_sources(self.evaluator)]
        return wait_until_drained(self.client("sqs"), urls, self.pollers, timeout)

    # ------------------------------------------------------------------------------ using the stack

    @property
    def api_url(self) -> str:
        assert self.gateway is not None, "the stack is not running"
        return self.gateway.url

    @property
    def simulator_url(self) -> str:
        return str(self.simulator.url) if self.simulator is not None else self._simulator_url

    @property
    def aws_endpoint(self) -> str:
        assert self._aws_endpoint, "the stack is not running"
        return self._aws_endpoint

    def client(self, service: str) -> Any:
        return client(service, self.aws_endpoint)

    def function(self, name: str) -> LocalFunction:
        """A function by logical ID (``ResolveIdsFunction``) or short name (``resolve_ids``)."""
        for function in self.functions.values():
            if name in (function.logical_id, function.name):
                return function
        raise KeyError(f"no function {name!r}; known: {', '.join(self.functions)}")

    def invoke(self, name: str, event: Any) -> Any:
        """Invoke a function in-process as Lambda would (``RequestResponse``); returns its result."""
        return self.function(name).invoke(event)

    def queue_url(self, logical_id: str) -> str:
        assert self.resources is not None
        return self.resources.queues[logical_id].url

    def events(self) -> list[dict[str, Any]]:
        """``SegmentsChanged`` events put on the event bus so far (newest last)."""
        return self.event_tap.events() if self.event_tap is not None else []

    def run_job(self, name: str, job_input: Any = None) -> Any:
        """Run a scheduled job now: ``enrich``, ``send-batch`` or a schedule's logical ID."""
        runners = self._job_runners()
        if name not in runners:
            raise KeyError(f"no job {name!r}; known: {', '.join(sorted(runners))}")
        return runners[name](job_input)

    def _job_runners(self) -> dict[str, Any]:
        runners: dict[str, Any] = {}
        for schedule in self.schedules:

            def run(override: Any = None, schedule: Schedule = schedule) -> Any:
                return self.invoke(schedule.function_id, schedule.input if override is None else override)

            runners[schedule.event_id] = run
            runners[_kebab(schedule.event_id)] = run
            for alias, event_id in JOB_ALIASES.items():
                if event_id == schedule.event_id:
                    runners[alias] = run
        return runners

    def health(self) -> dict[str, Any]:
        functions = {
            f.logical_id: {
                "status": "error" if f.logical_id in self.function_errors else "ready",
                "error": self.function_errors.get(f.logical_id),
                "invocations": f.invocations,
                "errors": f.errors,
                "containers": f.cold_starts,
            }
            for f in self.functions.values()
        }
        return {
            "status": "ok",
            "api": self.api_url,
            "simulator": self.simulator_url,
            "aws_endpoint": self.aws_endpoint,
            "functions": functions,
            "pollers": {p.name: p.stats.as_dict() for p in self.pollers},
            "jobs": sorted(JOB_ALIASES),
        }

    # ------------------------------------------------------------------------------ scheduler

    def _start_scheduler(self) -> None:
        """Run ENABLED ``rate(...)`` schedules (the template ships them DISABLED)."""
        for schedule in self.schedules:
            if schedule.state != "ENABLED":
                continue
            seconds = rate_seconds(schedule.expression)
            if seconds is None:
                print(f"[scheduler] {schedule.event_id}: {schedule.expression} is not run locally (rate() only)")
                continue

            def loop(schedule: Schedule = schedule, seconds: float = seconds) -> None:
                while not self._scheduler_stop.wait(seconds):
                    try:
                        result = self.invoke(schedule.function_id, schedule.input)
                        print(f"[scheduler] {schedule.event_id}: {json.dumps(result)}", flush=True)
                    except Exception as exc:
                        print(f"[scheduler] {schedule.event_id} failed: {type(exc).__name__}: {exc}", flush=True)

            threading.Thread(target=loop, name=f"schedule-{schedule.event_id}", daemon=True).start()

    # ------------------------------------------------------------------------------ environment

    def _set_environment(self, values: Mapping[str, str | None]) -> None:
        for name, value in values.items():
            if name not in self._saved_env:
                self._saved_env[name] = os.environ.get(name)
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value

    def _restore_environment(self) -> None:
        for name, value in self._saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        self._saved_env = {}

    # ------------------------------------------------------------------------------ description

    def describe(self) -> str:
        api = self.api_url
        lines = [f"AAM DCS local stack is up ({self.startup_seconds:.1f} s)", ""]
        lines.append(f"  Demo page         {api}/")
        lines.append("  API (template.yaml routes)")
        for route in self.gateway.routes if self.gateway else []:
            key = f"  (X-Api-Key: {LOCAL_API_KEY})" if route.api_key_required else ""
            lines.append(f"    {route.method:<7} {api}{route.path:<12} -> {route.function_id}{key}")
        lines.append("  Local endpoints")
        lines.append(f"    GET     {api}/_local/health")
        lines.append(f"    GET     {api}/_local/visitor    (VisitorAPI.js stand-in: sets the AMCV cookie)")
        lines.append(f"    GET     {api}/_local/events     (SegmentsChanged events on the bus)")
        for alias in JOB_ALIASES:
            lines.append(f"    POST    {api}/_local/jobs/{alias}")
        lines.append(f"  DCS simulator     {self.simulator_url}   (call log: {self.simulator_url}/_admin/calls)")
        lines.append(f"  AWS (moto)        {self.aws_endpoint}   (region {LOCAL_REGION}, any credentials)")
        assert self.resources is not None
        for table in self.resources.tables.values():
            lines.append(f"    table    {table}")
        for queue in self.resources.queues.values():
            lines.append(f"    queue    {queue.url}")
        for bus in self.resources.event_buses.values():
            lines.append(f"    bus      {bus}")
        lines.append(f"    bucket   s3://{self.resources.jobs_bucket}/ (batch job sources)")
        for poller in self.pollers:
            lines.append(
                f"  Poller            {poller.name} (batch {poller.config.batch_size}, "
                f"concurrency {poller.config.maximum_concurrency})"
            )
        for logical_id, error in self.function_errors.items():
            lines.append(f"  ! {logical_id} cannot be loaded yet: {error}")
        return "\n".join(lines)


def _gslb_region(simulator: Any) -> int:
    return int(getattr(getattr(simulator, "config", None), "gslb_region", 9) or 9)


def _function_property(template: Template, logical_id: str, name: str) -> Any:
    props = template.resources[logical_id].get("Properties") or {}
    if name in props:
        return props[name]
    return (template.globals.get("Function") or {}).get(name)


def _as_int(value: Any, default: int) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def _kebab(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "-", name).lower()


def rate_seconds(expression: str) -> float | None:
    """Seconds between runs of a ``rate(N unit)`` expression; None for anything else."""
    match = re.fullmatch(r"\s*rate\(\s*(\d+)\s+(minute|minutes|hour|hours|day|days)\s*\)\s*", expression)
    if not match:
        return None
    unit = {"minute": 60, "hour": 3600, "day": 86400}[match.group(2).rstrip("s")]
    return int(match.group(1)) * unit


def quiet_powertools_warnings() -> None:
    """Powertools warns on every invocation that publishes no metrics; on a console that is noise."""
    warnings.filterwarnings("ignore", message="No application metrics to publish")


def parse_parameters(values: list[str]) -> dict[str, str]:
    parameters = {}
    for value in values:
        name, sep, setting = value.partition("=")
        if not sep:
            raise argparse.ArgumentTypeError(f"--param takes Name=Value, not {value!r}")
        parameters[name] = setting
    return parameters


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local.run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--api-port", type=int, default=3000, help="API gateway and demo page (default 3000)")
    parser.add_argument("--dcs-port", type=int, default=8700, help="DCS simulator (default 8700)")
    parser.add_argument("--aws-port", type=int, default=0, help="moto (default: a free port)")
    parser.add_argument("--dcs-url", help="use this running DCS simulator (loopback) instead of starting one")
    parser.add_argument("--aws-endpoint", help="use this running moto server (loopback) instead of starting one")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--param", action="append", default=[], metavar="NAME=VALUE", help="template parameter")
    parser.add_argument("--no-pollers", action="store_true", help="do not feed the SQS queues to the functions")
    parser.add_argument("--quiet", action="store_true", help="no access log")
    args = parser.parse_args(argv)
    quiet_powertools_warnings()

    stop = threading.Event()

    def on_signal(signum: int, frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    stack = LocalStack(
        api_port=args.api_port,
        dcs_port=args.dcs_port,
        aws_port=args.aws_port,
        host=args.host,
        parameters=parse_parameters(args.param),
        pollers=not args.no_pollers,
        access_log=not args.quiet,
        echo_events=True,
        simulator_url=args.dcs_url,
        aws_endpoint=args.aws_endpoint,
    )
    try:
        stack.start()
    except OSError as exc:
        print(
            f"cannot start the local stack: {exc} (is another one running? pick ports with API_PORT=/DCS_PORT=)",
            file=sys.stderr,
        )
        return 1
    try:
        print(stack.describe(), flush=True)
        print("\nPress Ctrl-C to stop.", flush=True)
        while not stop.wait(0.5):
            pass
        print("\nStopping the local stack...", flush=True)
    finally:
        stack.stop()
    print("Stopped.", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
