"""The benchmark's events are the largest the handlers accept, and decode as Lambda's do."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

from batchwire.config import load_settings
from batchwire.dispatch import (
    MAX_OVERRIDE_CHARACTERS,
    DispatcherSettings,
    override_characters,
    plan_launch,
    work_message,
)
from batchwire.jobs import MAX_CONTAINER_OVERRIDES_CHARS, build_submit_requests, parse_job_request
from batchwire.redaction import BUILTIN_PATTERNS
from batchwire.retrier import (
    CountedContainers,
    RetrierClients,
    RetrierSettings,
    handle_task_stopped,
)
from batchwire.sqs_batch import QueueRecord
from batchwire.task_events import parse_task_state_change
from bench.payloads import (
    MAX_LOG_EVENTS,
    MAX_LOG_LINE_BYTES,
    MAX_TASK_CONTAINERS,
    MAX_TASK_OVERRIDES_CHARS,
    SQS_MAX_MESSAGE_BYTES,
    adversarial_log_lines,
    decode_floor,
    largest_chain_batch,
    largest_schedule_event,
    largest_task_stopped_event,
    largest_work_batch,
    log_batch_document,
    log_subscription_event,
    plain_log_line,
    retrier_relaunch_event,
)
from bench.registry import ROOT

ResultT = TypeVar("ResultT")


def test_largest_schedule_event_is_accepted_whole_by_the_submitter() -> None:
    event = largest_schedule_event()
    request = parse_job_request(event)
    assert request.scheduled_time is not None
    submissions = build_submit_requests(request, request.scheduled_time)
    assert len(submissions) == 20
    overrides = json.dumps(submissions[0]["containerOverrides"], separators=(",", ":"))
    assert MAX_CONTAINER_OVERRIDES_CHARS - 128 < len(overrides) <= MAX_CONTAINER_OVERRIDES_CHARS


def test_max_log_batch_has_10000_events_of_about_a_megabyte() -> None:
    document = log_batch_document()
    size = len(json.dumps(document, separators=(",", ":")))
    assert len(document["logEvents"]) == MAX_LOG_EVENTS
    assert 1_000_000 <= size < 1_400_000


def test_small_log_batch_is_padded_to_the_target_size() -> None:
    document = log_batch_document(events=100, target_bytes=50_000)
    assert abs(len(json.dumps(document, separators=(",", ":"))) - 50_000) < 200


def test_subscription_event_decodes_back_to_the_document() -> None:
    document = log_batch_document(events=3)
    assert decode_floor(log_subscription_event(document)) == document


class _Recorder:
    """Plays ECS, SQS and the idempotency store for one STOPPED event, keeping what is sent."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    def describe_task_definition(self, **_: Any) -> dict[str, Any]:
        return {"taskDefinition": {"containerDefinitions": [{"name": "app"}]}}

    def describe_tasks(self, **_: Any) -> dict[str, Any]:
        return {"tasks": [{"tags": [{"key": "team", "value": "reports"}]}]}

    def send_message(self, **kwargs: Any) -> dict[str, Any]:
        self.sent.append(kwargs)
        return {"MessageId": "m"}

    def run_once(self, identity: str, action: Callable[[], ResultT]) -> ResultT:
        return action()


def _retrier_settings() -> RetrierSettings:
    return load_settings(
        RetrierSettings,
        {
            "RETRIER_CLUSTERS": "arn:aws:ecs:us-east-1:123456789012:cluster/batch-jobs",
            "RETRIER_DELAY_QUEUE_URL": "delay",
            "RETRIER_DEAD_LETTER_QUEUE_URL": "dead",
            "NOTIFICATION_TOPIC_ARN": "arn:aws:sns:us-east-1:123456789012:n",
            "IDEMPOTENCY_TABLE": "t",
        },
    )


def test_relaunch_event_holds_the_message_the_retrier_queues_for_the_exit1_sample() -> None:
    recorder = _Recorder()
    settings = _retrier_settings()
    clients = RetrierClients(ecs=recorder, sqs=recorder, sns=recorder)  # type: ignore[arg-type]
    event = json.loads((ROOT / "events/ecs-task-stopped-exit1.json").read_text())
    now = datetime(2026, 11, 23, 2, 7, 41, tzinfo=UTC)
    handle_task_stopped(
        event,
        settings=settings,
        clients=clients,
        counted=CountedContainers(recorder, settings.containers),  # type: ignore[arg-type]
        once=recorder,
        now=now,
        random=lambda: 0.5,
    )
    queued = json.loads(recorder.sent[0]["MessageBody"])
    built = json.loads(retrier_relaunch_event()["Records"][0]["body"])
    assert {k: v for k, v in built.items() if k != "notBefore"} == {
        k: v for k, v in queued.items() if k != "notBefore"
    }
    assert datetime.fromisoformat(built["notBefore"]) < datetime.now(UTC)  # due: RunTask at once


def test_largest_stopped_event_has_ten_containers_and_overrides_just_under_the_limit() -> None:
    event = largest_task_stopped_event()
    detail = parse_task_state_change(event).detail
    size = len(json.dumps(detail.overrides, separators=(",", ":")))
    assert len(detail.containers) == MAX_TASK_CONTAINERS
    assert MAX_TASK_OVERRIDES_CHARS - 128 < size <= MAX_TASK_OVERRIDES_CHARS


def test_largest_chain_batch_is_ten_messages_at_the_size_limit() -> None:
    records = largest_chain_batch()["Records"]
    assert len(records) == 10
    assert {len(record["body"].encode()) for record in records} == {SQS_MAX_MESSAGE_BYTES}


def test_every_builtin_redaction_pattern_has_a_worst_case_line_of_the_log_event_limit() -> None:
    # Given the adversarial lines of the redaction benchmark
    lines = adversarial_log_lines()
    # Then each built-in pattern has at least one, and each line is as long as CloudWatch allows
    assert {pattern for pattern, _ in lines.values()} == {name for name, _, _ in BUILTIN_PATTERNS}
    for _, line in lines.values():
        assert len(line.encode()) == MAX_LOG_LINE_BYTES
    assert len(plain_log_line().encode()) == MAX_LOG_LINE_BYTES


def test_largest_work_batch_is_ten_messages_at_the_size_limit_each_started_through_s3() -> None:
    # Given the dispatcher's largest batch and its settings as the benchmark deploys them
    records = largest_work_batch()["Records"]
    settings = load_settings(
        DispatcherSettings,
        {
            "DISPATCHER_CLUSTER": "batch-jobs",
            "DISPATCHER_TASK_DEFINITION": "nightly-report",
            "DISPATCHER_CONTAINER": "app",
            "DISPATCHER_LAUNCH_TYPE": "FARGATE",
            "DISPATCHER_SUBNETS": "subnet-0a1b2c3d4e5f60718",
            "DISPATCHER_MAX_TASKS": "10",
            "DISPATCHER_WORK_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/1/WorkQueue",
            "DISPATCHER_PAYLOAD_BUCKET": "batchwire-work-payloads",
            "IDEMPOTENCY_TABLE": "t",
        },
    )
    # When each message is planned
    launches = [plan_launch(work_message(QueueRecord(record)), settings) for record in records]
    # Then all ten are at SQS's limit, none is refused, and each goes through S3 with its
    # overrides within ECS's limit
    assert len(records) == 10
    assert {len(record["body"].encode()) for record in records} == {SQS_MAX_MESSAGE_BYTES}
    assert all(launch.payload is not None for launch in launches)
    assert all(
        override_characters(launch.request["overrides"]) <= MAX_OVERRIDE_CHARACTERS
        for launch in launches
    )
