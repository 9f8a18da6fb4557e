"""How the command invokes a function of the stack: the one Lambda ``Invoke`` it makes.

``run-now`` and ``dlq redrive`` call :func:`invoke_function` through this module (not a
copy of it), so a test can run the target some other way (moto's Lambda needs Docker).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from batchwire_cli.stack import Target, aws_errors


@dataclass(frozen=True)
class Invocation:
    """What Lambda answered: the function's result, or its errorMessage when it failed."""

    status: int
    result: Any = None
    error: str | None = None


def invoke_function(target: Target, function: str, payload: Any, asynchronous: bool) -> Invocation:
    """Invoke ``function`` (name or ARN) with ``payload``; ``asynchronous`` is
    ``InvocationType=Event`` (queued, retried and sent on-failure by Lambda, no result)."""
    lambda_ = target.client("lambda")
    with aws_errors(target, f"invoking {function}"):
        answer = lambda_.invoke(
            FunctionName=function,
            InvocationType="Event" if asynchronous else "RequestResponse",
            Payload=json.dumps(payload).encode(),
        )
    raw = answer["Payload"].read() if answer.get("Payload") else b""
    try:
        result = json.loads(raw) if raw else None
    except ValueError:
        result = raw.decode(errors="replace")
    if answer.get("FunctionError"):
        message = result.get("errorMessage") if isinstance(result, dict) else None
        return Invocation(int(answer["StatusCode"]), result, str(message or result))
    return Invocation(int(answer["StatusCode"]), result)


def function_name(arn: str) -> str:
    """``arn:aws:lambda:...:function:bw-Submitter:$LATEST`` -> ``bw-Submitter``."""
    if ":function:" not in arn:
        return arn
    return arn.split(":function:", 1)[1].split(":", 1)[0]
