"""The six handlers, each imported as on a cold start into moto with what it needs, and the
samples it is fuzzed from.

Each function is a context manager yielding a Subject: the handler observed (Harness), its
pool of samples, and one event of its own trigger that it handles (the tests check first
that it does, and that the AWS call hook sees its calls).
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from aws_lambda_powertools.utilities import parameters

from batchwire.chain_rules import CHAIN_HOP_VARIABLE, CHAIN_ID_VARIABLE
from devtools.ecs_local import (
    CLUSTER,
    create_consumer_service,
    create_ecs_workload,
    delay_queue_event,
    sample_event,
)
from devtools.local_aws import REGION, create_batch_workload, feed_chain_rules, regional_client
from devtools.sample_events import encode
from devtools.slack_receiver import SlackReceiver, slack_receiver
from tests.fuzz.events import EventPool
from tests.fuzz.harness import (
    Harness,
    Invocation,
    cold_start,
    create_table,
    moto_in_process,
    sample,
)


@dataclass
class Subject:
    """A handler to fuzz, the samples its events are made from, and one it handles."""

    harness: Harness
    pool: EventPool
    handled: Any
    #: The Slack stand-in the handler posts to (the notifier's).
    slack: SlackReceiver | None = None


# ------------------------------------------------------------------ submitter

#: A Scheduler firing (two jobs, one depending on the other), the classic cron rule's
#: constant input (one job at the top level), and a firing of a single top-level job.
SUBMITTER_SAMPLES = (
    sample("schedule.json"),
    sample("cron-constant.json"),
    {
        "schedule": "arn:aws:scheduler:us-east-1:123456789012:schedule/default/hourly",
        "scheduledTime": "2026-11-23T03:00:00Z",
        "jobName": "hourly-{scheduled_time:%Y%m%d%H}",
        "jobQueue": "feeds",
        "jobDefinition": "feedstream-consumer",
        "timeout": {"attemptDurationSeconds": 600},
    },
)


@contextlib.contextmanager
def submitter(monkeypatch: pytest.MonkeyPatch) -> Iterator[Subject]:
    """The submitter, with the Batch queue and job definitions its samples name."""
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "SubmitterFunction")
    with moto_in_process():
        create_batch_workload(regional_client)
        environ = {"IDEMPOTENCY_TABLE": create_table("IdempotencyTable")}
        with cold_start("submitter", "SubmitterFunction", environ, monkeypatch) as harness:
            yield Subject(harness, EventPool.of(SUBMITTER_SAMPLES), sample("schedule.json"))


# ------------------------------------------------------------------ chainer


def _chain_position_attached() -> dict[str, Any]:
    """The sample SNS event as a chained job publishes it: its chain position attached."""
    event: dict[str, Any] = sample("sns-job-finished.json")
    event["Records"][0]["Sns"]["MessageAttributes"].update(
        {
            CHAIN_ID_VARIABLE: {"Type": "String", "Value": "chain-1"},
            CHAIN_HOP_VARIABLE: {"Type": "String", "Value": "2"},
        }
    )
    return event


def _no_container_environment() -> dict[str, Any]:
    """A nightly job's success without a container environment: the chainer describes the
    job to read its chain position."""
    event: dict[str, Any] = copy.deepcopy(sample("batch-job-succeeded.json"))
    event["detail"].pop("container", None)
    return event


#: What the local Batch workload's chain rules (devtools.local_aws) match, and a failure.
CHAINER_SAMPLES = (
    sample("sns-job-finished.json"),
    _chain_position_attached(),
    sample("sqs-chain-batch.json"),
    sample("batch-job-succeeded.json"),
    _no_container_environment(),
    sample("batch-job-failed.json"),
)


@contextlib.contextmanager
def chainer(monkeypatch: pytest.MonkeyPatch) -> Iterator[Subject]:
    """The chainer with the local Batch workload and its chain rules."""
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "ChainerFunction")
    with moto_in_process():
        create_batch_workload(regional_client)
        environ = {
            "IDEMPOTENCY_TABLE": create_table("IdempotencyTable"),
            "CHAIN_RULES": feed_chain_rules(),
        }
        with cold_start("chainer", "ChainerFunction", environ, monkeypatch) as harness:
            yield Subject(harness, EventPool.of(CHAINER_SAMPLES), sample("sns-job-finished.json"))


# ------------------------------------------------------------------ notifier

#: CloudWatch Logs' check that a new subscription works: nothing to post.
CONTROL_MESSAGE = encode(
    {
        "messageType": "CONTROL_MESSAGE",
        "owner": "CloudwatchLogs",
        "logGroup": "",
        "logStream": "",
        "subscriptionFilters": [],
        "logEvents": [
            {
                "id": "",
                "timestamp": 1795399203000,
                "message": "CWL CONTROL MESSAGE: Checking health",
            }
        ],
    }
)

NOTIFIER_SAMPLES = (
    sample("cloudwatch-logs-batch-traceback.json"),
    CONTROL_MESSAGE,
    sample("sns-alarm.json"),
    sample("sns-alarm-ok.json"),
    sample("sns-task-retries-exhausted.json"),
    sample("ecs-task-stopped-exit1.json"),
    sample("ecs-task-stopped-cannotpull.json"),
    sample("ecs-task-stopped-userinitiated.json"),
    sample("batch-job-failed.json"),
)


@contextlib.contextmanager
def notifier(monkeypatch: pytest.MonkeyPatch) -> Iterator[Subject]:
    """The notifier, its webhook secret naming the local Slack stand-in (over real HTTP)."""
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "NotifierFunction")
    parameters.clear_caches()  # type: ignore[no-untyped-call]
    with moto_in_process(), slack_receiver() as slack:
        secrets = boto3.client("secretsmanager", REGION)
        environ = {
            "IDEMPOTENCY_TABLE": create_table("IdempotencyTable"),
            "ALERT_STATE_TABLE": create_table("AlertStateTable"),
            "SLACK_WEBHOOK_SECRET_ARN": secrets.create_secret(
                Name="batchwire/slack-webhook", SecretString=slack.url
            )["ARN"],
            "SLACK_TIMEOUT_SECONDS": "2",
        }
        with cold_start("notifier", "NotifierFunction", environ, monkeypatch) as harness:
            harness.slack_requests = lambda: len(slack.requests)
            pool = EventPool.of(NOTIFIER_SAMPLES)
            yield Subject(harness, pool, sample("cloudwatch-logs-batch-traceback.json"), slack)
    parameters.clear_caches()  # type: ignore[no-untyped-call]


# ------------------------------------------------------------------ retrier

STOPPED_SAMPLES = (
    "ecs-task-stopped-exit1.json",
    "ecs-task-stopped-exit3.json",
    "ecs-task-stopped-exit4.json",
    "ecs-task-stopped-cannotpull.json",
    "ecs-task-stopped-failedtostart.json",
    "ecs-task-stopped-no-exitcode.json",
    "ecs-task-stopped-service.json",
    "ecs-task-stopped-userinitiated.json",
)


@contextlib.contextmanager
def retrier(monkeypatch: pytest.MonkeyPatch) -> Iterator[Subject]:
    """The retrier on the local ECS workload; its relaunches are due at once. The event it
    handles is the delay queue's delivery of the relaunch the exit-1 sample asks for."""
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "RetrierFunction")
    with moto_in_process():
        ec2, ecs = boto3.client("ec2", REGION), boto3.client("ecs", REGION)
        sqs, sns = boto3.client("sqs", REGION), boto3.client("sns", REGION)
        workload = create_ecs_workload(ec2, ecs)
        environ = {
            "IDEMPOTENCY_TABLE": create_table("IdempotencyTable"),
            "RETRIER_CLUSTERS": workload.cluster_arn,
            "RETRIER_SECURITY_GROUPS": workload.security_group,
            "RETRIER_BACKOFF_INTERVAL_SECONDS": "0",
            "RETRIER_DELAY_QUEUE_URL": sqs.create_queue(QueueName="delay")["QueueUrl"],
            "RETRIER_DEAD_LETTER_QUEUE_URL": sqs.create_queue(QueueName="dead")["QueueUrl"],
            "NOTIFICATION_TOPIC_ARN": sns.create_topic(Name="notices")["TopicArn"],
        }
        with cold_start("retrier", "RetrierFunction", environ, monkeypatch) as harness:
            stopped = [sample_event(name, subnet=workload.subnet) for name in STOPPED_SAMPLES]
            relaunch = _relaunch_of(harness, stopped[0])
            yield Subject(harness, EventPool.of([*stopped, relaunch]), relaunch)


def _relaunch_of(harness: Harness, stopped: dict[str, Any]) -> dict[str, Any]:
    decided = harness.invoke(stopped)
    assert decided.result["action"] == "retry", decided.explain("the sample task is not retried")
    queue = harness.module.settings.delay_queue_url
    messages = boto3.client("sqs", REGION).receive_message(QueueUrl=queue)["Messages"]
    return delay_queue_event(messages[0]["Body"])


# ------------------------------------------------------------------ dispatcher

PAYLOAD_BUCKET = "work-payloads"


def _large_message() -> dict[str, Any]:
    """A message too large for the container overrides: it goes to its task through S3."""
    event: dict[str, Any] = copy.deepcopy(sample("sqs-work-messages.json"))
    del event["Records"][1:]
    event["Records"][0]["body"] = '{"rows": "' + "r" * 12_000 + '"}'
    return event


def _stop_started_tasks(invocation: Invocation) -> None:
    """Stop what the invocation started, so that every batch finds room under the maximum."""
    if "ecs.RunTask" not in invocation.calls:
        return
    ecs = boto3.client("ecs", REGION)
    for arn in ecs.list_tasks(cluster=CLUSTER, desiredStatus="RUNNING")["taskArns"]:
        ecs.stop_task(cluster=CLUSTER, task=arn, reason="room for the next batch")


@contextlib.contextmanager
def dispatcher(monkeypatch: pytest.MonkeyPatch) -> Iterator[Subject]:
    """The dispatcher with its work queue, dead-letter queue and payload bucket; the tasks
    each invocation starts are stopped after it."""
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "DispatcherFunction")
    with moto_in_process():
        ec2, ecs = boto3.client("ec2", REGION), boto3.client("ecs", REGION)
        sqs = boto3.client("sqs", REGION)
        workload = create_ecs_workload(ec2, ecs)
        boto3.client("s3", REGION).create_bucket(Bucket=PAYLOAD_BUCKET)
        environ = {
            "IDEMPOTENCY_TABLE": create_table("IdempotencyTable"),
            "DISPATCHER_CLUSTER": CLUSTER,
            "DISPATCHER_TASK_DEFINITION": "nightly-report",
            "DISPATCHER_CONTAINER": "app",
            "DISPATCHER_LAUNCH_TYPE": "FARGATE",
            "DISPATCHER_SUBNETS": workload.subnet,
            "DISPATCHER_SECURITY_GROUPS": workload.security_group,
            "DISPATCHER_MAX_TASKS": "5",
            "DISPATCHER_WORK_QUEUE_URL": sqs.create_queue(QueueName="WorkQueue")["QueueUrl"],
            "DISPATCHER_DEAD_LETTER_QUEUE_URL": sqs.create_queue(QueueName="WorkDLQ")["QueueUrl"],
            "DISPATCHER_PAYLOAD_BUCKET": PAYLOAD_BUCKET,
        }
        with cold_start("dispatcher", "DispatcherFunction", environ, monkeypatch) as harness:
            harness.after = _stop_started_tasks
            pool = EventPool.of([sample("sqs-work-messages.json"), _large_message()])
            yield Subject(harness, pool, sample("sqs-work-messages.json"))


# ------------------------------------------------------------------ scaler


@contextlib.contextmanager
def scaler(monkeypatch: pytest.MonkeyPatch) -> Iterator[Subject]:
    """The scaler with one target: a queue and the ECS service consuming it."""
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "ScalerFunction")
    with moto_in_process():
        ec2, ecs = boto3.client("ec2", REGION), boto3.client("ecs", REGION)
        workload = create_ecs_workload(ec2, ecs)
        boto3.client("sqs", REGION).create_queue(QueueName="orders")
        environ = {
            "SCALER_QUEUES": "orders",
            "SCALER_SERVICES": create_consumer_service(ecs, workload, "orders-consumer"),
            "SCALER_STATE_TABLE": create_table("IdempotencyTable"),
        }
        with cold_start("scaler", "ScalerFunction", environ, monkeypatch) as harness:
            pool = EventPool.of([sample("scaler-tick.json"), {}])
            yield Subject(harness, pool, sample("scaler-tick.json"))


# ------------------------------------------------------------------ watch


@contextlib.contextmanager
def watch(monkeypatch: pytest.MonkeyPatch) -> Iterator[Subject]:
    """The watch over a group holding one schedule that promises its run within an hour;
    the handled event is a tick 70 minutes after its first firing (which never happened)."""
    from datetime import timedelta

    from devtools.runs_table import create_runs_table
    from devtools.watched import create_watched_schedule, next_firing, watch_tick

    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "WatchFunction")
    with moto_in_process():
        scheduler = boto3.client("scheduler", REGION)
        scheduler.create_schedule_group(Name="batchwire-ScheduleGroup")
        schedule = create_watched_schedule(
            scheduler,
            group="batchwire-ScheduleGroup",
            name="nightly",
            target_arn=f"arn:aws:lambda:{REGION}:123456789012:function:submitter",
            role_arn="arn:aws:iam::123456789012:role/scheduler",
            jobs=[{"jobName": "nightly", "jobQueue": "feeds", "jobDefinition": "feedstream"}],
            expect={"withinMinutes": 60},
        )
        create_runs_table(boto3.client("dynamodb", REGION), "RunsTable")
        topic = boto3.client("sns", REGION).create_topic(Name="NotificationTopic")["TopicArn"]
        environ = {
            "IDEMPOTENCY_TABLE": create_table("IdempotencyTable"),
            "SCHEDULE_GROUP": "batchwire-ScheduleGroup",
            "RUNS_TABLE": "RunsTable",
            "NOTIFICATION_TOPIC_ARN": topic,
        }
        later = watch_tick(next_firing(schedule) + timedelta(minutes=70))
        with cold_start("watch", "WatchFunction", environ, monkeypatch) as harness:
            pool = EventPool.of([sample("watch-tick.json"), later, {}])
            yield Subject(harness, pool, later)
