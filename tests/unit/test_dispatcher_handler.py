"""The dispatcher's Lambda handler: the sample SQS event, partial batch failures, metrics."""

from __future__ import annotations

import importlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
import pytest
from moto import mock_aws

from devtools.ecs_local import EcsWorkload, create_ecs_workload
from devtools.invoke import LocalContext
from tests.emf import metric_totals

REGION = "us-east-1"
PAYLOAD_BUCKET = "work-payloads"
EVENTS = Path(__file__).resolve().parents[2] / "events"
# A batch of duplicates starts nothing and emits no metric of its own
pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish")


def sample_event() -> dict[str, Any]:
    event: dict[str, Any] = json.loads((EVENTS / "sqs-work-messages.json").read_text())
    return event


@pytest.fixture
def handler_module(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[ModuleType, EcsWorkload]]:
    with mock_aws():
        ec2, ecs = boto3.client("ec2", REGION), boto3.client("ecs", REGION)
        boto3.client("dynamodb", REGION).create_table(
            TableName="idempotency",
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            BillingMode="PAY_PER_REQUEST",
        )
        workload = create_ecs_workload(ec2, ecs)
        queue = boto3.client("sqs", REGION).create_queue(QueueName="WorkQueue")["QueueUrl"]
        boto3.client("s3", REGION).create_bucket(Bucket=PAYLOAD_BUCKET)
        environ = {
            "POWERTOOLS_SERVICE_NAME": "dispatcher",
            "DISPATCHER_CLUSTER": "batch-jobs",
            "DISPATCHER_TASK_DEFINITION": "nightly-report",
            "DISPATCHER_CONTAINER": "app",
            "DISPATCHER_LAUNCH_TYPE": "FARGATE",
            "DISPATCHER_CAPACITY_PROVIDER": "",
            "DISPATCHER_SUBNETS": workload.subnet,
            "DISPATCHER_SECURITY_GROUPS": workload.security_group,
            "DISPATCHER_ASSIGN_PUBLIC_IP": "DISABLED",
            "DISPATCHER_MAX_TASKS": "5",
            "DISPATCHER_WORK_QUEUE_URL": queue,
            "DISPATCHER_BUSY_BACKOFF_SECONDS": "60",
            "DISPATCHER_PAYLOAD_BUCKET": PAYLOAD_BUCKET,
            "DISPATCHER_PAYLOAD_PREFIX": "work-messages/",
            "IDEMPOTENCY_TABLE": "idempotency",
            "IDEMPOTENCY_TTL_SECONDS": "86400",
        }
        for name, value in environ.items():
            monkeypatch.setenv(name, value)
        sys.modules.pop("dispatcher", None)  # handlers read their settings at import
        yield importlib.import_module("dispatcher"), workload
        sys.modules.pop("dispatcher", None)


def context() -> Any:
    return LocalContext(
        function_name="DispatcherFunction",
        memory_limit_in_mb=256,
        timeout_seconds=60,
        region=REGION,
    )


def started_tasks(workload: EcsWorkload) -> dict[str, dict[str, str]]:
    """The environment of each task's ``app`` container, by the task's MessageId."""
    ecs = boto3.client("ecs", REGION)
    arns = ecs.list_tasks(cluster=workload.cluster_arn)["taskArns"]
    tasks = ecs.describe_tasks(cluster=workload.cluster_arn, tasks=arns)["tasks"] if arns else []
    environments = {}
    for task in tasks:
        [container] = task["overrides"]["containerOverrides"]
        environment = {item["name"]: item["value"] for item in container["environment"]}
        environments[environment["MessageId"]] = environment
    return environments


def test_sample_work_messages_start_one_task_each_and_count_them(
    handler_module: tuple[ModuleType, EcsWorkload],
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
):
    # Given the dispatcher's handler and the sample event: two messages and a notification
    module, workload = handler_module
    event = sample_event()
    [orders, returns, notification] = event["Records"]

    # When Lambda's poller invokes it with the batch
    answer = module.handler(event, context())

    # Then no record failed
    assert answer == {"batchItemFailures": []}
    # ... each message has its task, the notification's with its message and subject
    tasks = started_tasks(workload)
    assert set(tasks) == {orders["messageId"], returns["messageId"], notification["messageId"]}
    assert tasks[orders["messageId"]]["Message"] == orders["body"]
    assert tasks[returns["messageId"]]["Message"] == "s3://feeds-inbox/2026-11-23/returns.csv"
    envelope = json.loads(notification["body"])
    assert tasks[notification["messageId"]]["Message"] == envelope["Message"]
    assert tasks[notification["messageId"]]["Subject"] == "feed-updated"
    assert tasks[returns["messageId"]]["SentTimestamp"] == "1795400999402"
    # ... and the metrics say three tasks started, none of them through S3
    metrics = metric_totals(capsys.readouterr().out)
    assert metrics["TasksStarted"] == 3
    assert "MessagesViaS3" not in metrics
    # ... as the batch's log line does, with the room there was
    [summary] = [r for r in caplog.records if r.getMessage() == "batch dispatched"]
    fields = summary.__dict__
    assert (fields["started"], fields["runningBefore"], fields["maxTasks"]) == (3, 0, 5)


def test_the_sample_delivered_again_starts_nothing_more_and_counts_nothing(
    handler_module: tuple[ModuleType, EcsWorkload], capsys: pytest.CaptureFixture[str]
):
    # Given the sample batch was dispatched once
    module, workload = handler_module
    module.handler(sample_event(), context())
    capsys.readouterr()

    # When SQS delivers the same batch again
    answer = module.handler(sample_event(), context())

    # Then every record is done, no task was added, and TasksStarted is not emitted again
    assert answer == {"batchItemFailures": []}
    assert len(started_tasks(workload)) == 3
    assert "TasksStarted" not in metric_totals(capsys.readouterr().out)


def test_a_refused_message_is_logged_at_error_and_counted(
    handler_module: tuple[ModuleType, EcsWorkload],
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
):
    # Given a batch whose notification lost its Message
    module, workload = handler_module
    event = sample_event()
    bad = event["Records"][2]
    envelope = json.loads(bad["body"])
    del envelope["Message"]
    bad["body"] = json.dumps(envelope)

    # When the handler takes it
    answer = module.handler(event, context())

    # Then only that record failed, with an ERROR line naming it, and the metrics count it
    assert answer == {"batchItemFailures": [{"itemIdentifier": bad["messageId"]}]}
    [error] = [r for r in caplog.records if r.levelname == "ERROR"]
    assert bad["messageId"] in error.getMessage()
    assert error.__dict__["problems"] == ["body.Message: missing"]
    metrics = metric_totals(capsys.readouterr().out)
    assert (metrics["MessagesRefused"], metrics["TasksStarted"]) == (1, 2)
    assert len(started_tasks(workload)) == 2


def test_a_large_message_reaches_its_task_through_s3_and_is_counted(
    handler_module: tuple[ModuleType, EcsWorkload],
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
):
    # Given the sample batch whose first message is 20 KiB, too large for the overrides
    module, workload = handler_module
    event = sample_event()
    big = event["Records"][0]
    big["body"] = json.dumps({"rows": ["4711;orders;12040"] * 1000})[:20480]

    # When the handler takes it
    answer = module.handler(event, context())

    # Then every task started; the big message's task reads it from S3
    assert answer == {"batchItemFailures": []}
    environment = started_tasks(workload)[big["messageId"]]
    uri = f"s3://{PAYLOAD_BUCKET}/work-messages/sqs-{big['messageId']}"
    assert environment["MessageS3Uri"] == uri
    stored = boto3.client("s3", REGION).get_object(
        Bucket=PAYLOAD_BUCKET, Key=uri.removeprefix(f"s3://{PAYLOAD_BUCKET}/")
    )
    assert stored["Body"].read() == big["body"].encode()
    # ... the metrics count it as started and as gone through S3
    metrics = metric_totals(capsys.readouterr().out)
    assert (metrics["TasksStarted"], metrics["MessagesViaS3"]) == (3, 1)
    # ... and its log line says where the message is
    [line] = [
        r
        for r in caplog.records
        if r.getMessage() == "task started for the message"
        and r.__dict__["messageId"] == big["messageId"]
    ]
    assert line.__dict__["messageS3Uri"] == uri
