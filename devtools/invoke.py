"""Run one deployed function of the stack in this process, without Docker.

The Docker-free stand-in for ``sam local invoke``: the function's handler, environment and
limits come from the Lambda API of a deployed stack (the running ``make local-stack`` by
default, or ``--stack NAME`` where boto3 points, a real account included), the handler runs
here with exactly that environment, and its return value is printed as JSON on stdout.
Everything the function logs goes to stderr.

    python -m devtools.invoke SubmitterFunction events/schedule.json [--stack NAME]
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import sys
import time
import traceback
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devtools.template import LOCAL_STACK_STATE, ROOT, FunctionSetup

DEFAULT_REGION = "us-east-1"


@dataclass
class LocalContext:
    """The Lambda context object, as the runtime hands it to a handler."""

    function_name: str
    memory_limit_in_mb: int
    timeout_seconds: int
    region: str
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    function_version: str = "$LATEST"
    log_group_name: str = ""
    log_stream_name: str = "$LATEST"
    _deadline: float = 0.0

    def __post_init__(self) -> None:
        self._deadline = time.monotonic() + self.timeout_seconds
        self.log_group_name = f"/aws/lambda/{self.function_name}"

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:{self.region}:123456789012:function:{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def deployed_setup(
    logical_id: str, stack_name: str, shell_env: Mapping[str, str] | None = None
) -> FunctionSetup:
    """A deployed function's handler, environment and limits, as its Lambda API reports them.

    The stack is read where boto3 points: ``AWS_ENDPOINT_URL`` (a local stack) or the
    account of the credentials. A variable set in the shell wins over the deployed value of
    the same variable, as with ``sam local invoke --env-vars``.
    """
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    shell = dict(os.environ if shell_env is None else shell_env)
    cloudformation, lambda_ = boto3.client("cloudformation"), boto3.client("lambda")
    try:
        resources = cloudformation.describe_stack_resources(StackName=stack_name)
    except (ClientError, BotoCoreError) as error:
        raise SystemExit(f"STACK={stack_name}: cannot read the stack: {error}") from None
    functions = {
        resource["LogicalResourceId"]: resource["PhysicalResourceId"]
        for resource in resources["StackResources"]
        if resource.get("ResourceType") == "AWS::Lambda::Function"
    }
    if logical_id not in functions:
        known = ", ".join(sorted(functions))
        raise SystemExit(f"FN={logical_id}: no such function in stack {stack_name} (have: {known})")
    configuration = lambda_.get_function_configuration(FunctionName=functions[logical_id])
    deployed = {
        name: str(value)
        for name, value in configuration.get("Environment", {}).get("Variables", {}).items()
    }
    environment = {name: shell.get(name, value) for name, value in deployed.items()}
    return FunctionSetup(
        logical_id=logical_id,
        handler=str(configuration["Handler"]),
        environment=environment,
        memory=int(configuration.get("MemorySize") or 128),
        timeout=int(configuration.get("Timeout") or 3),
        function_name=str(configuration["FunctionName"]),
    )


def running_local_stack_state() -> dict[str, str] | None:
    """The endpoint and stack of a running ``make local-stack``, if one answers."""
    import urllib.request

    try:
        state: dict[str, str] = json.loads(LOCAL_STACK_STATE.read_text())
        urllib.request.urlopen(f"{state['endpoint']}/moto-api/", timeout=2).close()
    except (OSError, ValueError, KeyError):
        return None
    return state


@contextlib.contextmanager
def stdout_to_stderr() -> Iterator[None]:
    """Send everything written to fd 1 (logs, EMF metrics) to stderr while the handler runs."""
    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(2, 1)
    try:
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def invoke(setup: FunctionSetup, event: Any) -> Any:
    """Import the handler with the function's environment and call it once."""
    os.environ.update(setup.environment)
    os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
    functions_dir = str(ROOT / "functions")
    if functions_dir not in sys.path:
        sys.path.insert(0, functions_dir)
    module_name, _, attribute = setup.handler.rpartition(".")
    module = importlib.import_module(module_name)
    handler = getattr(module, attribute)
    context = LocalContext(
        function_name=setup.function_name or setup.logical_id,
        memory_limit_in_mb=setup.memory,
        timeout_seconds=setup.timeout,
        region=setup.environment.get("AWS_REGION", DEFAULT_REGION),
    )
    return handler(event, context)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("function", help="logical id of the function in template.yaml")
    parser.add_argument("event", type=Path, help="JSON file with the event")
    parser.add_argument(
        "--stack", default="", help="a deployed stack (default: the running make local-stack)"
    )
    args = parser.parse_args(argv)
    try:
        event = json.loads(args.event.read_text())
    except (OSError, json.JSONDecodeError) as error:
        print(f"EVENT={args.event}: cannot read a JSON event: {error}", file=sys.stderr)
        return 2
    stack = args.stack
    if not stack:
        state = running_local_stack_state()
        if state is None:
            print(
                "no stack to invoke: run `make local-stack` in another terminal, "
                "or give STACK=<name> of a deployed stack",
                file=sys.stderr,
            )
            return 2
        from devtools.local_aws import LOCAL_CREDENTIALS

        os.environ.update({**LOCAL_CREDENTIALS, "AWS_ENDPOINT_URL": state["endpoint"]})
        stack = state["stack"]
        print(f"invoking {args.function} of {stack} at {state['endpoint']}", file=sys.stderr)
    setup = deployed_setup(args.function, stack)
    try:
        with stdout_to_stderr():
            result = invoke(setup, event)
    except Exception as error:
        traceback.print_exc()
        print(
            json.dumps({"errorType": type(error).__name__, "errorMessage": str(error)}),
            file=sys.stderr,
        )
        return 1
    print(json.dumps(result, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
