"""The handlers under benchmark: one ``HandlerSpec`` entry each.

Adding a handler is adding an entry to REGISTRY (see bench/README.md). An entry whose
module is not in functions/ yet is listed as skipped, so entries can land before code.
Standard library only: benchmark children import this before the handler under test.
"""

from __future__ import annotations

import json
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
    #: Sample event in events/ for the warm benchmark (or what ``build_event`` builds).
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
    #: Builds the warm benchmark's event when no file in events/ is that event.
    build_event: Callable[[], Any] | None = None
    #: False for a second entry of the same module (another path): cold init and peak
    #: memory are the first entry's.
    cold: bool = True
    memory: bool = True
    #: False where the per-event figure comes from a handler-specific benchmark (notifier).
    warm: bool = True
    #: True: the warm row is per record of the event (an SQS batch: per message), the
    #: per-event figures going to its note.
    per_record: bool = False
    #: Module with ``run(spec) -> list[dict]`` of handler-specific rows (bench/notifier.py).
    extra: str | None = None
    #: Memory and extra benchmarks run against a moto server holding the template's tables
    #: (for state the canned responses cannot play, such as flood control).
    local_aws: bool = False
    #: Slack webhook posts are answered in-process (200) and counted, never sent.
    slack: bool = False
    #: Template parameter overrides (``sam deploy --parameter-overrides``) for every child.
    parameters: Mapping[str, str] = field(default_factory=dict)
    #: Template parameter -> secret value: with ``local_aws`` the secret is created in the
    #: moto server's Secrets Manager and its ARN passed as that parameter (replacing the
    #: placeholder in ``parameters``, which is all the cold run needs).
    secrets: Mapping[str, str] = field(default_factory=dict)

    @property
    def available(self) -> bool:
        """True once functions/<module>.py exists."""
        return (FUNCTIONS / f"{self.module}.py").is_file()

    def load_event(self) -> Any:
        import json

        if self.build_event is not None:
            return self.build_event()
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
#: A run record (RunsTable): one conditional PutItem per firing or chained job.
_RUN_RECORD: dict[str, dict[str, Any]] = {"put_item": {}}

#: The rule a user adds for the sample message (docs/chainer.md): a feed-updated message
#: starts one download job, with the message in its environment.
_CHAIN_RULES = json.dumps(
    {
        "messageVariable": "DOWNLOAD_MESSAGE",
        "rules": [
            {
                "name": "feed-updated-download",
                "match": {"messageAttributes": {"event": "feed-updated"}},
                "submit": {
                    "jobName": "download-{scheduled_time:%Y%m%d}",
                    "jobQueue": "feeds",
                    "jobDefinition": "feedstream-Broadbean",
                },
            }
        ],
    }
)

_ECS_ARN = "arn:aws:ecs:us-east-1:123456789012"
_TASK_ARN = f"{_ECS_ARN}:task/batch-jobs/3f6c1e2a9b7d4c58a0e1f2b3c4d5e6f7"
_RUN_TASK = {
    "run_task": {
        "tasks": [{"taskArn": f"{_ECS_ARN}:task/batch-jobs/0123456789abcdef"}],
        "failures": [],
    }
}
#: Which containers of the task definition are essential (asked once per revision).
_DESCRIBE_TASK_DEFINITION = {
    "describe_task_definition": {
        "taskDefinition": {
            "taskDefinitionArn": f"{_ECS_ARN}:task-definition/nightly-report:1",
            "containerDefinitions": [
                {"name": "app", "essential": True},
                {"name": "log-router", "essential": False},
            ],
        }
    }
}
#: The stopped task's tags, copied onto the relaunch (the event carries none).
_DESCRIBE_TASKS = {
    "describe_tasks": {
        "tasks": [{"taskArn": _TASK_ARN, "tags": [{"key": "team", "value": "reports"}]}],
        "failures": [],
    }
}
_SEND_MESSAGE = {
    "send_message": {
        "MessageId": "0b7d2f4e-3c1a-4e5b-9f6d-8a7c6b5d4e3f",
        "MD5OfMessageBody": "d41d8cd98f00b204e9800998ecf8427e",
    }
}
_PUBLISH = {"publish": {"MessageId": "6c1f0e2d-4b3a-4c5d-8e9f-0a1b2c3d4e5f"}}
#: What a deploy sets in place of the template's references (make invoke resolves !Ref
#: to the logical id, which RETRIER settings refuse for the topic).
_RETRIER_RESOURCES = {
    "RETRIER_DELAY_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/RetrierDelayQueue",
    "RETRIER_DEAD_LETTER_QUEUE_URL": (
        "https://sqs.us-east-1.amazonaws.com/123456789012/RetrierDeadLetterQueue"
    ),
    "NOTIFICATION_TOPIC_ARN": "arn:aws:sns:us-east-1:123456789012:NotificationTopic",
}
_RETRIER_STUBS = (
    ClientStub(
        "clients.ecs",
        {**_DESCRIBE_TASK_DEFINITION, **_DESCRIBE_TASKS, **_RUN_TASK},
    ),
    ClientStub("clients.sqs", _SEND_MESSAGE),
    ClientStub("clients.sns", _PUBLISH),
    ClientStub("once.persistence.client", _IDEMPOTENCY_FIRST_DELIVERY),
)

#: The template parameters that turn the dispatcher on (Fargate needs a subnet), and what a
#: deploy sets in place of the template's references (the work and dead-letter queues'
#: URLs; the payload bucket's name, whose logical id is no bucket name).
_DISPATCHER_PARAMETERS = {
    "DispatcherTaskFamily": "nightly-report",
    "DispatcherSubnetIds": "subnet-0a1b2c3d4e5f60718",
    "DispatcherSecurityGroupIds": "sg-0a1b2c3d4e5f60718",
}
_DISPATCHER_RESOURCES = {
    "DISPATCHER_WORK_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/WorkQueue",
    "DISPATCHER_DEAD_LETTER_QUEUE_URL": (
        "https://sqs.us-east-1.amazonaws.com/123456789012/WorkDeadLetterQueue"
    ),
    "DISPATCHER_PAYLOAD_BUCKET": "batchwire-workpayloadbucket-0a1b2c3d4e5f",
}

#: Never reached: every post is answered in-process (``slack=True``).
_BENCH_WEBHOOK_URL = "https://hooks.slack.com/services/T0BENCH/B0BENCH/bench"
#: What the cold run is deployed with (init reads no secret); the other runs get the ARN of
#: a secret created in the moto server.
_PLACEHOLDER_SECRET_ARN = (
    "arn:aws:secretsmanager:us-east-1:123456789012:secret:batchwire/slack-webhook-AbCdEf"
)

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
            ClientStub("runs.dynamodb", _RUN_RECORD),
        ),
        naive_stubs=(ClientStub("batch", _SUBMIT_JOB),),
        largest_event=payloads.largest_schedule_event,
    ),
    HandlerSpec(
        name="chainer",
        module="chainer",
        function="ChainerFunction",
        # one SNS record matching rule feed-updated-download: one job
        event="events/sns-job-finished.json",
        naive="bench.naive.chainer",
        stubs=(
            ClientStub("batch", _SUBMIT_JOB),
            ClientStub("once.persistence.client", _IDEMPOTENCY_FIRST_DELIVERY),
            ClientStub("runs.dynamodb", _RUN_RECORD),
        ),
        naive_stubs=(ClientStub("batch", _SUBMIT_JOB),),
        largest_event=payloads.largest_chain_batch,
        # the template's own rules are empty (the example's come with ExampleWorkload=on)
        environment={"CHAIN_RULES": _CHAIN_RULES},
    ),
    HandlerSpec(
        name="retrier",
        module="retrier",
        function="RetrierFunction",
        # exit 1, run 1 of 3: DescribeTasks (tags), relaunch message to the delay queue
        event="events/ecs-task-stopped-exit1.json",
        naive="bench.naive.retrier",
        stubs=_RETRIER_STUBS,
        naive_stubs=(ClientStub("ecs", _RUN_TASK),),
        largest_event=payloads.largest_task_stopped_event,
        environment=_RETRIER_RESOURCES,
    ),
    HandlerSpec(
        name="retrier-relaunch",
        module="retrier",
        function="RetrierFunction",
        # the delay queue brings the relaunch message back, due: RunTask
        event="the relaunch message of events/ecs-task-stopped-exit1.json (SQS)",
        build_event=payloads.retrier_relaunch_event,
        naive="bench.naive.retrier",
        stubs=_RETRIER_STUBS,
        naive_stubs=(ClientStub("ecs", _RUN_TASK),),
        environment=_RETRIER_RESOURCES,
        cold=False,
        memory=False,
    ),
    HandlerSpec(
        name="notifier",
        module="notifier",
        function="NotifierFunction",
        # not timed per event (warm=False): bench.notifier times maximum batches
        event="events/cloudwatch-logs-batch-traceback.json",
        naive="bench.naive.notifier",
        stubs=(),
        naive_stubs=(),
        largest_event=lambda: payloads.log_subscription_event(payloads.log_batch_document()),
        parameters={"SlackWebhookSecretArn": _PLACEHOLDER_SECRET_ARN},
        secrets={"SlackWebhookSecretArn": _BENCH_WEBHOOK_URL},
        warm=False,
        extra="bench.notifier",
        local_aws=True,
        slack=True,
    ),
    HandlerSpec(
        name="dispatcher",
        module="dispatcher",
        function="DispatcherFunction",
        # 3 WorkQueue messages (the third a WorkTopic notification), room for all: 3 tasks
        event="events/sqs-work-messages.json",
        naive="bench.naive.dispatcher",
        stubs=(
            ClientStub("clients.ecs", {"list_tasks": {"taskArns": []}, **_RUN_TASK}),
            ClientStub("clients.sqs", {"change_message_visibility": {}}),
            ClientStub(
                "clients.s3", {"put_object": {"ETag": '"9b2cf535f27731c974343645a3985328"'}}
            ),
            ClientStub("once.persistence.client", _IDEMPOTENCY_FIRST_DELIVERY),
        ),
        naive_stubs=(ClientStub("ecs", _RUN_TASK),),
        largest_event=payloads.largest_work_batch,
        per_record=True,
        parameters=_DISPATCHER_PARAMETERS,
        environment=_DISPATCHER_RESOURCES,
    ),
    HandlerSpec(
        # "scaler" alone names the scaler simulation (bench/scaler_sim.py)
        name="scaler-handler",
        module="scaler",
        function="ScalerFunction",
        # cold init only: the decisions are the simulation's subject
        event="events/scaler-tick.json",
        naive="bench.naive.scaler",
        stubs=(),
        naive_stubs=(),
        warm=False,
        memory=False,
        # one queue and its consumer service: the template deploys no scaler without one
        parameters={"ScalerQueueNames": "work", "ScalerServices": "batch-jobs/consumer"},
        # as a deploy sets it (the SAM CLI's local resolver leaves SCALER_QUEUES empty)
        environment={"SCALER_QUEUES": "work", "SCALER_SERVICES": "batch-jobs/consumer"},
    ),
)


def find(name: str) -> HandlerSpec:
    """The registry entry called ``name`` (a KeyError lists the known names)."""
    for spec in REGISTRY:
        if spec.name == name:
            return spec
    raise KeyError(f"no handler {name!r} in bench/registry.py (have: {[s.name for s in REGISTRY]})")
