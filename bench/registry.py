"""The handlers under benchmark: one ``HandlerSpec`` entry each.

Adding a handler is adding an entry to REGISTRY (see bench/README.md). An entry whose
module is not in functions/ yet is listed as skipped, so entries can land before code.
Standard library only: benchmark children import this before the handler under test.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import payloads

ROOT = Path(__file__).resolve().parent.parent
FUNCTIONS = ROOT / "functions"


@dataclass(frozen=True)
class ClientStub:
    """A boto3 client the module created at import, found by attribute path from the module
    (``"batch"``, ``"once.persistence.client"``), with a canned response per operation."""

    path: str
    responses: Mapping[str, Mapping[str, Any]]


@dataclass(frozen=True)
class HandlerSpec:
    """How to benchmark one handler module of functions/ against its naive baseline."""

    #: Short name used on the command line and in the table.
    name: str
    #: Module in functions/ (``submitter`` for functions/submitter.py).
    module: str
    #: Logical id in template.yaml: its environment is the function's environment.
    function: str
    #: Sample event in events/ for the warm benchmark.
    event: str
    #: Naive baseline module (in bench/naive/) with the same ``handler(event, context)``.
    naive: str
    #: boto3 clients of the handler module to answer with botocore's Stubber.
    stubs: tuple[ClientStub, ...]
    #: boto3 clients of the naive module to answer with botocore's Stubber.
    naive_stubs: tuple[ClientStub, ...]
    #: Builds the largest event the handler accepts (peak memory); None: the sample event.
    largest_event: Callable[[], Any] | None = None
    #: Environment on top of the template's (for what a deploy would set).
    environment: Mapping[str, str] = field(default_factory=dict)
    handler: str = "handler"
    #: False where the per-event figure comes from a handler-specific benchmark (notifier).
    warm: bool = True
    #: Module with ``run(spec) -> list[dict]`` of handler-specific rows (bench/notifier.py).
    extra: str | None = None
    #: Memory and extra benchmarks run against a moto server holding the template's tables
    #: (for state the canned responses cannot play, such as flood control).
    local_aws: bool = False
    #: Slack webhook posts are answered in-process (200) and counted, never sent.
    slack: bool = False

    @property
    def available(self) -> bool:
        """True once functions/<module>.py exists."""
        return (FUNCTIONS / f"{self.module}.py").is_file()

    def load_event(self) -> Any:
        import json

        return json.loads((ROOT / self.event).read_text())


_SUBMIT_JOB = {
    "submit_job": {
        "jobName": "nightly-20261123",
        "jobId": "6f1a0f0e-6b9e-4b8e-9a55-3c1f8f1f0a01",
        "jobArn": "arn:aws:batch:us-east-1:123456789012:job/6f1a0f0e-6b9e-4b8e-9a55-3c1f8f1f0a01",
    }
}

#: Powertools idempotency on a first delivery: PutItem (in progress) then UpdateItem (done).
_IDEMPOTENCY_FIRST_DELIVERY: dict[str, dict[str, Any]] = {"put_item": {}, "update_item": {}}

_RUN_TASK = {
    "run_task": {
        "tasks": [{"taskArn": "arn:aws:ecs:us-east-1:123456789012:task/feeds/0123456789abcdef"}],
        "failures": [],
    }
}

REGISTRY: tuple[HandlerSpec, ...] = (
    HandlerSpec(
        name="submitter",
        module="submitter",
        function="SubmitterFunction",
        event="events/schedule.json",
        naive="bench.naive.submitter",
        stubs=(
            ClientStub("batch", _SUBMIT_JOB),
            ClientStub("once.persistence.client", _IDEMPOTENCY_FIRST_DELIVERY),
        ),
        naive_stubs=(ClientStub("batch", _SUBMIT_JOB),),
        largest_event=payloads.largest_schedule_event,
    ),
    # The three below are skipped until their module lands in functions/. Confirm the
    # logical id, the event file and the client attribute paths against the code then.
    HandlerSpec(
        name="chainer",
        module="chainer",
        function="ChainerFunction",
        event="events/chain-sns.json",
        naive="bench.naive.chainer",
        stubs=(
            ClientStub("batch", _SUBMIT_JOB),
            ClientStub("once.persistence.client", _IDEMPOTENCY_FIRST_DELIVERY),
        ),
        naive_stubs=(ClientStub("batch", _SUBMIT_JOB),),
    ),
    HandlerSpec(
        name="retrier",
        module="retrier",
        function="RetrierFunction",
        event="events/ecs-task-stopped.json",
        naive="bench.naive.retrier",
        stubs=(
            ClientStub("ecs", _RUN_TASK),
            ClientStub("once.persistence.client", _IDEMPOTENCY_FIRST_DELIVERY),
        ),
        naive_stubs=(ClientStub("ecs", _RUN_TASK),),
    ),
    HandlerSpec(
        name="notifier",
        module="notifier",
        function="NotifierFunction",
        event="events/logs-subscription.json",
        naive="bench.naive.notifier",
        stubs=(),
        naive_stubs=(),
        largest_event=lambda: payloads.log_subscription_event(payloads.log_batch_document()),
        environment={"SLACK_WEBHOOK_URL": "https://hooks.slack.com/services/T0/B0/bench"},
        warm=False,
        extra="bench.notifier",
        local_aws=True,
        slack=True,
    ),
)


def find(name: str) -> HandlerSpec:
    """The registry entry called ``name`` (a KeyError lists the known names)."""
    for spec in REGISTRY:
        if spec.name == name:
            return spec
    raise KeyError(f"no handler {name!r} in bench/registry.py (have: {[s.name for s in REGISTRY]})")
