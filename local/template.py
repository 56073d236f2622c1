"""Read ``template.yaml`` the way the local stack needs it: functions, routes, queues, tables, parameters.

The SAM template is the single source of truth for the local stack: the gateway's routes, the
pollers' event sources, the resources created in moto and the handlers' environment all come
from here, so the local stack cannot drift from what gets deployed.

CloudFormation short-form tags (``!Ref``, ``!Sub``, ``!GetAtt``...) load as their long form
(``{"Ref": ...}``, ``{"Fn::Sub": ...}``); :class:`Evaluator` resolves the intrinsic functions
the template uses against local values (parameter overrides, local physical IDs, pseudo parameters).
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parent.parent
TEMPLATE_PATH = REPO_ROOT / "template.yaml"

LOCAL_REGION = "us-west-2"
LOCAL_ACCOUNT = "123456789012"
LOCAL_STACK_NAME = "aam-dcs-local"

FUNCTION_TYPE = "AWS::Serverless::Function"
TABLE_TYPES = ("AWS::DynamoDB::Table", "AWS::Serverless::SimpleTable")
QUEUE_TYPE = "AWS::SQS::Queue"
EVENT_BUS_TYPE = "AWS::Events::EventBus"
BUCKET_TYPE = "AWS::S3::Bucket"


class TemplateError(ValueError):
    """The template uses something the local stack cannot evaluate."""


# --------------------------------------------------------------------------------------- YAML loading


class CfnLoader(yaml.SafeLoader):  # type: ignore[misc]
    """A safe YAML loader that also understands CloudFormation's short-form tags."""


def _construct_tag(loader: yaml.SafeLoader, tag_suffix: str, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    if tag_suffix == "Ref":
        return {"Ref": value}
    if tag_suffix == "Condition":
        return {"Condition": value}
    if tag_suffix == "GetAtt" and isinstance(value, str):
        logical_id, _, attribute = value.partition(".")
        return {"Fn::GetAtt": [logical_id, attribute]}
    return {f"Fn::{tag_suffix}": value}


CfnLoader.add_multi_constructor("!", _construct_tag)


def load_yaml(path: Path | str = TEMPLATE_PATH) -> dict[str, Any]:
    """The template as plain data (intrinsic functions in their long form)."""
    with open(path, encoding="utf-8") as handle:
        data = yaml.load(handle, Loader=CfnLoader)  # noqa: S506 - CfnLoader derives from SafeLoader
    if not isinstance(data, dict):
        raise TemplateError(f"{path} is not a CloudFormation template")
    return data


# --------------------------------------------------------------------------------------- model


@dataclass(frozen=True)
class ApiRoute:
    """One ``Api`` event: ``method path`` served by a function."""

    function_id: str
    event_id: str
    path: str
    method: str
    api_key_required: bool = False

    def matches(self, path: str) -> dict[str, str] | None:
        """Path parameters when ``path`` matches this route's resource path, else None."""
        return match_path(self.path, path)


@dataclass(frozen=True)
class SqsSource:
    """One ``SQS`` event source mapping of a function."""

    function_id: str
    event_id: str
    queue_id: str  # logical ID of the queue
    batch_size: int
    report_batch_item_failures: bool
    maximum_concurrency: int
    maximum_batching_window_seconds: int
    enabled: bool


@dataclass(frozen=True)
class Schedule:
    """One ``ScheduleV2`` event: the job input the scheduler delivers to a function."""

    function_id: str
    event_id: str
    expression: str
    state: str
    input: Any  # the parsed JSON input (what the function receives)


@dataclass(frozen=True)
class Function:
    """A serverless function with its Globals merged in."""

    logical_id: str
    code_uri: str
    handler: str
    runtime: str
    timeout: int
    memory_size: int
    environment: dict[str, Any]  # unresolved values (intrinsics left in place)
    events: dict[str, dict[str, Any]]

    @property
    def name(self) -> str:
        """The short name: the folder of the code, e.g. ``resolve_ids``."""
        return Path(self.code_uri).name

    @property
    def code_dir(self) -> Path:
        return (REPO_ROOT / self.code_uri).resolve()

    @property
    def module_file(self) -> Path:
        module, _, _attr = self.handler.rpartition(".")
        return self.code_dir / (module.replace(".", "/") + ".py")

    @property
    def handler_attr(self) -> str:
        return self.handler.rpartition(".")[2]


@dataclass(frozen=True)
class Queue:
    logical_id: str
    name: str
    fifo: bool
    attributes: dict[str, str]  # SQS attribute names and string values, ready for CreateQueue
    dead_letter_queue_id: str | None
    max_receive_count: int | None


@dataclass(frozen=True)
class Table:
    logical_id: str
    name: str
    properties: dict[str, Any]  # evaluated


@dataclass(frozen=True)
class EventBus:
    logical_id: str
    name: str


@dataclass(frozen=True)
class Bucket:
    logical_id: str
    name: str


_NO_VALUE = object()


@dataclass
class Evaluator:
    """Evaluates the intrinsic functions of a template against local values.

    ``physical_ids`` maps a resource's logical ID to what ``!Ref`` returns locally (table name,
    queue URL, bus name); ``attributes`` maps ``(logical ID, attribute)`` to ``!GetAtt`` values.
    Queues, tables, buses and buckets get deterministic defaults (names, ARNs) when not given.
    """

    template: Template
    parameters: dict[str, str] = field(default_factory=dict)
    physical_ids: dict[str, str] = field(default_factory=dict)
    attributes: dict[tuple[str, str], str] = field(default_factory=dict)
    region: str = LOCAL_REGION
    account: str = LOCAL_ACCOUNT
    stack_name: str = LOCAL_STACK_NAME
    sqs_endpoint: str | None = None  # base URL of queue URLs; None: the real AWS shape

    # -- public helpers

    def parameter(self, name: str) -> str:
        if name in self.parameters:
            return str(self.parameters[name])
        definition = self.template.parameters.get(name)
        if definition is None:
            raise TemplateError(f"unknown parameter {name}")
        if "Default" not in definition:
            raise TemplateError(f"parameter {name} has no default: pass a value for it")
        return _stringify(definition["Default"])

    def condition(self, name: str) -> bool:
        try:
            definition = self.template.conditions[name]
        except KeyError:
            raise TemplateError(f"unknown condition {name}") from None
        return bool(self.evaluate(definition))

    def evaluate(self, node: Any) -> Any:
        value = self._eval(node)
        return None if value is _NO_VALUE else value

    def string(self, node: Any) -> str:
        return _stringify(self.evaluate(node))

    # -- the evaluator

    def _eval(self, node: Any) -> Any:
        if isinstance(node, list):
            return [v for v in (self._eval(item) for item in node) if v is not _NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            ((key, arg),) = node.items()
            if key == "Ref":
                return self._ref(arg)
            if key == "Condition" and isinstance(arg, str):
                return self.condition(arg)
            if key.startswith("Fn::"):
                return self._function(key[4:], arg)
        return {k: v for k, v in ((k, self._eval(v)) for k, v in node.items()) if v is not _NO_VALUE}

    def _function(self, name: str, arg: Any) -> Any:
        if name == "GetAtt":
            parts = arg.split(".", 1) if isinstance(arg, str) else self._eval(arg)
            return self._get_att(str(parts[0]), str(parts[1]))
        if name == "Sub":
            return self._sub(arg)
        if name == "If":
            condition, when_true, when_false = arg
            return self._eval(when_true if self.condition(condition) else when_false)
        if name == "Equals":
            left, right = (self._eval(v) for v in arg)
            return _stringify(left) == _stringify(right)
        if name == "Not":
            return not self._eval(arg[0])
        if name == "And":
            return all(self._eval(v) for v in arg)
        if name == "Or":
            return any(self._eval(v) for v in arg)
        if name == "Join":
            delimiter, values = arg
            return str(delimiter).join(_stringify(v) for v in self._eval(values))
        if name == "Select":
            index, values = arg
            return self._eval(values)[int(self._eval(index))]
        if name == "Split":
            delimiter, value = arg
            return _stringify(self._eval(value)).split(str(delimiter))
        if name == "FindInMap":
            mapping, top, second = (self._eval(v) for v in arg[:3])
            return self.template.mappings[mapping][top][second]
        if name == "Base64":
            return base64.b64encode(_stringify(self._eval(arg)).encode()).decode()
        if name == "GetAZs":
            return [f"{self.region}{suffix}" for suffix in "abc"]
        if name == "ToJsonString":
            return json.dumps(self._eval(arg), separators=(",", ":"))
        raise TemplateError(f"Fn::{name} is not supported by the local stack")

    def _ref(self, name: str) -> Any:
        pseudo = {
            "AWS::Region": self.region,
            "AWS::AccountId": self.account,
            "AWS::StackName": self.stack_name,
            "AWS::StackId": f"arn:aws:cloudformation:{self.region}:{self.account}:stack/{self.stack_name}/local",
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
        }
        if name == "AWS::NoValue":
            return _NO_VALUE
        if name in pseudo:
            return pseudo[name]
        if name in self.template.parameters:
            return self.parameter(name)
        if name in self.physical_ids:
            return self.physical_ids[name]
        if name in self.template.resources:
            return self._default_physical_id(name)
        # SAM's generated resources such as "AamDcsApi.Stage"
        base = name.split(".", 1)[0]
        if base in self.template.resources:
            return f"{self.stack_name}-{name.replace('.', '-')}"
        raise TemplateError(f"!Ref to unknown name {name}")

    def _default_physical_id(self, logical_id: str) -> str:
        resource = self.template.resources[logical_id]
        kind = resource.get("Type")
        if kind == QUEUE_TYPE:
            return self.queue_url(logical_id)
        if kind in TABLE_TYPES:
            return self.table_name(logical_id)
        if kind == EVENT_BUS_TYPE:
            return self.string(resource["Properties"]["Name"])
        if kind == BUCKET_TYPE:
            return self.bucket_name(logical_id)
        return f"{self.stack_name}-{logical_id}"

    def _get_att(self, logical_id: str, attribute: str) -> Any:
        if (logical_id, attribute) in self.attributes:
            return self.attributes[(logical_id, attribute)]
        resource = self.template.resources.get(logical_id)
        if resource is None:
            raise TemplateError(f"!GetAtt of unknown resource {logical_id}")
        kind = resource.get("Type")
        region, account = self.region, self.account
        if kind == QUEUE_TYPE:
            name = self.queue_name(logical_id)
            return {
                "Arn": f"arn:aws:sqs:{region}:{account}:{name}",
                "QueueName": name,
                "QueueUrl": self.physical_ids.get(logical_id) or self.queue_url(logical_id),
            }.get(attribute) or self._unknown_attribute(logical_id, attribute)
        if kind in TABLE_TYPES and attribute == "Arn":
            return f"arn:aws:dynamodb:{region}:{account}:table/{self.table_name(logical_id)}"
        if kind == EVENT_BUS_TYPE and attribute in ("Arn", "Name"):
            name = self._default_physical_id(logical_id)
            return name if attribute == "Name" else f"arn:aws:events:{region}:{account}:event-bus/{name}"
        if kind == BUCKET_TYPE and attribute == "Arn":
            return f"arn:aws:s3:::{self.bucket_name(logical_id)}"
        if kind == FUNCTION_TYPE and attribute == "Arn":
            return f"arn:aws:lambda:{region}:{account}:function:{self.stack_name}-{logical_id}"
        return self._unknown_attribute(logical_id, attribute)

    def _unknown_attribute(self, logical_id: str, attribute: str) -> str:
        return f"arn:aws:local:{self.region}:{self.account}:{logical_id}/{attribute}"

    def _sub(self, arg: Any) -> str:
        if isinstance(arg, list):
            text, variables = arg[0], {k: self._eval(v) for k, v in (arg[1] or {}).items()}
        else:
            text, variables = arg, {}

        def replace(match: re.Match[str]) -> str:
            expression = match.group(1)
            if expression.startswith("!"):
                return "${" + expression[1:] + "}"
            if expression in variables:
                return _stringify(variables[expression])
            if "." in expression and expression.split(".", 1)[0] in self.template.resources:
                logical_id, attribute = expression.split(".", 1)
                return _stringify(self._get_att(logical_id, attribute))
            return _stringify(self._ref(expression))

        return re.sub(r"\$\{([^}]*)\}", replace, str(text))

    # -- local names of resources

    def queue_name(self, logical_id: str) -> str:
        properties = self.template.resources[logical_id].get("Properties") or {}
        if "QueueName" in properties:
            return self.string(properties["QueueName"])
        suffix = ".fifo" if _truthy(self.evaluate(properties.get("FifoQueue", False))) else ""
        return f"{self.stack_name}-{logical_id}{suffix}"

    def queue_url(self, logical_id: str) -> str:
        base = (self.sqs_endpoint or f"https://sqs.{self.region}.amazonaws.com").rstrip("/")
        return f"{base}/{self.account}/{self.queue_name(logical_id)}"

    def table_name(self, logical_id: str) -> str:
        properties = self.template.resources[logical_id].get("Properties") or {}
        if "TableName" in properties:
            return self.string(properties["TableName"])
        return f"{self.stack_name}-{logical_id}"

    def bucket_name(self, logical_id: str) -> str:
        properties = self.template.resources[logical_id].get("Properties") or {}
        if "BucketName" in properties:
            return self.string(properties["BucketName"])
        return f"{self.stack_name}-{logical_id}".lower()


def _stringify(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def _truthy(value: Any) -> bool:
    return value is True or _stringify(value).lower() == "true"


def match_path(resource: str, path: str) -> dict[str, str] | None:
    """Match an API Gateway resource path (``/items/{id}``, ``/{proxy+}``) against a request path."""
    pattern_parts = resource.strip("/").split("/") if resource.strip("/") else []
    path_parts = path.strip("/").split("/") if path.strip("/") else []
    params: dict[str, str] = {}
    for index, part in enumerate(pattern_parts):
        greedy = re.fullmatch(r"\{(\w+)\+\}", part)
        if greedy:
            rest = path_parts[index:]
            if not rest:
                return None
            params[greedy.group(1)] = "/".join(rest)
            return params
        if index >= len(path_parts):
            return None
        variable = re.fullmatch(r"\{(\w+)\}", part)
        if variable:
            params[variable.group(1)] = path_parts[index]
        elif part != path_parts[index]:
            return None
    return params if len(pattern_parts) == len(path_parts) else None


# --------------------------------------------------------------------------------------- the template


class Template:
    """The parts of the SAM template that the local stack uses."""

    def __init__(self, data: Mapping[str, Any]) -> None:
        self.data = dict(data)
        self.parameters: dict[str, dict[str, Any]] = dict(data.get("Parameters") or {})
        self.conditions: dict[str, Any] = dict(data.get("Conditions") or {})
        self.mappings: dict[str, Any] = dict(data.get("Mappings") or {})
        self.resources: dict[str, dict[str, Any]] = dict(data.get("Resources") or {})
        self.globals: dict[str, Any] = dict(data.get("Globals") or {})

    @classmethod
    def load(cls, path: Path | str = TEMPLATE_PATH) -> Template:
        return cls(load_yaml(path))

    def evaluator(self, parameters: Mapping[str, str] | None = None, **kwargs: Any) -> Evaluator:
        unknown = set(parameters or {}) - set(self.parameters)
        if unknown:
            raise TemplateError(f"unknown template parameters: {', '.join(sorted(unknown))}")
        return Evaluator(self, parameters=dict(parameters or {}), **kwargs)

    def parameter_defaults(self) -> dict[str, str | None]:
        return {name: (_stringify(p["Default"]) if "Default" in p else None) for name, p in self.parameters.items()}

    def _of_type(self, *types: str, evaluator: Evaluator | None = None) -> list[tuple[str, dict[str, Any]]]:
        found = []
        for logical_id, resource in self.resources.items():
            if resource.get("Type") not in types:
                continue
            condition = resource.get("Condition")
            if condition and evaluator is not None and not evaluator.condition(condition):
                continue
            found.append((logical_id, resource))
        return found

    # -- functions and their events

    def functions(self) -> list[Function]:
        defaults = self.globals.get("Function") or {}
        functions = []
        for logical_id, resource in self._of_type(FUNCTION_TYPE):
            props = resource.get("Properties") or {}
            environment = dict((defaults.get("Environment") or {}).get("Variables") or {})
            environment.update((props.get("Environment") or {}).get("Variables") or {})
            functions.append(
                Function(
                    logical_id=logical_id,
                    code_uri=str(props.get("CodeUri", defaults.get("CodeUri", "."))),
                    handler=str(props.get("Handler", defaults.get("Handler", "app.lambda_handler"))),
                    runtime=str(props.get("Runtime", defaults.get("Runtime", "python3.13"))),
                    timeout=props.get("Timeout", defaults.get("Timeout", 3)),
                    memory_size=props.get("MemorySize", defaults.get("MemorySize", 128)),
                    environment=environment,
                    events=dict(props.get("Events") or {}),
                )
            )
        return functions

    def function(self, name: str) -> Function:
        """A function by logical ID (``ResolveIdsFunction``) or short name (``resolve_ids``)."""
        for function in self.functions():
            if name in (function.logical_id, function.name):
                return function
        known = ", ".join(f"{f.logical_id} ({f.name})" for f in self.functions())
        raise KeyError(f"no function {name!r} in the template; known: {known}")

    def api_routes(self, evaluator: Evaluator | None = None) -> list[ApiRoute]:
        """Every ``Api`` event; with an evaluator, whether each route requires an API key.

        The key requirement is the event's ``Auth.ApiKeyRequired`` when set, else the API's
        (``Auth.ApiKeyRequired`` of the ``RestApiId`` resource, then ``Globals.Api``).
        """
        routes = []
        for function in self.functions():
            for event_id, event in function.events.items():
                if event.get("Type") != "Api":
                    continue
                props = event.get("Properties") or {}
                routes.append(
                    ApiRoute(
                        function_id=function.logical_id,
                        event_id=event_id,
                        path=str(props["Path"]),
                        method=str(props["Method"]).upper(),
                        api_key_required=self._api_key_required(props, evaluator) if evaluator else False,
                    )
                )
        return routes

    def _api_key_required(self, props: dict[str, Any], evaluator: Evaluator) -> bool:
        own = (props.get("Auth") or {}).get("ApiKeyRequired")
        if own is not None:
            return _truthy(evaluator.evaluate(own))
        api = props.get("RestApiId")
        api_id = api.get("Ref") if isinstance(api, dict) else None
        api_props = (self.resources.get(str(api_id)) or {}).get("Properties") or {}
        for auth in (api_props.get("Auth"), (self.globals.get("Api") or {}).get("Auth")):
            if auth and "ApiKeyRequired" in auth:
                return _truthy(evaluator.evaluate(auth["ApiKeyRequired"]))
        return False

    def sqs_sources(self, evaluator: Evaluator) -> list[SqsSource]:
        sources = []
        for function in self.functions():
            for event_id, event in function.events.items():
                if event.get("Type") != "SQS":
                    continue
                props = event.get("Properties") or {}
                queue = props["Queue"]
                if not (isinstance(queue, dict) and "Fn::GetAtt" in queue):
                    raise TemplateError(f"{function.logical_id}.{event_id}: Queue must be !GetAtt <Queue>.Arn")
                target = queue["Fn::GetAtt"]
                queue_id = target.split(".", 1)[0] if isinstance(target, str) else str(target[0])
                scaling = evaluator.evaluate(props.get("ScalingConfig")) or {}
                types = evaluator.evaluate(props.get("FunctionResponseTypes")) or []
                sources.append(
                    SqsSource(
                        function_id=function.logical_id,
                        event_id=event_id,
                        queue_id=queue_id,
                        batch_size=int(evaluator.evaluate(props.get("BatchSize", 10))),
                        report_batch_item_failures="ReportBatchItemFailures" in types,
                        # Lambda's default without a maximum is the account's concurrency; 2 is the minimum.
                        maximum_concurrency=int(scaling.get("MaximumConcurrency", 2)),
                        maximum_batching_window_seconds=int(
                            evaluator.evaluate(props.get("MaximumBatchingWindowInSeconds", 0))
                        ),
                        enabled=_truthy(evaluator.evaluate(props.get("Enabled", True))),
                    )
                )
        return sources

    def schedules(self, evaluator: Evaluator) -> list[Schedule]:
        schedules = []
        for function in self.functions():
            for event_id, event in function.events.items():
                if event.get("Type") not in ("ScheduleV2", "Schedule"):
                    continue
                props = evaluator.evaluate(event.get("Properties") or {})
                raw_input = props.get("Input")
                schedules.append(
                    Schedule(
                        function_id=function.logical_id,
                        event_id=event_id,
                        expression=str(props.get("ScheduleExpression") or props.get("Schedule") or ""),
                        state=str(props.get("State") or ("ENABLED" if props.get("Enabled", True) else "DISABLED")),
                        input=json.loads(raw_input) if isinstance(raw_input, str) and raw_input else raw_input,
                    )
                )
        return schedules

    def environment(self, function: Function | str, evaluator: Evaluator) -> dict[str, str]:
        """The function's environment variables with every intrinsic resolved to a local value."""
        if isinstance(function, str):
            function = self.function(function)
        return {name: evaluator.string(value) for name, value in function.environment.items()}

    # -- resources

    def queues(self, evaluator: Evaluator) -> list[Queue]:
        queues = []
        for logical_id, resource in self._of_type(QUEUE_TYPE, evaluator=evaluator):
            props = evaluator.evaluate(resource.get("Properties") or {})
            fifo = _truthy(props.get("FifoQueue", False))
            attributes: dict[str, str] = {}
            for name in (
                "FifoQueue",
                "ContentBasedDeduplication",
                "DeduplicationScope",
                "FifoThroughputLimit",
                "VisibilityTimeout",
                "MessageRetentionPeriod",
                "DelaySeconds",
                "MaximumMessageSize",
                "ReceiveMessageWaitTimeSeconds",
                "SqsManagedSseEnabled",
                "KmsMasterKeyId",
                "KmsDataKeyReusePeriodSeconds",
            ):
                if name in props:
                    attributes[name] = _stringify(props[name])
            dlq_id, max_receive = None, None
            redrive = props.get("RedrivePolicy")
            if redrive:
                if isinstance(redrive, str):
                    redrive = json.loads(redrive)
                max_receive = int(redrive["maxReceiveCount"])
                target = str(redrive["deadLetterTargetArn"])
                dlq_id = next(
                    (q for q, _ in self._of_type(QUEUE_TYPE) if target.endswith(":" + evaluator.queue_name(q))),
                    None,
                )
                attributes["RedrivePolicy"] = json.dumps(
                    {"deadLetterTargetArn": target, "maxReceiveCount": max_receive}
                )
            queues.append(
                Queue(
                    logical_id=logical_id,
                    name=evaluator.queue_name(logical_id),
                    fifo=fifo,
                    attributes=attributes,
                    dead_letter_queue_id=dlq_id,
                    max_receive_count=max_receive,
                )
            )
        # Dead-letter queues first: a redrive policy names an existing queue.
        queues.sort(key=lambda q: q.dead_letter_queue_id is not None)
        return queues

    def tables(self, evaluator: Evaluator) -> list[Table]:
        return [
            Table(logical_id, evaluator.table_name(logical_id), evaluator.evaluate(r.get("Properties") or {}))
            for logical_id, r in self._of_type(*TABLE_TYPES, evaluator=evaluator)
        ]

    def event_buses(self, evaluator: Evaluator) -> list[EventBus]:
        return [
            EventBus(logical_id, evaluator.string((r.get("Properties") or {})["Name"]))
            for logical_id, r in self._of_type(EVENT_BUS_TYPE, evaluator=evaluator)
        ]

    def buckets(self, evaluator: Evaluator) -> list[Bucket]:
        return [
            Bucket(logical_id, evaluator.bucket_name(logical_id))
            for logical_id, _ in self._of_type(BUCKET_TYPE, evaluator=evaluator)
        ]
