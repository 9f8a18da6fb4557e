"""Drive a function the way `make invoke` does: a subprocess against a deployed local stack."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import pytest

from devtools.local_aws import LocalAws
from devtools.local_stack import deploy_local_stack
from devtools.rehearse import DeployedStack

ROOT = Path(__file__).resolve().parents[2]
#: moto's CloudFormation skips the types it lacks (the rehearsal reports those itself); it
#: says so on every deploy and every read of the stack.
SKIPPED_TYPES = pytest.mark.filterwarnings("ignore:Tried to parse AWS::")
#: A webhook URL nothing answers: a stack that is not meant to post to Slack.
UNANSWERED_WEBHOOK = "http://127.0.0.1:9/unset"


@dataclass
class Invocation:
    returncode: int
    stdout: str
    stderr: str

    @property
    def result(self) -> Any:
        return json.loads(self.stdout)


@dataclass
class LocalStack:
    """A moto server of this process, template.yaml deployed into it, and the Batch workload."""

    local: LocalAws
    stack: DeployedStack
    batch: dict[str, str]

    def client(self, service: str) -> Any:
        return self.local.client(service)


def deploy_stack(
    local: LocalAws,
    parameters: Mapping[str, str] | None = None,
    sam_template: dict[str, Any] | None = None,
) -> DeployedStack:
    """Deploy template.yaml (or ``sam_template``) into ``local`` under a name of its own.

    moto keeps one state per process: a unique stack name makes every physical name
    (tables, queues, topics, functions) unique, so stacks of different tests never meet.
    """
    logging.getLogger("samtranslator").setLevel(logging.ERROR)
    logging.getLogger("moto").setLevel(logging.ERROR)
    name = f"it-{uuid.uuid4().hex[:8]}"
    secrets = local.client("secretsmanager")
    values = dict(parameters or {})
    if "SlackWebhookSecretArn" not in values:
        values["SlackWebhookSecretArn"] = secrets.create_secret(
            Name=f"batchwire/{name}-slack", SecretString=UNANSWERED_WEBHOOK
        )["ARN"]
    return deploy_local_stack(local, values, name, sam_template)


def invoke_environ(local: LocalAws, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """This shell's variables, pointed at the moto server, plus ``environ``."""
    env = {**os.environ, **local.environ, **(environ or {})}
    env["PYTHONPATH"] = f"{ROOT / 'functions'}{os.pathsep}{ROOT}"
    env.pop("POWERTOOLS_TRACE_DISABLED", None)
    return env


def invoke_stack(
    local: LocalAws,
    stack_name: str,
    function: str,
    event: Path | str,
    environ: Mapping[str, str] | None = None,
) -> Invocation:
    """Run ``python -m devtools.invoke FN EVENT --stack NAME`` (what ``make invoke`` runs)."""
    completed = subprocess.run(
        [sys.executable, "-m", "devtools.invoke", function, str(event), "--stack", stack_name],
        env=invoke_environ(local, environ),
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    return Invocation(completed.returncode, completed.stdout, completed.stderr)


def invoke(
    stack: DeployedStack,
    function: str,
    event: Path | str,
    environ: Mapping[str, str] | None = None,
) -> Invocation:
    """``make invoke FN=function EVENT=event STACK=<stack>`` against the stack's moto server."""
    return invoke_stack(stack.local, stack.name, function, event, environ)


def rule_matches(stack: DeployedStack, logical_id: str, event: Mapping[str, Any]) -> bool:
    """Whether the deployed rule ``logical_id`` takes ``event``: its pattern as EventBridge
    holds it, matched by moto's EventBridge."""
    from moto.events.models import EventPattern

    events = stack.local.client("events")
    name = stack.physical_ids[logical_id].rsplit("/", 1)[-1]
    pattern = EventPattern.load(events.describe_rule(Name=name)["EventPattern"])
    return bool(pattern.matches_event(cast(Any, event)))
