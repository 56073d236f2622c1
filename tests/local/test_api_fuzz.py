"""Schemathesis on the local API, short run: no generated request gets a 5xx or crashes the stack.

``make reliability`` runs the long one (``python -m tests.reliability.api_fuzz``).
"""

from __future__ import annotations

from local.run import LocalStack
from tests.reliability.api_fuzz import MODES, fuzz_api, operations

EXAMPLES = 12  # per operation and mode: 5 operations x 3 modes x 12 = 180 requests


def test_no_generated_request_gets_a_5xx_or_crashes_the_stack(stack: LocalStack) -> None:
    figures = fuzz_api(stack.api_url, examples=EXAMPLES)
    print(figures.table())
    assert not figures.server_errors, "\n".join(finding.line() for finding in figures.server_errors)
    assert not figures.crashes, "\n".join(finding.line() for finding in figures.crashes)
    assert set(figures.tried) == {f"{op.method.upper()} {op.path}" for op in operations()}
    assert figures.total >= len(figures.tried) * len(MODES) * EXAMPLES // 2
    assert any(status < 300 for status in figures.statuses), "every request was refused: the run went nowhere"
