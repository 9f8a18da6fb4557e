"""The retrier's Lambda handler: both triggers, partial batch failures, metrics."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import boto3
import pytest
from moto import mock_aws

from batchwire.task_events import Attempt
from devtools.ecs_local import EcsWorkload, create_ecs_workload, delay_queue_event, sample_event
from devtools.invoke import LocalContext
from tests.emf import metric_totals

REGION = "us-east-1"
# A decision that only queues a relaunch emits no metric of its own
pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish")


@pytest.fixture
def handler_module(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[ModuleType, EcsWorkload]]:
    with mock_aws():
        ec2, ecs = boto3.client("ec2", REGION), boto3.client("ecs", REGION)
        sqs = boto3.client("sqs", REGION)
        boto3.client("dynamodb", REGION).create_table(
            TableName="idempotency",
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            BillingMode="PAY_PER_REQUEST",
        )
        workload = create_ecs_workload(ec2, ecs)
        environ = {
            "POWERTOOLS_SERVICE_NAME": "retrier",
            "RETRIER_CLUSTERS": workload.cluster_arn,
            "RETRIER_SECURITY_GROUPS": workload.security_group,
            "RETRIER_BACKOFF_INTERVAL_SECONDS": "0",
            "RETRIER_DELAY_QUEUE_URL": sqs.create_queue(QueueName="delay")["QueueUrl"],
            "RETRIER_DEAD_LETTER_QUEUE_URL": sqs.create_queue(QueueName="dead")["QueueUrl"],
            "NOTIFICATION_TOPIC_ARN": boto3.client("sns", REGION).create_topic(Name="n")[
                "TopicArn"
            ],
            "IDEMPOTENCY_TABLE": "idempotency",
        }
        for name, value in environ.items():
            monkeypatch.setenv(name, value)
        sys.modules.pop("retrier", None)  # handlers read their settings at import
        yield importlib.import_module("retrier"), workload
        sys.modules.pop("retrier", None)


def context() -> Any:
    return LocalContext(
        function_name="RetrierFunction", memory_limit_in_mb=256, timeout_seconds=60, region=REGION
    )


def test_stopped_event_then_due_message_start_the_task_and_count_it(
    handler_module: tuple[ModuleType, EcsWorkload], capsys: pytest.CaptureFixture[str]
):
    # Given the retrier's handler and a task that exited 1
    module, workload = handler_module
    event = sample_event("ecs-task-stopped-exit1.json", subnet=workload.subnet)
    sqs = boto3.client("sqs", REGION)

    # When EventBridge delivers the STOPPED event, then SQS the relaunch with a bad neighbour
    decided = module.handler(event, context())
    queue = module.settings.delay_queue_url
    [message] = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10)["Messages"]
    delivery = delay_queue_event("not json", message["Body"])
    answer = module.handler(delivery, context())

    # Then the task runs again, only the bad record is reported failed, and metrics say so
    assert decided["action"] == "retry"
    bad_record = delivery["Records"][0]["messageId"]
    assert answer == {"batchItemFailures": [{"itemIdentifier": bad_record}]}
    tasks = boto3.client("ecs", REGION).list_tasks(cluster=workload.cluster_arn)["taskArns"]
    assert len(tasks) == 1
    assert "RetriesStarted" in metric_totals(capsys.readouterr().out)


def test_a_batch_of_only_bad_relaunch_messages_is_answered_not_raised(
    handler_module: tuple[ModuleType, EcsWorkload], caplog: pytest.LogCaptureFixture
):
    # Given the retrier's handler and two delay-queue messages that are not relaunches
    module, _ = handler_module
    delivery = delay_queue_event("not json", '{"origin": 7}')

    # When SQS delivers them
    answer = module.handler(delivery, context())

    # Then both stay in the queue, named in the answer, and the log says why for each
    ids = [record["messageId"] for record in delivery["Records"]]
    assert answer == {"batchItemFailures": [{"itemIdentifier": id_} for id_ in ids]}
    errors = [entry for entry in caplog.records if entry.levelname == "ERROR"]
    assert [entry.getMessage().split(";")[0] for entry in errors] == [
        f"relaunch message {id_} refused" for id_ in ids
    ]
    assert all(entry.exc_info is None and entry.__dict__["problems"] for entry in errors)


def test_rejected_task_is_counted(
    handler_module: tuple[ModuleType, EcsWorkload], capsys: pytest.CaptureFixture[str]
):
    # Given a task that exited 3
    module, workload = handler_module
    event = sample_event("ecs-task-stopped-exit3.json", subnet=workload.subnet)

    # When the handler takes its STOPPED event
    result = module.handler(event, context())

    # Then the Rejected metric is emitted
    assert result["notified"] == "task-rejected"
    assert "Rejected" in metric_totals(capsys.readouterr().out)


def test_redelivered_give_up_is_counted_once(
    handler_module: tuple[ModuleType, EcsWorkload], capsys: pytest.CaptureFixture[str]
):
    # Given a task that exited 1 on its last attempt
    module, workload = handler_module
    event = sample_event("ecs-task-stopped-exit1.json", subnet=workload.subnet)
    last = Attempt(module.settings.max_attempts, "origin-task")
    event["detail"]["startedBy"] = last.started_by

    # When EventBridge delivers its STOPPED event twice
    first = module.handler(event, context())
    second = module.handler(event, context())

    # Then both answer the give-up, but it is counted once, and the duplicate is seen
    assert first["action"] == second["action"] == "exhausted"
    totals = metric_totals(capsys.readouterr().out)
    assert totals["RetriesExhausted"] == 1
    assert totals["DeadLettered"] == 1
    assert totals["DuplicatesAbsorbed"] == 2  # the dead-letter record and the notification
