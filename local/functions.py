"""The functions of the template, run in-process the way Lambda runs them.

Each function's ``functions/<name>/app.py`` is imported by file path under a unique module name,
with the shared layer (``layers/common``) on ``sys.path`` as Lambda puts ``/opt/python`` there.
A function keeps a small pool of "containers" (separately imported copies of its module): an
invocation takes an idle one or cold-starts a new one, so concurrent requests never share one
handler instance (a Powertools resolver keeps the current event on itself), and warm ones are reused.
Each container runs its invocations on its own thread, as a Lambda container runs them on its one
runtime thread: what the layer keeps per thread (boto3 resources) lives as long as the container.

Events and results go through JSON like Lambda's runtime API: the handler gets a fresh copy,
and a result that is not JSON-serializable fails the invocation (``Runtime.MarshalError``).
"""

from __future__ import annotations

import importlib.util
import itertools
import json
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from local.template import LOCAL_ACCOUNT, LOCAL_REGION, LOCAL_STACK_NAME, REPO_ROOT, Function

LAYER_DIRS = (REPO_ROOT / "layers" / "common",)
_module_counter = itertools.count(1)
_import_lock = threading.Lock()
_handler_modules: dict[int, str] = {}  # id(handler) -> the module name it was imported under

Handler = Callable[[Any, Any], Any]
#: Called with each new container's function module before its first invocation (see ``LocalFunction``).
ContainerHook = Callable[["LocalFunction", ModuleType], None]


class LambdaContext:
    """The context object Lambda passes to a Python handler."""

    def __init__(
        self,
        function_name: str,
        *,
        memory_limit_in_mb: int = 128,
        timeout_seconds: float = 3,
        region: str = LOCAL_REGION,
        account: str = LOCAL_ACCOUNT,
        request_id: str | None = None,
    ) -> None:
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.invoked_function_arn = f"arn:aws:lambda:{region}:{account}:function:{function_name}"
        self.memory_limit_in_mb = int(memory_limit_in_mb)
        self.aws_request_id = request_id or str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = time.strftime("%Y/%m/%d/[$LATEST]") + uuid.uuid4().hex
        self.identity = None
        self.client_context = None
        self._deadline = time.monotonic() + float(timeout_seconds)

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


class InvocationError(RuntimeError):
    """A failed invocation, shaped like Lambda's error payload (``errorType``, ``errorMessage``)."""

    def __init__(self, error_type: str, message: str, stack: list[str] | None = None) -> None:
        super().__init__(f"{error_type}: {message}")
        self.error_type = error_type
        self.error_message = message
        self.stack_trace = stack or []

    def payload(self) -> dict[str, Any]:
        return {"errorType": self.error_type, "errorMessage": self.error_message, "stackTrace": self.stack_trace}


def ensure_layers_on_path() -> None:
    for layer in LAYER_DIRS:
        if str(layer) not in sys.path:
            sys.path.insert(0, str(layer))


def layer_packages() -> list[str]:
    """Top-level packages the layers provide (``aam_dcs``)."""
    names = []
    for layer in LAYER_DIRS:
        if layer.is_dir():
            names += [p.name for p in layer.iterdir() if (p / "__init__.py").is_file()]
    return names


@contextmanager
def fresh_layer_modules() -> Iterator[None]:
    """Import the layer's packages afresh inside the block, as a new Lambda container would.

    Module-level caches in the layer (settings read once, lazily created clients) belong to one
    "deployment"; a second local stack in the same process (tests) must not inherit them. The
    modules loaded before the block are put back after it.
    """
    prefixes = tuple(layer_packages())

    def ours(name: str) -> bool:
        return any(name == p or name.startswith(p + ".") for p in prefixes)

    with _import_lock:
        saved = {name: module for name, module in sys.modules.items() if ours(name)}
        for name in saved:
            del sys.modules[name]
    try:
        yield
    finally:
        with _import_lock:
            for name in [n for n in sys.modules if ours(n)]:
                del sys.modules[name]
            sys.modules.update(saved)


class _PerThread:
    """A class attribute kept per thread (read and written on the class or on its instances)."""

    def __init__(self, name: str, values: threading.local) -> None:
        self.name = name
        self.values = values

    def __get__(self, instance: object, owner: type | None = None) -> Any:
        try:
            return getattr(self.values, self.name)
        except AttributeError:
            raise AttributeError(self.name) from None

    def __set__(self, instance: object, value: Any) -> None:
        setattr(self.values, self.name, value)


def isolate_powertools_routers() -> None:
    """Keep the event Powertools' API resolvers are handling per thread, as Lambda keeps it per process.

    ``APIGatewayRestResolver.resolve`` stores the event on the ``BaseRouter`` class
    (``BaseRouter.current_event``), and route handlers read it back from there. In Lambda a
    container is a process running one invocation at a time, so that is safe; here containers are
    threads of one process, and concurrent API invocations read each other's events (a GET
    /segments handler saw a POST /ids event: "nothing identifies the visitor"). Each container
    runs on its own thread, so per thread is per container. Idempotent.
    """
    from aws_lambda_powertools.event_handler import api_gateway

    base = api_gateway.BaseRouter
    if getattr(type(base), "_local_per_thread", False):
        return
    values = threading.local()
    names = ("current_event", "lambda_context")
    for name in names:  # read and written through instances, read through the class
        setattr(base, name, _PerThread(name, values))
    # written through the class (``BaseRouter.current_event = ...``): a descriptor on the metaclass
    namespace: dict[str, Any] = {name: _PerThread(name, values) for name in names}
    base.__class__ = type("PerThreadRouterMeta", (type(base),), {**namespace, "_local_per_thread": True})


def load_handler(function: Function) -> Handler:
    """Import ``functions/<name>/app.py`` under a unique module name and return its handler.

    The module stays in ``sys.modules`` under that name until :func:`unload_handler`.
    """
    ensure_layers_on_path()
    isolate_powertools_routers()
    path = function.module_file
    if not path.is_file():
        raise InvocationError("Runtime.ImportModuleError", f"Unable to import module: {path.name} not found")
    module_name = f"_local_fn_{function.name}_{next(_module_counter)}"
    with _import_lock:
        code_dir = str(function.code_dir)
        sys.path.insert(0, code_dir)
        try:
            spec = importlib.util.spec_from_file_location(module_name, path)
            assert spec is not None
            assert spec.loader is not None
            module: ModuleType = importlib.util.module_from_spec(spec)
            sys.modules[module_name] = module
            try:
                spec.loader.exec_module(module)
            except Exception as exc:
                sys.modules.pop(module_name, None)
                raise InvocationError(
                    "Runtime.ImportModuleError",
                    f"Unable to import module '{function.handler}': {type(exc).__name__}: {exc}",
                    traceback.format_exception(exc),
                ) from exc
        finally:
            sys.path.remove(code_dir)
    handler = getattr(module, function.handler_attr, None)
    if not callable(handler):
        sys.modules.pop(module_name, None)
        raise InvocationError("Runtime.HandlerNotFound", f"Handler '{function.handler}' missing on module")
    _handler_modules[id(handler)] = module_name
    return handler  # type: ignore[no-any-return]


def handler_module(handler: Handler) -> ModuleType | None:
    """The module a loaded handler came from (None once it is unloaded)."""
    name = _handler_modules.get(id(handler))
    return sys.modules.get(name) if name is not None else None


def unload_handler(handler: Handler) -> None:
    """Drop the module a handler came from (a container that is gone)."""
    name = _handler_modules.pop(id(handler), None)
    if name is not None:
        sys.modules.pop(name, None)


@dataclass
class Container:
    """A warm handler instance and the one thread that runs its invocations."""

    handler: Handler
    thread: ThreadPoolExecutor = field(default_factory=lambda: ThreadPoolExecutor(1, thread_name_prefix="container"))

    def run(self, event: Any, context: Any) -> Any:
        try:
            future = self.thread.submit(self.handler, event, context)
        except RuntimeError:  # the stack is stopping and closed this container: finish here
            return self.handler(event, context)
        return future.result()

    def close(self) -> None:
        self.thread.shutdown(wait=False)
        unload_handler(self.handler)


class LocalFunction:
    """One function of the template with a pool of warm containers.

    ``on_container`` (optional) sees every new container's module before its first invocation: a
    harness can give the function's own factories (``sender()``, ``lookup()``...) other adapters
    there, as a test would, without any switch in the function's code.
    """

    def __init__(
        self,
        function: Function,
        *,
        stack_name: str = LOCAL_STACK_NAME,
        region: str = LOCAL_REGION,
        account: str = LOCAL_ACCOUNT,
        max_containers: int = 10,
        memory_size: int | None = None,
        timeout: int | None = None,
        on_container: ContainerHook | None = None,
    ) -> None:
        self.function = function
        self.on_container = on_container
        self.function_name = f"{stack_name}-{function.logical_id}"
        self.region = region
        self.account = account
        self.memory_size = int(memory_size if memory_size is not None else _as_int(function.memory_size, 128))
        self.timeout = int(timeout if timeout is not None else _as_int(function.timeout, 3))
        self._max = max_containers
        self._idle: list[Container] = []
        self._count = 0
        self._cond = threading.Condition()
        self.invocations = 0
        self.errors = 0
        self.cold_starts = 0

    @property
    def logical_id(self) -> str:
        return self.function.logical_id

    @property
    def name(self) -> str:
        return self.function.name

    def close(self) -> None:
        """Forget the warm containers and their modules (the stack stopped)."""
        with self._cond:
            containers, self._idle = self._idle, []
        for container in containers:
            container.close()

    def warm(self) -> None:
        """Start one container now (raises when the handler cannot be imported)."""
        container = self._new_container()
        with self._cond:
            self._idle.append(container)

    def context(self) -> LambdaContext:
        return LambdaContext(
            self.function_name,
            memory_limit_in_mb=self.memory_size,
            timeout_seconds=self.timeout,
            region=self.region,
            account=self.account,
        )

    def invoke(self, event: Any, context: Any = None) -> Any:
        """Invoke with a JSON copy of ``event``; the handler's own exception propagates unchanged."""
        try:
            payload = json.loads(json.dumps(event))
        except (TypeError, ValueError) as exc:
            raise InvocationError("InvalidRequestContentException", f"event is not JSON: {exc}") from exc
        container = self._acquire()
        try:
            self.invocations += 1
            result = container.run(payload, context or self.context())
        except Exception:
            self.errors += 1
            raise
        finally:
            self._release(container)
        try:
            return json.loads(json.dumps(result))
        except (TypeError, ValueError) as exc:
            self.errors += 1
            raise InvocationError("Runtime.MarshalError", f"Unable to marshal response: {exc}") from exc

    __call__ = invoke

    def _new_container(self) -> Container:
        with self._cond:
            self._count += 1
        try:
            handler = load_handler(self.function)
            module = handler_module(handler)
            if self.on_container is not None and module is not None:
                self.on_container(self, module)
        except BaseException:
            with self._cond:
                self._count -= 1
                self._cond.notify()
            raise
        self.cold_starts += 1
        return Container(handler)

    def _acquire(self) -> Container:
        with self._cond:
            while not self._idle and self._count >= self._max:
                self._cond.wait()
            if self._idle:
                return self._idle.pop()
        return self._new_container()

    def _release(self, container: Container) -> None:
        with self._cond:
            self._idle.append(container)
            self._cond.notify()


def _as_int(value: Any, default: int) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default
