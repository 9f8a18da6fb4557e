"""PowertoolsTracer: off by default, and then the X-Ray SDK is never loaded at cold start."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from devtools.template import ROOT, function_setup

#: A handler's tracing as the handlers do it, in a fresh interpreter: what it returns and
#: raises through the Tracer's decorator, and whether the X-Ray SDK was imported.
_HANDLER = """
import json, sys
from batchwire.tracing import powertools_tracer
tracer = powertools_tracer(["botocore"])

@tracer.capture_lambda_handler
def handler(event, context):
    if event.get("fail"):
        raise ValueError("refused")
    return {"ok": event["n"]}

class Context:
    function_name = "f"
    aws_request_id = "r"

result = handler({"n": 1}, Context())
try:
    handler({"fail": True}, Context())
    raised = None
except ValueError as error:
    raised = str(error)
print(json.dumps({"result": result, "raised": raised, "xray": "aws_xray_sdk.core" in sys.modules}))
"""


def _run_handler(trace_disabled: str) -> dict[str, object]:
    environment = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT / "functions"), str(ROOT)]),
        "POWERTOOLS_TRACE_DISABLED": trace_disabled,
        "LAMBDA_TASK_ROOT": "/var/task",  # as in Lambda: Powertools traces only there
        "AWS_XRAY_CONTEXT_MISSING": "IGNORE_ERROR",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    environment.pop("AWS_SAM_LOCAL", None)
    completed = subprocess.run(
        [sys.executable, "-c", _HANDLER],
        env=environment,
        capture_output=True,
        text=True,
        check=True,
    )
    answer: dict[str, object] = json.loads(completed.stdout.strip().splitlines()[-1])
    return answer


def test_with_the_tracer_off_the_handler_runs_and_the_xray_sdk_is_never_imported() -> None:
    answer = _run_handler("true")

    assert answer == {"result": {"ok": 1}, "raised": "refused", "xray": False}


def test_with_the_tracer_on_the_handler_runs_under_powertools_tracer() -> None:
    answer = _run_handler("false")

    assert answer == {"result": {"ok": 1}, "raised": "refused", "xray": True}


@pytest.mark.parametrize(
    ("parameters", "disabled"), [({}, "true"), ({"PowertoolsTracer": "on"}, "false")]
)
def test_the_tracer_is_off_unless_the_stack_turns_it_on(
    parameters: dict[str, str], disabled: str
) -> None:
    for function in ("SubmitterFunction", "ChainerFunction", "RetrierFunction"):
        setup = function_setup(function, params=parameters, shell_env={})
        assert setup.environment["POWERTOOLS_TRACE_DISABLED"] == disabled, function
