"""One cold start, in a fresh interpreter: import a handler and serve its first call; prints JSON."""

import contextlib
import importlib.util
import io
import json
import sys
import time

started = time.perf_counter()
module_path, event_json = sys.argv[1], sys.argv[2]
spec = importlib.util.spec_from_file_location("handler_under_test", module_path)
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
imported = time.perf_counter()


class Context:
    function_name = "bench"
    memory_limit_in_mb = 256
    invoked_function_arn = "arn:aws:lambda:us-west-2:123456789012:function:bench"
    aws_request_id = "bench"

    @staticmethod
    def get_remaining_time_in_millis():
        return 10_000


with contextlib.redirect_stdout(io.StringIO()):
    result = module.lambda_handler(json.loads(event_json), Context())
served = time.perf_counter()
modules = len(sys.modules)
print(
    json.dumps(
        {
            "import_ms": (imported - started) * 1000,
            "first_call_ms": (served - imported) * 1000,
            "total_ms": (served - started) * 1000,
            "modules": modules,
            "boto3_loaded": "boto3" in sys.modules,
            "xray_loaded": "aws_xray_sdk" in sys.modules,
            "result_ok": isinstance(result, dict) and result.get("statusCode") == 200,
        }
    )
)
