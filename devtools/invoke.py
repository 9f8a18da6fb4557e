"""Run one function of template.yaml in this process, without Docker.

The Docker-free stand-in for ``sam local invoke``: the SAM CLI's own providers read the
template and resolve the function's environment (Refs to parameters from PARAMS or their
defaults, Refs to resources to their logical ids), the handler runs here with that
environment against whatever ``AWS_ENDPOINT_URL`` points at, and its return value is
printed as JSON on stdout. Everything the function logs goes to stderr.

    python -m devtools.invoke SubmitterFunction events/schedule.json [--params "A=1 B=2"]
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import shlex
import sys
import time
import traceback
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devtools.template import ROOT, TEMPLATE

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


@dataclass
class FunctionSetup:
    """What the SAM CLI works out for a function: handler, environment, limits."""

    logical_id: str
    handler: str
    environment: dict[str, str]
    memory: int
    timeout: int


def parse_params(text: str) -> dict[str, str]:
    """``"Name=Value Other='a b'"`` -> dict, as ``sam local invoke --parameter-overrides``."""
    overrides = {}
    for item in shlex.split(text or ""):
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise SystemExit(f"PARAMS: {item!r} is not Name=Value")
        overrides[name] = value
    return overrides


def function_setup(
    logical_id: str,
    params: Mapping[str, str] | None = None,
    template: Path = TEMPLATE,
    shell_env: Mapping[str, str] | None = None,
) -> FunctionSetup:
    """Resolve a function's handler and environment with the SAM CLI's template reading."""
    from samcli.lib.providers.sam_function_provider import SamFunctionProvider
    from samcli.lib.providers.sam_stack_provider import SamLocalStackProvider
    from samcli.local.lambdafn.env_vars import EnvironmentVariables

    shell = dict(os.environ if shell_env is None else shell_env)
    region = shell.get("AWS_REGION") or shell.get("AWS_DEFAULT_REGION") or DEFAULT_REGION
    stacks, _ = SamLocalStackProvider.get_stacks(
        str(template),
        parameter_overrides=dict(params or {}),
        global_parameter_overrides={"AWS::Region": region},
    )
    provider = SamFunctionProvider(stacks, use_raw_codeuri=True)
    function = provider.get(logical_id)
    if function is None:
        known = ", ".join(sorted(f.name for f in provider.get_all()))
        raise SystemExit(f"FN={logical_id}: no such function in {template.name} (have: {known})")
    variables = (function.environment or {}).get("Variables", {})
    environment = EnvironmentVariables(
        function.name,
        function.memory,
        function.timeout,
        function.handler,
        function.logging_config,
        variables=variables,
        shell_env_values=shell,
        aws_creds={
            "region": region,
            "key": shell.get("AWS_ACCESS_KEY_ID", "testing"),
            "secret": shell.get("AWS_SECRET_ACCESS_KEY", "testing"),
            "sessiontoken": shell.get("AWS_SESSION_TOKEN", "testing"),
        },
    ).resolve()
    return FunctionSetup(
        logical_id=logical_id,
        handler=str(function.handler),
        environment={k: str(v) for k, v in environment.items()},
        memory=int(function.memory or 128),
        timeout=int(function.timeout or 3),
    )


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
        function_name=setup.logical_id,
        memory_limit_in_mb=setup.memory,
        timeout_seconds=setup.timeout,
        region=setup.environment.get("AWS_REGION", DEFAULT_REGION),
    )
    return handler(event, context)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("function", help="logical id of the function in template.yaml")
    parser.add_argument("event", type=Path, help="JSON file with the event")
    parser.add_argument("--params", default="", help='parameter overrides, "Name=Value ..."')
    args = parser.parse_args(argv)
    try:
        event = json.loads(args.event.read_text())
    except (OSError, json.JSONDecodeError) as error:
        print(f"EVENT={args.event}: cannot read a JSON event: {error}", file=sys.stderr)
        return 2
    setup = function_setup(args.function, parse_params(args.params))
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
